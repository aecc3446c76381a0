"""Builtin model-family plugins."""

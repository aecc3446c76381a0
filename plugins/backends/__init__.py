"""Builtin hardware-backend plugins."""

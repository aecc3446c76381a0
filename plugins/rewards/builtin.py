"""Builtin rewards (being built, issue #18)."""

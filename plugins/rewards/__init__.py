"""Builtin reward functions (exact match, format match, length penalty), registered like third-party rewards."""

"""The lipo method (being built, issue #18)."""

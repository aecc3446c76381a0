"""The kto method (being built, issue #18)."""

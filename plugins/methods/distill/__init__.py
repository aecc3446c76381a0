"""The distill method (being built, issue #18)."""

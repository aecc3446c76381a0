"""The grpo method (being built, issue #18)."""

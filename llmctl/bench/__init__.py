"""Benchmarks: the `make bench` suite and the measuring functions behind `llmctl benchmark`."""

"""What `llmctl benchmark` runs: per-artefact measurement in a worker process, the lm-eval bridge, the comparison
table and plot. Quality numbers come from :mod:`llmctl.quality`; the `make bench` suite is the top-level
``benchmarks/`` folder (outside the wheel)."""

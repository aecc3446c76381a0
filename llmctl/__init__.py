"""llmctl: a command-line workbench for open LLMs, built from pluggy plugins."""

__version__ = "0.1.0"

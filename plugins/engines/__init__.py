"""Builtin inference engines: transformers and llama.cpp."""

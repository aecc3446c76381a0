"""Builtin quantizer plugins: GGUF (gguf library and llama.cpp), torchao, quanto, bitsandbytes."""

"""Model conversion: Hugging Face safetensors → GGUF, adapter merges, tensor by tensor so memory stays bounded."""

"""Builtin training methods: LoRA, LoRA+, DoRA, QLoRA and full fine-tuning."""

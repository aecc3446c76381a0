"""Builtin training methods: LoRA, LoRA+, DoRA, QLoRA, full fine-tuning, DPO/IPO, reward models, PPO and rejection
sampling. Each is a plugin of its own (a module or a package), registered through the ``llmctl`` entry points."""

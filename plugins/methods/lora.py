"""LoRA, LoRA+, DoRA and QLoRA through peft; target modules come from the model's family plugin."""

from llmctl.descriptors import Method, Range
from llmctl.hookspecs import hookimpl

LORA_DEFAULTS = {"learning_rate": 2e-4, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ""}
LORA_RANGES = {"lora_r": Range(1), "lora_alpha": Range(0, low_open=True), "lora_dropout": Range(0, 1, high_open=True),
               "loraplus_ratio": Range(0, low_open=True)}
LORA_CHOICES = {"quant_type": ("nf4", "fp4")}
LORA_HELP = {
    "lora_r": "adapter rank",
    "lora_alpha": "adapter scale numerator (scale = alpha / r)",
    "lora_dropout": "dropout on the adapter input",
    "target_modules": "comma-separated module names (empty: the family's defaults)",
    "loraplus_ratio": "LoRA+: learning rate of B = ratio × learning rate of A",
    "quant_type": "QLoRA: 4-bit type of the frozen base (nf4 or fp4)",
}


def _build(kind: str):
    def build():
        from llmctl_plugins.methods._lora_impl import LoraMethod

        return LoraMethod(kind)

    return build


def _cuda_available() -> tuple[bool, str]:
    """QLoRA needs a CUDA GPU and bitsandbytes."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        return False, "QLoRA quantizes the base to 4 bits with bitsandbytes, which needs a CUDA GPU (none found)"
    if importlib.util.find_spec("bitsandbytes") is None:
        return False, "QLoRA needs bitsandbytes: pip install 'llmctl[cuda]'"
    return True, ""


@hookimpl
def register_methods(register):
    """Register lora, lora+, dora and qlora."""
    register(Method("lora", "LoRA: low-rank adapters on the family's projections (peft)", defaults=LORA_DEFAULTS,
                    build=_build("lora"), settings_help=LORA_HELP, ranges=LORA_RANGES))
    register(Method("lora+", "LoRA+: LoRA with B's learning rate = ratio × A's (default 16)",
                    defaults={**LORA_DEFAULTS, "loraplus_ratio": 16.0}, build=_build("lora+"),
                    settings_help=LORA_HELP, ranges=LORA_RANGES))
    register(Method("dora", "DoRA: weight-decomposed LoRA, magnitude and direction (peft use_dora)",
                    defaults=LORA_DEFAULTS, build=_build("dora"), settings_help=LORA_HELP, ranges=LORA_RANGES))
    register(Method("qlora", "QLoRA: LoRA on a 4-bit base through bitsandbytes (CUDA only)",
                    defaults={**LORA_DEFAULTS, "quant_type": "nf4"}, build=_build("qlora"),
                    settings_help=LORA_HELP, available=_cuda_available, ranges=LORA_RANGES,
                    choices=LORA_CHOICES))

"""LoRA, LoRA+, DoRA and QLoRA through peft; target modules come from the model's family plugin."""

from dataclasses import dataclass

from llmctl.config import Range
from llmctl.descriptors import Method
from llmctl.hookspecs import hookimpl
from llmctl.settings_schema import setting
from llmctl.train.adapters import LoraSettings


@dataclass
class LoraMethodSettings(LoraSettings):
    """LoRA's settings: the adapter's shape and the method's learning rate."""

    learning_rate: float = 2e-4


@dataclass
class LoraPlusSettings(LoraMethodSettings):
    """LoRA+ adds the learning-rate ratio of the B matrices."""

    loraplus_ratio: float = setting(16.0, "LoRA+: learning rate of B = ratio × learning rate of A",
                                    range=Range(0, low_open=True))


@dataclass
class QLoraSettings(LoraMethodSettings):
    """QLoRA adds the 4-bit type of the frozen base."""

    quant_type: str = setting("nf4", "QLoRA: 4-bit type of the frozen base (nf4 or fp4)", choices=("nf4", "fp4"))


def _build(kind: str):
    def build():
        from llmctl_plugins.methods.lora._method import LoraMethod

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
    register(Method("lora", "LoRA: low-rank adapters on the family's projections (peft)",
                    settings=LoraMethodSettings, build=_build("lora")))
    register(Method("lora+", "LoRA+: LoRA with B's learning rate = ratio × A's (default 16)",
                    settings=LoraPlusSettings, build=_build("lora+")))
    register(Method("dora", "DoRA: weight-decomposed LoRA, magnitude and direction (peft use_dora)",
                    settings=LoraMethodSettings, build=_build("dora")))
    register(Method("qlora", "QLoRA: LoRA on a 4-bit base through bitsandbytes (CUDA only)",
                    settings=QLoraSettings, build=_build("qlora"), available=_cuda_available))

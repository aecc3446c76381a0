"""``--method BACKEND:SCHEME`` look-up over the registered quantizers, and the rows of ``quantize --list``."""

from __future__ import annotations

from dataclasses import dataclass

from llmctl.descriptors import Quantizer
from llmctl.errors import MissingExtraError, ResourceError, UnknownNameError
from llmctl.registry import suggest


@dataclass(frozen=True)
class MethodChoice:
    """A quantizer and one of its schemes: ``gguf:q4_k_m`` → (gguf quantizer, ``q4_k_m``)."""

    quantizer: Quantizer
    scheme: str

    @property
    def name(self) -> str:
        """The method as the user writes it."""
        return f"{self.quantizer.name}:{self.scheme}"


@dataclass(frozen=True)
class MethodRow:
    """One line of ``llmctl quantize --list``."""

    method: str
    bits: float | None
    output: str
    backends: str
    needs: str
    usable: bool
    reason: str
    help: str


def _quantizers() -> list[Quantizer]:
    """Registered quantizers by ascending ``list_order``; equal values keep registration order."""
    from llmctl.plugins import get_registry

    return sorted(get_registry().all("quantizer"), key=lambda q: q.list_order)


def all_method_names() -> list[str]:
    """Every ``quantizer:scheme`` name registered."""
    return [f"{q.name}:{s}" for q in _quantizers() for s in q.schemes]


def parse_method(text: str) -> MethodChoice:
    """The quantizer and scheme a ``--method`` value names; a bare scheme works when one quantizer has it."""
    wanted = text.strip().lower()
    backend, _, scheme = wanted.partition(":")
    for quantizer in _quantizers():
        if scheme and quantizer.name.lower() == backend and scheme in quantizer.schemes:
            return MethodChoice(quantizer, scheme)
    if not scheme:
        owners = [q for q in _quantizers() if wanted in q.schemes]
        if len(owners) == 1:
            return MethodChoice(owners[0], wanted)
    raise UnknownNameError("quantization method", text, suggest(text, all_method_names()))


def availability(quantizer: Quantizer, scheme: str) -> tuple[bool, str]:
    """Whether ``quantizer`` can write ``scheme`` on this machine, and why not."""
    if quantizer.available is None:
        return True, ""
    return quantizer.available(scheme)


def require_usable(choice: MethodChoice) -> None:
    """Raise the one-line error that says why ``choice`` cannot run here (a missing extra, no CUDA)."""
    usable, reason = availability(choice.quantizer, choice.scheme)
    if usable:
        return
    quantizer = choice.quantizer
    if quantizer.extra and quantizer.package and "not installed" in reason:
        raise MissingExtraError(quantizer.package, quantizer.extra, f"quantizing with {choice.name}")
    raise ResourceError(f"{choice.name} cannot run here: {reason}")


def method_rows() -> list[MethodRow]:
    """Every method with its nominal bits, output format, backends, needs and whether it is usable here."""
    rows = []
    for quantizer in _quantizers():
        for scheme in quantizer.schemes:
            usable, reason = availability(quantizer, scheme)
            needs = quantizer.scheme_needs.get(scheme) or (f"[{quantizer.extra}]" if quantizer.extra else "core")
            rows.append(MethodRow(f"{quantizer.name}:{scheme}", quantizer.bits.get(scheme),
                                  quantizer.output_format, ", ".join(quantizer.backends), needs, usable, reason,
                                  quantizer.scheme_help.get(scheme, "")))
    return rows


def quantizer_summaries() -> list[str]:
    """One line per quantizer: what it writes, where it runs and which plugin registered it."""
    return [f"{q.name}: writes {q.output_format}, runs on {', '.join(q.backends)} — {q.description} ({q.plugin})"
            for q in _quantizers()]

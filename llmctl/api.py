"""The public API for plugin authors: everything a plugin imports from llmctl comes from this one module.

What is public
    Every name in ``__all__`` below. Its names, fields and call signatures change only with a note in the changelog
    and a release that says so; a field is added with a default, never removed or renamed in a minor release. The
    hook names and their argument names (``register``, ``app``) are public too (see ``llmctl.hookspecs``).

What is not
    Every other module of llmctl (``llmctl.train.loop``, ``llmctl.cli.*``, ``llmctl.quantize.run`` …) and every
    module of the builtin plugins (``llmctl_plugins.*``): they are the implementation and change without notice.
    Read them to learn; import from here. A name this module lacks that your plugin needs is a missing feature:
    please open an issue.

The groups:

- descriptors, registered from the hooks: :class:`Family` (with :class:`ModelSpec`, :class:`GGUFMapping`,
  :class:`ParameterCount`), :class:`Method` (with :class:`Range`), :class:`Quantizer`, :class:`Backend` (its probe
  returns a :class:`BackendStatus`), :class:`Source`, :class:`Engine`; and :data:`hookimpl`, the marker of a hook.
- training methods: :class:`TrainingMethod` (subclass it; ``Method.build`` returns an instance),
  :class:`MethodContext` (what a hook is handed besides the model), :class:`LossOutput` (what ``loss`` returns).
- quantizers: :class:`QuantizedOutput` (what ``Quantizer.quantize`` returns), :class:`Artifact` (a store entry: the
  source it is handed, the artefact ``Quantizer.load`` and ``Engine.load`` are handed), :func:`float_model_dir`,
  :func:`count_parameters`, :func:`weight_bytes`.
- engines: :class:`ChatEngine` (the protocol ``Engine.load`` returns), :class:`SamplingParams`,
  :class:`GenerationStats`; and :func:`load_causal_lm`, :func:`load_tokenizer` for a transformers model folder.
- families: :func:`decoder_config`, :func:`tiny_config`, :data:`DECODER_ATTENTION`, :data:`DECODER_MLP` (from
  :mod:`llmctl.family_configs`) and :mod:`chat_templates` (``chat_templates.CHATML`` …).
- helpers: :func:`pad_token_id` (the id to pad a batch with); :func:`get_registry`, the descriptors every loaded
  plugin registered (``names(kind)``, ``get(kind, name)``, ``all(kind)``, ``family(name)``), for a command plugin.
- errors: raise :class:`LlmctlError` or a subclass for anything the user can act on; llmctl prints ``str(error)``
  as one line and exits with the class's ``exit_code`` (no traceback).

Test helpers live in :mod:`llmctl.testing` (a temporary store, tiny models, tiny data sets).

Importing this module is cheap: it imports neither torch nor transformers nor peft (those load inside the functions
that need them), so a plugin module may import it at the top.
"""

from __future__ import annotations

from llmctl import chat_templates
from llmctl.config import Range
from llmctl.descriptors import (
    Backend,
    BackendStatus,
    Engine,
    Family,
    GGUFMapping,
    Method,
    ModelSpec,
    ParameterCount,
    Quantizer,
    Source,
)
from llmctl.errors import DataError, LlmctlError, MissingExtraError, NetworkError, ResourceError, UnknownNameError
from llmctl.family_configs import DECODER_ATTENTION, DECODER_MLP, decoder_config, tiny_config
from llmctl.generate.engine import ChatEngine, GenerationStats
from llmctl.generate.params import SamplingParams
from llmctl.hookspecs import hookimpl
from llmctl.models.loading import load_causal_lm, load_tokenizer
from llmctl.models.tokens import pad_token_id
from llmctl.plugins import get_registry
from llmctl.quantize.provenance import count_parameters, float_model_dir, weight_bytes
from llmctl.quantize.result import QuantizedOutput
from llmctl.store import Artifact
from llmctl.train.method import LossOutput, MethodContext, TrainingMethod

__all__ = [
    # descriptors and the hook marker
    "Backend",
    "BackendStatus",
    "Engine",
    "Family",
    "GGUFMapping",
    "Method",
    "ModelSpec",
    "ParameterCount",
    "Quantizer",
    "Range",
    "Source",
    "hookimpl",
    # training methods
    "LossOutput",
    "MethodContext",
    "TrainingMethod",
    # quantizers
    "Artifact",
    "QuantizedOutput",
    "count_parameters",
    "float_model_dir",
    "weight_bytes",
    # engines
    "ChatEngine",
    "GenerationStats",
    "SamplingParams",
    "load_causal_lm",
    "load_tokenizer",
    # families
    "DECODER_ATTENTION",
    "DECODER_MLP",
    "chat_templates",
    "decoder_config",
    "tiny_config",
    # helpers
    "get_registry",
    "pad_token_id",
    # errors
    "DataError",
    "LlmctlError",
    "MissingExtraError",
    "NetworkError",
    "ResourceError",
    "UnknownNameError",
]

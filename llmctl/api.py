"""The public API for plugin authors: everything a plugin imports from llmctl comes from this one module.

What is public
    Every name in ``__all__`` below, with the fields, methods and call signatures its docstring describes. They change
    only with a changelog entry; a field or keyword is added with a default, never removed or renamed in a minor
    release. The hook names and their argument names (``register``, ``app``; see ``llmctl.hookspecs``), the
    ``llmctl`` entry-point group and the ``LLMCTL_*`` environment variables are public too.

What is not
    Every other module of llmctl (``llmctl.train.loop``, ``llmctl.cli.*``, ``llmctl.quantize.run`` …) and every
    module of the builtin plugins (``llmctl_plugins.*``): they are the implementation and change without notice.
    Read them to learn, import from here. A name your plugin needs and this module lacks is a missing feature:
    please open an issue rather than import around it.

The groups:

- descriptors, registered from the hooks: :class:`Family` (with :class:`ModelSpec`, :class:`GGUFMapping`,
  :class:`ParameterCount`), :class:`Method` (with :class:`Range` and :func:`setting` for its settings dataclass),
  :class:`Quantizer`, :class:`Reward`, :class:`Backend` (its probe returns a :class:`BackendStatus`),
  :class:`Source`, :class:`Engine`; and :data:`hookimpl`, the marker of a hook implementation.
- training methods: :class:`TrainingMethod` (subclass it; ``Method.build()`` returns an instance),
  :class:`MethodContext` (what every hook is handed besides model and settings), :class:`LossOutput` (what ``loss``
  returns), :data:`IGNORE_INDEX` (the label of a position that takes no loss), :func:`model_inputs`. The pieces our
  own methods share: adapters (:class:`LoraSettings`, :class:`AdapterSettings`, :func:`lora_config`,
  :func:`wrap_in_adapter`, :func:`wrap_for_training`, :func:`adapter_output`), the reference policy
  (:func:`reference_of`, :class:`AdapterOff`), log-probabilities (:func:`token_logprobs`,
  :func:`completion_logprobs`), sampling from the policy (:class:`SamplingSettings`, :func:`sample_responses`),
  prompt and preference data (:func:`load_prompts`, :func:`load_preference_data`, :func:`collate_pairs`), and
  :func:`settings_from` (a settings dataclass filled from resolved settings). Rewards: :func:`resolve_rewards` turns
  a ``reward`` setting into a :class:`RewardSet` (``score``, ``names``, ``required_columns``).
- quantizers: :class:`QuantizedOutput` (what ``Quantizer.quantize`` returns), :class:`Artifact` (a store entry: the
  source a quantizer is handed, the artefact ``Quantizer.load`` and ``Engine.load`` are handed),
  :func:`float_source_dir`, :func:`save_quantized_model`, :func:`quiet_transformers`, :func:`count_parameters`,
  :func:`weight_bytes`.
- sources: :func:`create_artifact` (write a store entry atomically), :func:`find_artifact`.
- engines: :class:`ChatEngine` (the protocol ``Engine.load`` returns), :class:`SamplingParams`,
  :class:`GenerationStats`; :func:`load_causal_lm` and :func:`load_tokenizer` for a transformers model folder.
- families: :func:`decoder_config`, :func:`tiny_config`, :data:`DECODER_ATTENTION`, :data:`DECODER_MLP` (see
  :mod:`llmctl.family_configs`) and the module :mod:`chat_templates` (``chat_templates.CHATML`` …).
- helpers: :func:`pad_token_id` (the id to pad a batch with); :func:`get_registry`, the descriptors every loaded
  plugin registered (``names(kind)``, ``get(kind, name)``, ``all(kind)``, ``family(name)``), for a command plugin.
- errors: raise :class:`LlmctlError` or a subclass for anything the user can act on; llmctl prints ``str(error)``
  as one line and exits with the class's ``exit_code`` (no traceback).

Test helpers live in :mod:`llmctl.testing` (a temporary store, the CLI as a function, tiny models and data sets).

Importing this module is cheap: it imports neither torch nor transformers nor peft (the functions import them when
called), so a plugin module may import it at the top.
"""

from __future__ import annotations

from llmctl import chat_templates
from llmctl.config import Range
from llmctl.data.encode import IGNORE as IGNORE_INDEX
from llmctl.data.preference import collate_pairs
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
    Reward,
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
from llmctl.quantize.provenance import count_parameters, weight_bytes
from llmctl.quantize.result import QuantizedOutput
from llmctl.quantize.safetensors_output import float_source_dir, quiet_transformers, save_quantized_model
from llmctl.reward.functions import RewardSet, resolve_rewards
from llmctl.settings_schema import setting, settings_from
from llmctl.store import Artifact, create_artifact, find_artifact
from llmctl.train.adapters import (
    AdapterSettings,
    LoraSettings,
    adapter_output,
    lora_config,
    wrap_for_training,
    wrap_in_adapter,
)
from llmctl.train.logprobs import completion_logprobs, token_logprobs
from llmctl.train.method import LossOutput, MethodContext, TrainingMethod, model_inputs
from llmctl.train.prompts import load_preference_data, load_prompts
from llmctl.train.reference import AdapterOff, reference_of
from llmctl.train.sampling import SamplingSettings, sample_responses

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
    "Reward",
    "Source",
    "hookimpl",
    "setting",
    # training methods
    "IGNORE_INDEX",
    "LossOutput",
    "MethodContext",
    "TrainingMethod",
    "model_inputs",
    "settings_from",
    # ... and the pieces our methods share
    "AdapterOff",
    "AdapterSettings",
    "LoraSettings",
    "SamplingSettings",
    "adapter_output",
    "collate_pairs",
    "completion_logprobs",
    "load_preference_data",
    "load_prompts",
    "lora_config",
    "reference_of",
    "sample_responses",
    "token_logprobs",
    "wrap_for_training",
    "wrap_in_adapter",
    # rewards
    "RewardSet",
    "resolve_rewards",
    # quantizers
    "Artifact",
    "QuantizedOutput",
    "count_parameters",
    "float_source_dir",
    "quiet_transformers",
    "save_quantized_model",
    "weight_bytes",
    # sources
    "create_artifact",
    "find_artifact",
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

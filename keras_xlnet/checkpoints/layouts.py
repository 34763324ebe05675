"""Where each variable of our models lives in every XLNet checkpoint layout.

A layout maps a variable path of `XLNetBackbone` / `XLNetClassifier` (for
example `encoder_block_3/attention/query/kernel`) to a source tensor name
and a transform into our shape. Stacked `[num_layers, ...]` tensors of the
TF layouts are sliced per layer.
"""

import dataclasses
import functools
import re
from typing import Callable

import numpy as np

from keras_xlnet.checkpoints.readers import CheckpointError

TF1 = "tf1"
TF2_TFM230 = "tf2_keras_xlnet_tfm230"
TF2_TFM240 = "tf2_xlnetbase_tfm240"
HUGGINGFACE = "huggingface"


def _identity(array, layer):
    return array


@dataclasses.dataclass(frozen=True)
class TensorSource:
    """One target variable's source tensor and how to reshape it."""

    target: str
    key: str
    transform: Callable[[np.ndarray], np.ndarray]
    # Missing from some checkpoints of this layout; filled with zeros then.
    optional: bool = False


def _transpose(array, layer):
    """PyTorch `Linear` weights are `[out, in]`."""
    return array.T


def _flatten(array, layer):
    return array.reshape(-1)


def _layer_slice(array, layer):
    """A stacked `[L, N, H]` bias, or a shared `[N, H]` one (the
    `untie_r=False` checkpoints) that every layer uses as is."""
    return array if array.ndim == 2 else array[layer]


def _stacked(array, layer):
    return array[layer]


def _heads_last_to_model_first(array, layer):
    """`[N, H, D]` output kernels (tf-models-official >= 2.4) to `[D, N, H]`."""
    return np.transpose(array, (2, 0, 1))


def detect_layout(keys):
    """Names the layout of a checkpoint from its tensor names."""
    keys = list(keys)
    if any(k.startswith("model/transformer/") for k in keys):
        return TF1
    if any(k.startswith("model/transformerxl_model/") for k in keys):
        return TF2_TFM230
    if any(k.startswith("model/xlnet_model/") for k in keys):
        return TF2_TFM240
    if any("rel_attn.r_w_bias" in k for k in keys):
        return HUGGINGFACE
    sample = ", ".join(keys[:5])
    raise CheckpointError(
        "Unrecognised checkpoint layout: no key starts with "
        "'model/transformer/' (TF1), 'model/transformerxl_model/' (TF2, "
        "tf-models-official <= 2.3), 'model/xlnet_model/' (TF2, >= 2.4) or "
        f"holds Hugging Face's 'rel_attn.r_w_bias'. First keys: {sample}"
    )


def _kernels(template, names):
    """Attention kernel entries: `template` holds `{name}` and `{l}`."""
    ours = ("query", "key", "value", "position", "output")
    return {
        f"attention/{o}/kernel": template.replace("{name}", n)
        for o, n in zip(ours, names)
    }


def _pair(ours, template, names, transform=_identity):
    """Two entries `ours/{a}`, `ours/{b}` from `template` with `{w}`."""
    ours_names = ("gamma", "beta") if "norm" in ours else ("kernel", "bias")
    return {
        f"{ours}/{o}": (template.replace("{w}", w), t)
        for o, w, t in zip(ours_names, names, (transform, _identity))
    }


# Per layout: our variable path -> source key (or `(key, transform)`).
# `{l}` is the layer; paths under `attention/` and `ffn_` are per layer;
# `summary/` and `logits/` form the classification head, `{task}` its name.
_TF1 = "model/transformer"
_TFM230 = "model/transformerxl_model"
_TFM240 = "model/xlnet_model"
_TFM240_LAYER = f"{_TFM240}/_transformer_xl/transformer_xl_layers/{{l}}"

_DENSE = ("kernel", "bias")
_NORM = ("gamma", "beta")
_TF_HEAD = {
    **_pair(
        "summary",
        "model/summarization_layer/proj_layer/{w}",
        _DENSE,
    ),
    **_pair("logits", "model/cl_loss_layer/proj_layer/{w}", _DENSE),
}

_LAYOUTS = {
    TF1: {
        "token_embedding/embeddings": f"{_TF1}/word_embedding/lookup_table",
        "query_stream_embedding/mask_embedding": (
            f"{_TF1}/mask_emb/mask_emb",
            _flatten,
        ),
        "attention/content_bias": (f"{_TF1}/r_w_bias", _layer_slice),
        "attention/position_bias": (f"{_TF1}/r_r_bias", _layer_slice),
        "attention/segment_bias": (f"{_TF1}/r_s_bias", _layer_slice),
        "attention/segment_embedding": (f"{_TF1}/seg_embed", _stacked),
        **_kernels(_TF1 + "/layer_{l}/rel_attn/{name}/kernel", "qkvro"),
        **_pair(
            "attention/layer_norm",
            _TF1 + "/layer_{l}/rel_attn/LayerNorm/{w}",
            _NORM,
        ),
        **_pair("ffn_inner", _TF1 + "/layer_{l}/ff/layer_1/{w}", _DENSE),
        **_pair("ffn_output", _TF1 + "/layer_{l}/ff/layer_2/{w}", _DENSE),
        **_pair(
            "ffn_layer_norm",
            _TF1 + "/layer_{l}/ff/LayerNorm/{w}",
            _NORM,
        ),
        **_pair("summary", "model/sequnece_summary/summary/{w}", _DENSE),
        **_pair("logits", "model/classification_{task}/logit/{w}", _DENSE),
        "lm_head/bias": "model/lm_loss/bias",
    },
    TF2_TFM230: {
        "token_embedding/embeddings": (
            f"{_TFM230}/embedding_lookup/lookup_table"
        ),
        "query_stream_embedding/mask_embedding": (
            f"{_TFM230}/mask_emb.Smask_emb",
            _flatten,
        ),
        "attention/content_bias": (f"{_TFM230}/r_w_bias", _layer_slice),
        "attention/position_bias": (f"{_TFM230}/r_r_bias", _layer_slice),
        "attention/segment_bias": (f"{_TFM230}/r_s_bias", _layer_slice),
        "attention/segment_embedding": (f"{_TFM230}/seg_embed", _stacked),
        **_kernels(
            _TFM230 + "/rel_multihead_layers/{l}/{name}.Skernel", "qkvro"
        ),
        **_pair(
            "attention/layer_norm",
            _TFM230 + "/rel_multihead_layers/{l}/output_layer_norm/{w}",
            _NORM,
        ),
        **_pair(
            "ffn_inner",
            _TFM230
            + "/h_positionwise_ffn_layers/{l}/inner_projection_layer/{w}",
            _DENSE,
        ),
        **_pair(
            "ffn_output",
            _TFM230
            + "/h_positionwise_ffn_layers/{l}/output_projection_layer/{w}",
            _DENSE,
        ),
        **_pair(
            "ffn_layer_norm",
            _TFM230 + "/h_positionwise_ffn_layers/{l}/output_layer_norm/{w}",
            _NORM,
        ),
        **_TF_HEAD,
        "lm_head/bias": "model/lmloss_layer/bias",
    },
    TF2_TFM240: {
        "token_embedding/embeddings": f"{_TFM240}/_embedding_layer/embeddings",
        "query_stream_embedding/mask_embedding": (
            f"{_TFM240}/mask_emb.Smask_emb",
            _flatten,
        ),
        "attention/content_bias": (
            f"{_TFM240}/_transformer_xl/content_attention_bias",
            _layer_slice,
        ),
        "attention/position_bias": (
            f"{_TFM240}/_transformer_xl/positional_attention_bias",
            _layer_slice,
        ),
        "attention/segment_bias": (
            f"{_TFM240}/_transformer_xl/segment_attention_bias",
            _layer_slice,
        ),
        "attention/segment_embedding": (f"{_TFM240}/seg_embed", _stacked),
        **_kernels(
            _TFM240_LAYER + "/_attention_layer/_{name}_dense/kernel",
            ("query", "key", "value", "encoding", "output"),
        ),
        "attention/output/kernel": (
            _TFM240_LAYER + "/_attention_layer/_output_dense/kernel",
            _heads_last_to_model_first,
        ),
        **_pair(
            "attention/layer_norm",
            _TFM240_LAYER + "/_attention_layer_norm/{w}",
            _NORM,
        ),
        **_pair("ffn_inner", _TFM240_LAYER + "/_inner_dense/{w}", _DENSE),
        **_pair("ffn_output", _TFM240_LAYER + "/_output_dense/{w}", _DENSE),
        **_pair(
            "ffn_layer_norm",
            _TFM240_LAYER + "/_output_layer_norm/{w}",
            _NORM,
        ),
        **_TF_HEAD,
        "lm_head/bias": "model/lmloss_layer/bias",
    },
    HUGGINGFACE: {
        "token_embedding/embeddings": "{prefix}word_embedding.weight",
        "query_stream_embedding/mask_embedding": ("{prefix}mask_emb", _flatten),
        "attention/content_bias": "{prefix}layer.{l}.rel_attn.r_w_bias",
        "attention/position_bias": "{prefix}layer.{l}.rel_attn.r_r_bias",
        "attention/segment_bias": "{prefix}layer.{l}.rel_attn.r_s_bias",
        "attention/segment_embedding": "{prefix}layer.{l}.rel_attn.seg_embed",
        **_kernels("{prefix}layer.{l}.rel_attn.{name}", "qkvro"),
        **_pair(
            "attention/layer_norm",
            "{prefix}layer.{l}.rel_attn.layer_norm.{w}",
            ("weight", "bias"),
        ),
        **_pair(
            "ffn_inner",
            "{prefix}layer.{l}.ff.layer_1.{w}",
            ("weight", "bias"),
            _transpose,
        ),
        **_pair(
            "ffn_output",
            "{prefix}layer.{l}.ff.layer_2.{w}",
            ("weight", "bias"),
            _transpose,
        ),
        **_pair(
            "ffn_layer_norm",
            "{prefix}layer.{l}.ff.layer_norm.{w}",
            ("weight", "bias"),
        ),
        **_pair(
            "summary",
            "sequence_summary.summary.{w}",
            ("weight", "bias"),
            _transpose,
        ),
        **_pair("logits", "logits_proj.{w}", ("weight", "bias"), _transpose),
        "lm_head/bias": "lm_loss.bias",
    },
}
# Only these may be absent (tf-models-official >= 2.4 classifiers, the
# fine-tuning-only checkpoints): the query stream is for pretraining.
_OPTIONAL = ("query_stream_embedding/mask_embedding",)
_HEAD_PREFIXES = ("summary/", "logits/")
_LM_HEAD_PREFIX = "lm_head/"
# The Model Garden's optional projection before the tied LM output
# (`use_proj=True` of its `run_pretrain.py`), which our LM head lacks.
_LM_PROJECTION = (
    r"model/lmloss_layer/proj_layer(_norm)?/.*",
    r"model/lm_loss/lm_projection/.*",
)
_PER_LAYER_PREFIXES = ("attention/", "ffn_")


def _placeholders(layout, keys):
    """Values of the `{prefix}` and `{task}` placeholders for `keys`."""
    if layout == HUGGINGFACE:
        nested = any(k.startswith("transformer.") for k in keys)
        return {"prefix": "transformer." if nested else ""}
    if layout == TF1:
        for key in keys:
            match = re.fullmatch(
                r"model/classification_([^/]+)/logit/kernel", key
            )
            if match:
                return {"task": match.group(1)}
        return {"task": "*"}  # No head: no key will match.
    return {}


def tensor_sources(layout, keys, num_layers):
    """The `TensorSource` of every variable, for a checkpoint's keys.

    The classification head is included when the checkpoint holds one.
    """
    keys = set(keys)
    placeholders = _placeholders(layout, keys)
    entries = {
        target: entry if isinstance(entry, tuple) else (entry, _identity)
        for target, entry in _LAYOUTS[layout].items()
    }
    sources = []
    for target, (template, transform) in entries.items():
        per_layer = target.startswith(_PER_LAYER_PREFIXES)
        for layer in range(num_layers) if per_layer else [None]:
            key = template.format(l=layer, **placeholders)
            path = f"encoder_block_{layer}/{target}" if per_layer else target
            sources.append(
                TensorSource(
                    path,
                    key,
                    functools.partial(transform, layer=layer),
                    optional=target in _OPTIONAL,
                )
            )
    logits_key = next(s.key for s in sources if s.target == "logits/kernel")
    lm_bias_key = next(s.key for s in sources if s.target == "lm_head/bias")
    if logits_key not in keys:
        sources = [
            s for s in sources if not s.target.startswith(_HEAD_PREFIXES)
        ]
    if logits_key in keys or lm_bias_key not in keys:
        # A classifier's checkpoint builds the classifier (an LM bias
        # beside it is ignored); without a bias there is no LM head.
        sources = [
            s for s in sources if not s.target.startswith(_LM_HEAD_PREFIX)
        ]
    return sources


def check_lm_projection(keys):
    """Refuses a checkpoint whose LM head has the Model Garden's
    projection (`use_proj=True`), naming its tensors."""
    projection = sorted(
        key
        for key in keys
        if any(re.fullmatch(pattern, key) for pattern in _LM_PROJECTION)
    )
    if projection:
        raise CheckpointError(
            "The checkpoint's LM head has a projection before the tied "
            f"output ({projection}: the Model Garden's `use_proj=True`), "
            "which XLNetPermutationLM does not have (the released XLNet "
            "checkpoints and Hugging Face have none). Convert the "
            "checkpoint's encoder alone by removing those tensors, or "
            "train the LM head again."
        )


# Tensors that are deliberately not loaded: training state, Hugging Face's
# copy of the tied LM weight, and an LM bias beside a classification head.
_IGNORED = (
    r"_CHECKPOINTABLE_OBJECT_GRAPH",
    r"global_step",
    r"save_counter",
    r"optimizer/.*",
    r".*/\.OPTIMIZER_SLOT/.*",
    r".*/adam_[mv]",
    r".*/Adam(_1)?",
    r"model/lm_loss/bias",
    r"model/lmloss_layer/bias",
    r"lm_loss\.(bias|weight)",
)


def is_ignored(key):
    return any(re.fullmatch(pattern, key) for pattern in _IGNORED)


def has_classification_head(sources):
    return any(source.target.startswith("logits/") for source in sources)


def has_lm_head(sources):
    return any(source.target.startswith(_LM_HEAD_PREFIX) for source in sources)

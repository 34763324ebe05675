"""Where each variable of our models lives in every XLNet checkpoint layout.

A layout maps a variable path of `XLNetBackbone` / `XLNetClassifier` (for
example `encoder_block_3/attention/query/kernel`) to a source tensor name
and a transform into our shape. Stacked `[num_layers, ...]` tensors of the
TF layouts are sliced per layer.
"""

import dataclasses
import re
from typing import Callable

import numpy as np

TF1 = "tf1"
TF2_TFM230 = "tf2_keras_xlnet_tfm230"
TF2_TFM240 = "tf2_xlnetbase_tfm240"
HUGGINGFACE = "huggingface"


def _identity(array):
    return array


@dataclasses.dataclass(frozen=True)
class TensorSource:
    """One target variable's source tensor and how to reshape it."""

    target: str
    key: str
    transform: Callable[[np.ndarray], np.ndarray] = _identity
    # Missing from some checkpoints of this layout; filled with zeros then.
    optional: bool = False


def _transpose(array):
    return array.T


def _flatten(array):
    return array.reshape(-1)


def _layer_slice(layer):
    """Slices a stacked `[L, ...]` bias; a shared `[N, H]` one (the
    `untie_r=False` checkpoints) is used by every layer as is."""

    def transform(array):
        return array if array.ndim == 2 else array[layer]

    return transform


def _stacked(layer):
    def transform(array):
        return array[layer]

    return transform


def _heads_last_to_model_first(array):
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
    raise ValueError(
        "Unrecognised checkpoint layout: no key starts with "
        "'model/transformer/' (TF1), 'model/transformerxl_model/' (TF2, "
        "tf-models-official <= 2.3), 'model/xlnet_model/' (TF2, >= 2.4) or "
        f"holds Hugging Face's 'rel_attn.r_w_bias'. First keys: {sample}"
    )


def _block(layer, name):
    return f"encoder_block_{layer}/{name}"


def _tf1_sources(keys, num_layers):
    base = "model/transformer"
    sources = [
        TensorSource(
            "token_embedding/embeddings", f"{base}/word_embedding/lookup_table"
        ),
        TensorSource(
            "query_stream_embedding/mask_embedding",
            f"{base}/mask_emb/mask_emb",
            _flatten,
            optional=True,
        ),
    ]
    for layer in range(num_layers):
        prefix = f"{base}/layer_{layer}"
        sources += _shared_bias_sources(
            layer, base, "r_w_bias", "r_r_bias", "r_s_bias", "seg_embed"
        )
        for ours, theirs in zip(
            ("query", "key", "value", "position", "output"), "qkvro"
        ):
            sources.append(
                TensorSource(
                    _block(layer, f"attention/{ours}/kernel"),
                    f"{prefix}/rel_attn/{theirs}/kernel",
                )
            )
        sources += _norm_sources(
            layer,
            "attention/layer_norm",
            f"{prefix}/rel_attn/LayerNorm",
            "gamma",
            "beta",
        )
        sources += _dense_sources(layer, "ffn_inner", f"{prefix}/ff/layer_1")
        sources += _dense_sources(layer, "ffn_output", f"{prefix}/ff/layer_2")
        sources += _norm_sources(
            layer, "ffn_layer_norm", f"{prefix}/ff/LayerNorm", "gamma", "beta"
        )
    logits = [
        k
        for k in keys
        if re.fullmatch(r"model/classification_[^/]+/logit/kernel", k)
    ]
    if logits:
        sources += _head_sources(
            "model/sequnece_summary/summary", logits[0].removesuffix("/kernel")
        )
    return sources


def _tf2_tfm230_sources(keys, num_layers):
    base = "model/transformerxl_model"
    sources = [
        TensorSource(
            "token_embedding/embeddings",
            f"{base}/embedding_lookup/lookup_table",
        ),
        TensorSource(
            "query_stream_embedding/mask_embedding",
            f"{base}/mask_emb.Smask_emb",
            _flatten,
            optional=True,
        ),
    ]
    for layer in range(num_layers):
        attention = f"{base}/rel_multihead_layers/{layer}"
        ffn = f"{base}/h_positionwise_ffn_layers/{layer}"
        sources += _shared_bias_sources(
            layer, base, "r_w_bias", "r_r_bias", "r_s_bias", "seg_embed"
        )
        for ours, theirs in zip(
            ("query", "key", "value", "position", "output"), "qkvro"
        ):
            sources.append(
                TensorSource(
                    _block(layer, f"attention/{ours}/kernel"),
                    f"{attention}/{theirs}.Skernel",
                )
            )
        sources += _norm_sources(
            layer,
            "attention/layer_norm",
            f"{attention}/output_layer_norm",
            "gamma",
            "beta",
        )
        sources += _dense_sources(
            layer, "ffn_inner", f"{ffn}/inner_projection_layer"
        )
        sources += _dense_sources(
            layer, "ffn_output", f"{ffn}/output_projection_layer"
        )
        sources += _norm_sources(
            layer, "ffn_layer_norm", f"{ffn}/output_layer_norm", "gamma", "beta"
        )
    sources += _tf2_head_sources(keys)
    return sources


def _tf2_tfm240_sources(keys, num_layers):
    base = "model/xlnet_model"
    xl = f"{base}/_transformer_xl"
    sources = [
        TensorSource(
            "token_embedding/embeddings", f"{base}/_embedding_layer/embeddings"
        ),
        TensorSource(
            "query_stream_embedding/mask_embedding",
            f"{base}/mask_emb",
            _flatten,
            optional=True,
        ),
    ]
    for layer in range(num_layers):
        block = f"{xl}/transformer_xl_layers/{layer}"
        sources += _shared_bias_sources(
            layer,
            xl,
            "content_attention_bias",
            "positional_attention_bias",
            "segment_attention_bias",
            None,
        )
        sources.append(
            TensorSource(
                _block(layer, "attention/segment_embedding"),
                f"{base}/seg_embed",
                _stacked(layer),
            )
        )
        for ours, theirs in zip(
            ("query", "key", "value", "position"),
            ("query", "key", "value", "encoding"),
        ):
            sources.append(
                TensorSource(
                    _block(layer, f"attention/{ours}/kernel"),
                    f"{block}/_attention_layer/_{theirs}_dense/kernel",
                )
            )
        sources.append(
            TensorSource(
                _block(layer, "attention/output/kernel"),
                f"{block}/_attention_layer/_output_dense/kernel",
                _heads_last_to_model_first,
            )
        )
        sources += _norm_sources(
            layer,
            "attention/layer_norm",
            f"{block}/_attention_layer_norm",
            "gamma",
            "beta",
        )
        sources += _dense_sources(layer, "ffn_inner", f"{block}/_inner_dense")
        sources += _dense_sources(layer, "ffn_output", f"{block}/_output_dense")
        sources += _norm_sources(
            layer,
            "ffn_layer_norm",
            f"{block}/_output_layer_norm",
            "gamma",
            "beta",
        )
    sources += _tf2_head_sources(keys)
    return sources


def _huggingface_sources(keys, num_layers):
    prefix = (
        "transformer."
        if any(k.startswith("transformer.") for k in keys)
        else ""
    )
    sources = [
        TensorSource(
            "token_embedding/embeddings", f"{prefix}word_embedding.weight"
        ),
        TensorSource(
            "query_stream_embedding/mask_embedding",
            f"{prefix}mask_emb",
            _flatten,
            optional=True,
        ),
    ]
    for layer in range(num_layers):
        attention = f"{prefix}layer.{layer}.rel_attn"
        ffn = f"{prefix}layer.{layer}.ff"
        for ours, theirs in (
            ("content_bias", "r_w_bias"),
            ("position_bias", "r_r_bias"),
            ("segment_bias", "r_s_bias"),
            ("segment_embedding", "seg_embed"),
            ("query/kernel", "q"),
            ("key/kernel", "k"),
            ("value/kernel", "v"),
            ("position/kernel", "r"),
            ("output/kernel", "o"),
        ):
            sources.append(
                TensorSource(
                    _block(layer, f"attention/{ours}"), f"{attention}.{theirs}"
                )
            )
        sources += _norm_sources(
            layer,
            "attention/layer_norm",
            f"{attention}.layer_norm",
            "weight",
            "bias",
            ".",
        )
        for ours, theirs in (
            ("ffn_inner", "layer_1"),
            ("ffn_output", "layer_2"),
        ):
            sources += [
                TensorSource(
                    _block(layer, f"{ours}/kernel"),
                    f"{ffn}.{theirs}.weight",
                    _transpose,
                ),
                TensorSource(
                    _block(layer, f"{ours}/bias"), f"{ffn}.{theirs}.bias"
                ),
            ]
        sources += _norm_sources(
            layer, "ffn_layer_norm", f"{ffn}.layer_norm", "weight", "bias", "."
        )
    if "logits_proj.weight" in keys:
        for ours, theirs in (
            ("summary", "sequence_summary.summary"),
            ("logits", "logits_proj"),
        ):
            sources += [
                TensorSource(f"{ours}/kernel", f"{theirs}.weight", _transpose),
                TensorSource(f"{ours}/bias", f"{theirs}.bias"),
            ]
    return sources


def _shared_bias_sources(
    layer, base, content, position, segment, segment_embedding
):
    sources = [
        TensorSource(
            _block(layer, "attention/content_bias"),
            f"{base}/{content}",
            _layer_slice(layer),
        ),
        TensorSource(
            _block(layer, "attention/position_bias"),
            f"{base}/{position}",
            _layer_slice(layer),
        ),
        TensorSource(
            _block(layer, "attention/segment_bias"),
            f"{base}/{segment}",
            _layer_slice(layer),
        ),
    ]
    if segment_embedding:
        sources.append(
            TensorSource(
                _block(layer, "attention/segment_embedding"),
                f"{base}/{segment_embedding}",
                _stacked(layer),
            )
        )
    return sources


def _norm_sources(layer, ours, theirs, gamma, beta, separator="/"):
    return [
        TensorSource(
            _block(layer, f"{ours}/gamma"), f"{theirs}{separator}{gamma}"
        ),
        TensorSource(
            _block(layer, f"{ours}/beta"), f"{theirs}{separator}{beta}"
        ),
    ]


def _dense_sources(layer, ours, theirs):
    return [
        TensorSource(_block(layer, f"{ours}/kernel"), f"{theirs}/kernel"),
        TensorSource(_block(layer, f"{ours}/bias"), f"{theirs}/bias"),
    ]


def _head_sources(summary, logits):
    return [
        TensorSource("summary/kernel", f"{summary}/kernel"),
        TensorSource("summary/bias", f"{summary}/bias"),
        TensorSource("logits/kernel", f"{logits}/kernel"),
        TensorSource("logits/bias", f"{logits}/bias"),
    ]


def _tf2_head_sources(keys):
    if "model/cl_loss_layer/proj_layer/kernel" not in keys:
        return []
    return _head_sources(
        "model/summarization_layer/proj_layer", "model/cl_loss_layer/proj_layer"
    )


_SOURCES = {
    TF1: _tf1_sources,
    TF2_TFM230: _tf2_tfm230_sources,
    TF2_TFM240: _tf2_tfm240_sources,
    HUGGINGFACE: _huggingface_sources,
}

# Tensors that are deliberately not loaded: training state and the LM head
# (its weight is the tied embedding; its bias belongs to a task we do not
# build here).
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


def tensor_sources(layout, keys, num_layers):
    """The `TensorSource`s of every variable, for a checkpoint's keys."""
    return _SOURCES[layout](set(keys), num_layers)


def has_classification_head(sources):
    return any(source.target.startswith("logits/") for source in sources)

"""`XLNetBackbone` arguments from the config files of the XLNet releases."""

from keras_xlnet.checkpoints.readers import CheckpointError

# `ff_activation` of the original `xlnet_config.json`: the TF code computes
# "gelu" with the tanh approximation, which the released weights expect.
_TF_ACTIVATIONS = {"gelu": "gelu_approximate", "relu": "relu"}
# Hugging Face: "gelu" is the exact erf GELU, "gelu_new" the tanh one.
_HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "relu": "relu",
}


def _activation(table, name, origin):
    if name not in table:
        raise CheckpointError(
            f"Unsupported ff_activation {name!r} in {origin}; expected one of "
            f"{sorted(table)}."
        )
    return table[name]


def _required(config, key, origin):
    if key not in config:
        raise CheckpointError(f"{origin} has no {key!r} entry.")
    return config[key]


def from_xlnet_config(config, origin="xlnet_config.json"):
    """Backbone kwargs from an original `xlnet_config.json` dict.

    Run-time settings that the file does not hold take XLNet's fine-tuning
    values (dropout 0.1, no memory, bidirectional attention).
    """
    return {
        "vocabulary_size": _required(config, "n_token", origin),
        "num_layers": _required(config, "n_layer", origin),
        "num_heads": _required(config, "n_head", origin),
        "hidden_dim": _required(config, "d_model", origin),
        "intermediate_dim": _required(config, "d_inner", origin),
        "head_dim": config.get("d_head"),
        "activation": _activation(
            _TF_ACTIVATIONS, config.get("ff_activation", "gelu"), origin
        ),
    }


def from_huggingface_config(config, origin="config.json"):
    """Backbone kwargs from a Hugging Face `XLNetConfig` dict."""
    num_heads = _required(config, "n_head", origin)
    hidden_dim = _required(config, "d_model", origin)
    return {
        "vocabulary_size": _required(config, "vocab_size", origin),
        "num_layers": _required(config, "n_layer", origin),
        "num_heads": num_heads,
        "hidden_dim": hidden_dim,
        "intermediate_dim": _required(config, "d_inner", origin),
        "head_dim": config.get("d_head", hidden_dim // num_heads),
        "dropout": config.get("dropout", 0.1),
        "attention_dropout": config.get("dropout", 0.1),
        "activation": _activation(
            _HF_ACTIVATIONS, config.get("ff_activation", "gelu"), origin
        ),
        "layer_norm_epsilon": config.get("layer_norm_eps", 1e-12),
        "clamp_len": config.get("clamp_len", -1),
        "bi_data": config.get("bi_data", False),
        "attention_type": config.get("attn_type", "bi"),
        "same_length": config.get("same_length", False),
        # The references' `0` (or none) keeps every position: our `None`.
        "memory_length": config.get("mem_len") or None,
        "reuse_length": config.get("reuse_len") or None,
    }

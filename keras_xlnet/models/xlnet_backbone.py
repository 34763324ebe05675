"""The XLNet encoder as a KerasHub backbone."""

import keras
from keras import ops
from keras_hub.models import Backbone

from keras_xlnet.layers.attention_masks import XLNetAttentionMask
from keras_xlnet.layers.attention_masks import XLNetSegmentMatrix
from keras_xlnet.layers.dropout import XLNetDropout
from keras_xlnet.layers.encoder_block import XLNetEncoderBlock
from keras_xlnet.layers.encoder_block import get_activation
from keras_xlnet.layers.query_stream_embedding import XLNetQueryStreamEmbedding
from keras_xlnet.layers.relative_position_encoding import (
    XLNetRelativePositionEncoding,
)
from keras_xlnet.models.input_checks import XLNetTokenIdCheck
from keras_xlnet.models.input_checks import is_count


def xlnet_kernel_initializer(stddev=0.02):
    return keras.initializers.RandomNormal(stddev=stddev)


def next_memory(
    layer_input, layer_memory, memory_length=None, reuse_length=None, stop=True
):
    """The memory a layer keeps for the next segment (Transformer-XL).

    Its earlier memory followed by the first `reuse_length` positions of
    this segment's input to the layer (`None`: all of them), trimmed to the
    last `memory_length` positions (`None`: all, `0`: none); without
    gradient unless `stop=False`.
    """
    if reuse_length is not None:
        layer_input = layer_input[:, :reuse_length]
    if layer_memory is not None:
        layer_input = ops.concatenate(
            [ops.cast(layer_memory, layer_input.dtype), layer_input], axis=1
        )
    if memory_length == 0:
        layer_input = layer_input[:, :0]
    elif memory_length is not None:
        layer_input = layer_input[:, -memory_length:]
    return ops.stop_gradient(layer_input) if stop else layer_input


def _checked_memory_mask(memory_mask, layer_memory):
    """`memory_mask` as `int32`, checked against the `[batch, M, D]`
    memory of one layer."""
    memory_mask = ops.cast(memory_mask, "int32")
    static = tuple(memory_mask.shape), tuple(layer_memory.shape[:2])
    if None not in static[0] + static[1] and static[0] != static[1]:
        raise ValueError(
            f"`memory_mask` must be [batch, memory length] = {static[1]}. "
            f"Received shape {static[0]}."
        )
    return memory_mask


def _is_rate(value):
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 <= value < 1
    )


def _is_positive_number(value):
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value > 0
    )


def _positions(value):
    return value is None or is_count(value)


# What each constructor argument must be, as `(check, expected)`.
ARGUMENT_RULES = {
    "vocabulary_size": (lambda v: is_count(v, 1), "a positive integer"),
    "num_layers": (lambda v: is_count(v, 1), "a positive integer"),
    "num_heads": (lambda v: is_count(v, 1), "a positive integer"),
    "hidden_dim": (lambda v: is_count(v, 1), "a positive integer"),
    "intermediate_dim": (lambda v: is_count(v, 1), "a positive integer"),
    "head_dim": (
        lambda v: v is None or is_count(v, 1),
        "a positive integer or None",
    ),
    "dropout": (_is_rate, "a number in [0, 1)"),
    "attention_dropout": (_is_rate, "a number in [0, 1)"),
    "activation": (lambda v: isinstance(v, str), "an activation name"),
    "layer_norm_epsilon": (_is_positive_number, "a positive number"),
    "clamp_len": (lambda v: is_count(v, -1), "an integer, -1 for none"),
    "bi_data": (lambda v: isinstance(v, bool), "true or false"),
    "attention_type": (lambda v: v in ("bi", "uni"), "'bi' or 'uni'"),
    "same_length": (lambda v: isinstance(v, bool), "true or false"),
    "memory_length": (
        _positions,
        "a non-negative integer, or None for all positions",
    ),
    "reuse_length": (
        _positions,
        "a non-negative integer, or None for all positions",
    ),
    "remat": (lambda v: isinstance(v, bool), "true or false"),
}
REQUIRED_ARGUMENTS = (
    "vocabulary_size",
    "num_layers",
    "num_heads",
    "hidden_dim",
    "intermediate_dim",
)


def check_backbone_config(config):
    """Refuses a backbone configuration (constructor arguments, or a
    preset's `config.json`) with a missing or ill-typed value, naming it."""
    missing = [name for name in REQUIRED_ARGUMENTS if name not in config]
    if missing:
        raise ValueError(
            f"The XLNetBackbone configuration lacks {missing}, each "
            f"{ARGUMENT_RULES[missing[0]][1]}."
        )
    for name, value in config.items():
        if name in ARGUMENT_RULES and not ARGUMENT_RULES[name][0](value):
            raise ValueError(
                f"`{name}` must be {ARGUMENT_RULES[name][1]}. "
                f"Received: {name}={value!r}"
            )


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetBackbone(Backbone):
    """XLNet encoder (Yang et al., 2019) with Transformer-XL relative attention.

    The functional model maps `token_ids`, `padding_mask` (1 = real token)
    and `segment_ids` to the last hidden states `[batch, T, hidden_dim]`.
    Padding may sit on either side. Any batch size and length run on one
    instance. Memory (`mems`) and the two-stream query path of pretraining
    are available through `encode()`.

    Args:
        vocabulary_size: int.
        num_layers: int.
        num_heads: int.
        hidden_dim: int, `d_model`.
        intermediate_dim: int, the FFN inner size `d_inner`.
        head_dim: int, defaults to `hidden_dim // num_heads`.
        dropout: float, on embeddings, position encodings, attention and FFN
            outputs and the final hidden states.
        attention_dropout: float, on attention probabilities.
        activation: `"gelu_approximate"` (tanh GELU, what XLNet was trained
            with), `"gelu"` (exact) or `"relu"`.
        layer_norm_epsilon: float.
        clamp_len: int, clip relative distances to this value; `-1` = off.
        bi_data: bool, forward and backward distances on the two halves of
            the batch (pretraining).
        attention_type: `"bi"` (bidirectional) or `"uni"` (causal).
        same_length: bool, with `"uni"`: every query sees as many keys.
        memory_length: int, how many positions `encode()` keeps as new
            memory (the last ones of memory + current segment); `None`
            (default) keeps all, `0` none.
        reuse_length: int, how many of a segment's first positions enter
            the new memory; `None` (default) all.
        remat: bool, rematerialise each encoder block (gradient
            checkpointing): activation memory of training falls to about the
            blocks' inputs, at the cost of recomputing them in the backward
            pass. Outputs and gradients are unchanged, with dropout too (the
            recomputation replays the same masks).
        dtype: dtype policy, e.g. `"float32"`, `"mixed_bfloat16"`.

    Example:
    ```python
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32,
    )
    outputs = backbone({
        "token_ids": np.array([[0, 0, 7, 8, 4, 3]]),
        "padding_mask": np.array([[0, 0, 1, 1, 1, 1]]),
        "segment_ids": np.array([[3, 3, 0, 0, 0, 2]]),
    })
    tuple(outputs.shape)
    # (1, 6, 16)
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        head_dim=None,
        dropout=0.1,
        attention_dropout=0.1,
        activation="gelu_approximate",
        layer_norm_epsilon=1e-12,
        clamp_len=-1,
        bi_data=False,
        attention_type="bi",
        same_length=False,
        memory_length=None,
        reuse_length=None,
        remat=False,
        dtype=None,
        **kwargs,
    ):
        check_backbone_config(
            {k: v for k, v in locals().items() if k in ARGUMENT_RULES}
        )
        head_dim = hidden_dim // num_heads if head_dim is None else head_dim
        get_activation(activation)  # Fails early on an unknown name.

        # === Layers ===
        initializer = xlnet_kernel_initializer()
        self.token_id_check = XLNetTokenIdCheck(
            vocabulary_size, dtype=dtype, name="token_id_check"
        )
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size,
            hidden_dim,
            embeddings_initializer=initializer,
            dtype=dtype,
            name="token_embedding",
        )
        self.query_stream_embedding = XLNetQueryStreamEmbedding(
            hidden_dim,
            embeddings_initializer=initializer,
            dtype=dtype,
            name="query_stream_embedding",
        )
        self.embeddings_dropout = XLNetDropout(
            dropout,
            dtype=dtype,
            name="embeddings_dropout",
        )
        self.position_encoding = XLNetRelativePositionEncoding(
            hidden_dim,
            attention_type=attention_type,
            bi_data=bi_data,
            clamp_len=clamp_len,
            dtype=dtype,
            name="position_encoding",
        )
        self.position_dropout = XLNetDropout(
            dropout, dtype=dtype, name="position_dropout"
        )
        self.attention_mask = XLNetAttentionMask(
            attention_type=attention_type,
            same_length=same_length,
            dtype=dtype,
            name="attention_mask",
        )
        self.segment_matrix = XLNetSegmentMatrix(
            dtype=dtype, name="segment_matrix"
        )
        self.encoder_blocks = [
            XLNetEncoderBlock(
                num_heads=num_heads,
                head_dim=head_dim,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                attention_dropout=attention_dropout,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=initializer,
                remat=remat,
                dtype=dtype,
                name=f"encoder_block_{i}",
            )
            for i in range(num_layers)
        ]
        self.output_dropout = XLNetDropout(
            dropout, dtype=dtype, name="output_dropout"
        )

        self.query_stream_embedding.build()

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(
            shape=(None,), dtype="int32", name="padding_mask"
        )
        segment_ids = keras.Input(
            shape=(None,), dtype="int32", name="segment_ids"
        )
        outputs = self._encode(token_ids, padding_mask, segment_ids)
        super().__init__(
            inputs={
                "token_ids": token_ids,
                "padding_mask": padding_mask,
                "segment_ids": segment_ids,
            },
            outputs=outputs["sequence_output"],
            dtype=dtype,
            **kwargs,
        )
        # The query stream is only used by `encode()`, outside the functional
        # graph: assigning it again now makes the model track its weight.
        self.query_stream_embedding = self.query_stream_embedding

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.head_dim = head_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.clamp_len = clamp_len
        self.bi_data = bi_data
        self.attention_type = attention_type
        self.same_length = same_length
        self.memory_length = memory_length
        self.reuse_length = reuse_length
        self.remat = remat

    def _encode(
        self,
        token_ids,
        padding_mask,
        segment_ids,
        memory=None,
        memory_mask=None,
        perm_mask=None,
        target_mapping=None,
        training=None,
        keep_layer_inputs=False,
        layer_inputs_only=False,
        output_positions=None,
    ):
        """The encoder.

        `memory_mask` (`[batch, M]`) hides memory positions;
        `keep_layer_inputs` adds `"layer_inputs"`, each block's content
        input (what the next segment's memory is made of);
        `layer_inputs_only` returns just those, skipping the last block;
        `output_positions` (`[batch, P]`) restricts the last block's content
        stream to those positions.
        """
        memory_length = 0 if memory is None else ops.shape(memory[0])[1]
        token_ids = self.token_id_check(token_ids)
        content = self.embeddings_dropout(
            self.token_embedding(token_ids), training=training
        )
        position_encoding = self.position_dropout(
            self.position_encoding(token_ids, memory_length=memory_length),
            training=training,
        )
        content_visible, query_visible = self.attention_mask(
            padding_mask,
            memory_length=memory_length,
            perm_mask=perm_mask,
            memory_mask=memory_mask,
        )
        segment_matrix = self.segment_matrix(
            segment_ids, memory_length=memory_length
        )
        query = None
        if target_mapping is not None:
            query = self.embeddings_dropout(
                self.query_stream_embedding(target_mapping), training=training
            )

        layer_inputs = []
        last = len(self.encoder_blocks) - 1
        for i, block in enumerate(self.encoder_blocks):
            layer_inputs.append(content)
            if layer_inputs_only and i == last:
                return {"layer_inputs": layer_inputs}
            streams = block(
                content,
                position_encoding,
                segment_matrix,
                content_visible,
                memory=None if memory is None else memory[i],
                query=query,
                query_visible=query_visible,
                target_mapping=target_mapping,
                output_positions=output_positions if i == last else None,
                training=training,
            )
            content, query = streams if query is not None else (streams, None)

        outputs = {
            "sequence_output": self.output_dropout(content, training=training)
        }
        if keep_layer_inputs:
            outputs["layer_inputs"] = layer_inputs
        if query is not None:
            outputs["query_output"] = self.output_dropout(
                query, training=training
            )
        return outputs

    def encode(
        self,
        token_ids,
        padding_mask,
        segment_ids,
        memory=None,
        memory_mask=None,
        perm_mask=None,
        target_mapping=None,
        training=False,
    ):
        """Runs the encoder with memory and/or the two-stream query path.

        Args:
            token_ids: `[batch, T]` int tensor.
            padding_mask: `[batch, T]`, 1 for real tokens.
            segment_ids: `[batch, T]` int tensor.
            memory: optional list of `num_layers` tensors `[batch, M, D]`,
                the `new_memory` of a previous call (batch-major).
            memory_mask: optional `[batch, M]`, 1 for the memory positions
                to attend (the `new_memory_mask` of a previous call, so
                that padding is never attended); `None`: all of them, as
                the reference implementation does.
            perm_mask: optional `[batch, T, T]`, 1 where token `i` may not
                attend to token `j` (permutation language modelling).
            target_mapping: optional `[batch, P, T]` one-hot rows placing the
                `P` predictions; enables the query stream.
            training: bool, enables dropout.

        Returns:
            A dict with `"sequence_output"` `[batch, T, D]` (content stream),
            `"new_memory"` (list of `[batch, M', D]`: the first
            `reuse_length` positions of each layer's input appended to its
            memory, trimmed to the last `memory_length`),
            `"new_memory_mask"` (`[batch, M']`, the padding mask of those
            positions, 1 for real ones) and, with `target_mapping`,
            `"query_output"` `[batch, P, D]`.

        Example:
        ```python
        backbone = keras_xlnet.XLNetBackbone(
            vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, memory_length=4,
        )
        segment = {
            "token_ids": np.array([[7, 8, 9, 4, 3]]),
            "padding_mask": np.ones((1, 5)),
            "segment_ids": np.array([[0, 0, 0, 0, 2]]),
        }
        first = backbone.encode(**segment)
        # The next segment attends to the last 4 states of each layer,
        # its padding hidden.
        second = backbone.encode(
            **segment,
            memory=first["new_memory"],
            memory_mask=first["new_memory_mask"],
        )
        tuple(second["new_memory"][0].shape)
        # (1, 4, 16)
        ```
        """
        if memory is not None and len(memory) != self.num_layers:
            raise ValueError(
                f"`memory` must hold one tensor per layer ({self.num_layers}). "
                f"Received {len(memory)} tensors."
            )
        if memory_mask is not None and memory is None:
            raise ValueError("`memory_mask` needs a `memory`.")
        padding_mask = ops.convert_to_tensor(padding_mask, "int32")
        if memory_mask is not None:
            memory_mask = _checked_memory_mask(memory_mask, memory[0])
        outputs = self._encode(
            ops.convert_to_tensor(token_ids, "int32"),
            padding_mask,
            ops.convert_to_tensor(segment_ids, "int32"),
            memory=memory,
            memory_mask=memory_mask,
            perm_mask=perm_mask,
            target_mapping=target_mapping,
            training=training,
            keep_layer_inputs=True,
        )
        layer_inputs = outputs.pop("layer_inputs")
        outputs["new_memory"] = [
            next_memory(
                layer_input,
                None if memory is None else memory[i],
                memory_length=self.memory_length,
                reuse_length=self.reuse_length,
            )
            for i, layer_input in enumerate(layer_inputs)
        ]
        if memory is not None and memory_mask is None:
            memory_mask = ops.ones(ops.shape(memory[0])[:2], "int32")
        outputs["new_memory_mask"] = next_memory(
            padding_mask,
            memory_mask,
            memory_length=self.memory_length,
            reuse_length=self.reuse_length,
            stop=False,
        )
        return outputs

    @staticmethod
    def get_layout_map(
        device_mesh,
        model_parallel_dim_name="model",
        data_parallel_dim_name="batch",
    ):
        """A `keras.distribution.LayoutMap` for model-parallel training.

        Attention heads and the FFN's inner dimension are split over the
        `model` axis of `device_mesh`; the model dimension of kernels and
        the vocabulary are split over the `batch` axis (as in KerasHub's
        backbones); layer norms are replicated.

        Example:
        ```python
        mesh = keras.distribution.DeviceMesh(
            (2, 4), ["batch", "model"], keras.distribution.list_devices()
        )
        layout_map = XLNetBackbone.get_layout_map(mesh)
        keras.distribution.set_distribution(
            keras.distribution.ModelParallel(
                layout_map=layout_map, batch_dim_name="batch"
            )
        )
        ```
        """
        model, data = model_parallel_dim_name, data_parallel_dim_name
        layout_map = keras.distribution.LayoutMap(device_mesh)
        layout_map["token_embedding/embeddings"] = (model, data)
        heads = "attention/(query|key|value|position|output)/kernel"
        layout_map[f"encoder_block.*/{heads}"] = (data, model, None)
        layout_map["encoder_block.*/attention/.*_bias"] = (model, None)
        layout_map["encoder_block.*/attention/segment_embedding"] = (
            None,
            model,
            None,
        )
        layout_map["encoder_block.*/ffn_inner/kernel"] = (data, model)
        layout_map["encoder_block.*/ffn_inner/bias"] = (model,)
        layout_map["encoder_block.*/ffn_output/kernel"] = (model, data)
        return layout_map

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "head_dim": self.head_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "clamp_len": self.clamp_len,
                "bi_data": self.bi_data,
                "attention_type": self.attention_type,
                "same_length": self.same_length,
                "memory_length": self.memory_length,
                "reuse_length": self.reuse_length,
                "remat": self.remat,
            }
        )
        return config

"""One XLNet layer: relative attention followed by a position-wise FFN."""

import keras
from keras import ops

from keras_xlnet.layers.dropout import XLNetDropout
from keras_xlnet.layers.dropout import draw_seeds
from keras_xlnet.layers.dropout import replay_seeds
from keras_xlnet.layers.relative_attention import XLNetRelativeAttention
from keras_xlnet.layers.relative_attention import content_shape

ACTIVATIONS = {
    # The released XLNet weights were trained with the tanh approximation.
    "gelu_approximate": lambda x: keras.activations.gelu(x, approximate=True),
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "relu": keras.activations.relu,
}


def get_activation(name):
    """Returns the activation function called `name` (see `ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}; expected one of "
            f"{sorted(ACTIVATIONS)} ('gelu_approximate' is the tanh GELU "
            "XLNet was trained with, 'gelu' the exact erf GELU)."
        )
    return ACTIVATIONS[name]


def rematerialise(function):
    """`keras.remat(function)`, with boolean arguments passed as uint8.

    TensorFlow's `recompute_grad` differentiates with respect to every
    argument and fails on boolean tensors (the attention masks).
    """

    def call(*tensors):
        is_mask = [
            keras.backend.standardize_dtype(t.dtype) == "bool" for t in tensors
        ]

        def cast_masks(tensors, dtype):
            return [
                ops.cast(t, dtype) if m else t for t, m in zip(tensors, is_mask)
            ]

        def restored(*tensors):
            return function(*cast_masks(tensors, "bool"))

        return keras.remat(restored)(*cast_masks(tensors, "uint8"))

    return call


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetEncoderBlock(keras.layers.Layer):
    """Relative attention, then `LayerNorm(x + dropout(W2 act(W1 x)))`.

    The FFN (with dropout after the activation too, as in the reference)
    is applied with the same weights to the content stream and, when given,
    to the query stream. See `XLNetRelativeAttention` for the call
    arguments; the return value is the content stream, or `(content,
    query)` when a query stream is passed.

    Args:
        num_heads: int.
        head_dim: int.
        intermediate_dim: int, the FFN inner size.
        dropout: float.
        attention_dropout: float.
        activation: `"gelu_approximate"`, `"gelu"` or `"relu"`.
        layer_norm_epsilon: float.
        kernel_initializer: initializer of every kernel.
        remat: bool, rematerialise the block: its activations are recomputed
            in the backward pass instead of being kept (less memory, more
            compute).
    """

    def __init__(
        self,
        num_heads,
        head_dim,
        intermediate_dim,
        dropout=0.0,
        attention_dropout=0.0,
        activation="gelu_approximate",
        layer_norm_epsilon=1e-12,
        kernel_initializer="glorot_uniform",
        remat=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.remat = remat
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._activation_fn = get_activation(activation)

        self.attention = XLNetRelativeAttention(
            num_heads=num_heads,
            head_dim=head_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="attention",
        )
        self.inner_dense = keras.layers.Dense(
            intermediate_dim,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="ffn_inner",
        )
        self.inner_dropout = XLNetDropout(
            dropout, dtype=self.dtype_policy, name="ffn_inner_dropout"
        )
        self.output_dropout = XLNetDropout(
            dropout, dtype=self.dtype_policy, name="ffn_output_dropout"
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="ffn_layer_norm",
        )

    def build(self, content_shape):
        hidden_dim = content_shape[-1]
        self.attention.build(content_shape)
        self.inner_dense.build(content_shape)
        self.output_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="ffn_output",
        )
        self.output_dense.build(
            tuple(content_shape[:-1]) + (self.intermediate_dim,)
        )
        self.layer_norm.build(content_shape)
        self.built = True

    def _feed_forward(self, stream, training):
        hidden = self._activation_fn(self.inner_dense(stream))
        hidden = self.inner_dropout(hidden, training=training)
        hidden = self.output_dropout(
            self.output_dense(hidden), training=training
        )
        return self.layer_norm(ops.add(stream, hidden))

    def call(
        self,
        content,
        position_encoding,
        segment_matrix,
        content_visible,
        memory=None,
        query=None,
        query_visible=None,
        target_mapping=None,
        output_positions=None,
        training=None,
    ):
        optional = {
            "memory": memory,
            "query": query,
            "query_visible": query_visible,
            "target_mapping": target_mapping,
            "output_positions": output_positions,
        }
        names = [name for name, value in optional.items() if value is not None]

        seeds = {}
        if self.remat and training:
            # Drawn outside the rematerialised function, so that the
            # recomputation reproduces the very same dropout masks.
            calls = 1 if query is None else 2
            seeds = draw_seeds(self._dropout_layers(), calls)

        def forward(*tensors):
            # Only tensors go through `forward` (TensorFlow's recompute_grad
            # takes no None); the optional ones follow by name.
            content, position_encoding, segment_matrix, visible = tensors[:4]
            given = dict(zip(names, tensors[4:]))
            with replay_seeds(seeds):
                streams = self.attention(
                    content,
                    position_encoding,
                    segment_matrix,
                    visible,
                    training=training,
                    **given,
                )
                if query is None:
                    return self._feed_forward(streams, training)
                return tuple(self._feed_forward(s, training) for s in streams)

        if self.remat:
            # Keep only the block's inputs for the backward pass and
            # recompute its activations there.
            forward = rematerialise(forward)
        return forward(
            content,
            position_encoding,
            segment_matrix,
            content_visible,
            *(optional[name] for name in names),
        )

    def _dropout_layers(self):
        return (
            self.attention.probability_dropout,
            self.attention.output_dropout,
            self.inner_dropout,
            self.output_dropout,
        )

    def compute_output_spec(
        self, content, *args, query=None, output_positions=None, **kwargs
    ):
        content_spec = keras.KerasTensor(
            content_shape(content, output_positions), dtype=self.compute_dtype
        )
        if query is None:
            return content_spec
        return content_spec, keras.KerasTensor(
            query.shape, dtype=self.compute_dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "remat": self.remat,
            }
        )
        return config

"""XLNet's two-stream relative multi-head attention."""

import keras
from keras import ops

from keras_xlnet.layers.dropout import XLNetDropout
from keras_xlnet.layers.position_scores import position_scores
from keras_xlnet.layers.position_scores import position_scores_at

# Added to hidden scores in float32: exp() of it is exactly 0, and it stays
# finite (float16's -inf would turn a fully masked row into NaN).
MASKED_SCORE = -1e30


def take_rows(x, index):
    """Rows `index` (`[B, P]`) of each example of `x` (`[B, T, ...]`)."""
    return ops.take_along_axis(x, ops.cast(index, "int32")[:, :, None], axis=1)


def content_shape(content, output_positions):
    """Shape of the content stream computed at `output_positions`."""
    if output_positions is None:
        return content.shape
    return (content.shape[0], output_positions.shape[1], content.shape[2])


def heads_first(heads):
    """`[B, T, N, H]` to `[N, B, T, H]`."""
    return ops.transpose(heads, (2, 0, 1, 3))


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetRelativeAttention(keras.layers.Layer):
    """Relative multi-head attention with XLNet's segment term, post-LN.

    Scores are `(ac + bd + ef) / sqrt(head_dim)` with
    `ac = (q + r_w_bias) . k`, `bd = rel_shift((q + r_r_bias) . r)` and
    `ef = (q + r_s_bias) . seg_embed[different_segment]`. Keys and values
    are the memory followed by the content stream. Scores are summed,
    masked and normalised in float32 and the layer norm keeps its
    statistics in float32; inputs, outputs and projections are in the
    compute dtype. The output is `LayerNorm(x + dropout(attention . W_o))`.

    The optional query stream (two-stream attention of pretraining) uses the
    same weights: it attends to the content keys under `query_visible`, at
    the positions given by `target_mapping`.

    Args:
        num_heads: int.
        head_dim: int.
        dropout: float, on the attention output.
        attention_dropout: float, on the attention probabilities.
        layer_norm_epsilon: float.
        kernel_initializer: initializer of every kernel and bias vector.

    Call arguments:
        content: `[batch, T, D]` content stream.
        position_encoding: `[1 or batch, R, D]` relative encodings.
        segment_matrix: `[batch, T, K]` boolean, `True` across segments.
        content_visible: `[batch, T, K]` boolean.
        memory: optional `[batch, M, D]` cached states of this layer's input.
        query: optional `[batch, P, D]` query stream.
        query_visible: `[batch, T, K]` boolean, with `query`.
        target_mapping: `[batch, P, T]`, with `query`: one-hot position of
            each prediction.
        output_positions: optional `[batch, P]` int: compute the content
            stream only at these positions (`[batch, P, D]`), e.g. the
            `<cls>` token a classifier reads from the last layer.
        training: bool.

    Returns:
        The new content stream, or `(content, query)` when `query` is given.
    """

    def __init__(
        self,
        num_heads,
        head_dim,
        dropout=0.0,
        attention_dropout=0.0,
        layer_norm_epsilon=1e-12,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._scale = 1.0 / head_dim**0.5

        def projection(name):
            return keras.layers.EinsumDense(
                "btd,dnh->btnh",
                output_shape=(None, num_heads, head_dim),
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name=name,
            )

        self.query_dense = projection("query")
        self.key_dense = projection("key")
        self.value_dense = projection("value")
        self.position_dense = projection("position")
        self.probability_dropout = XLNetDropout(
            attention_dropout,
            dtype=self.dtype_policy,
            name="probability_dropout",
        )
        self.output_dropout = XLNetDropout(
            dropout, dtype=self.dtype_policy, name="output_dropout"
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="layer_norm",
        )

    def build(self, content_shape):
        hidden_dim = content_shape[-1]
        for layer in (
            self.query_dense,
            self.key_dense,
            self.value_dense,
            self.position_dense,
        ):
            layer.build((None, None, hidden_dim))
        # The output kernel is stored [D, N, H] like the released checkpoints.
        self.output_dense = keras.layers.EinsumDense(
            "btnh,dnh->btd",
            output_shape=(None, hidden_dim),
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="output",
        )
        self.output_dense.build((None, None, self.num_heads, self.head_dim))
        self.layer_norm.build(content_shape)

        def bias(name, shape):
            return self.add_weight(
                name=name, shape=shape, initializer=self.kernel_initializer
            )

        heads = (self.num_heads, self.head_dim)
        self.content_bias = bias("content_bias", heads)  # r_w_bias
        self.position_bias = bias("position_bias", heads)  # r_r_bias
        self.segment_bias = bias("segment_bias", heads)  # r_s_bias
        self.segment_embedding = bias("segment_embedding", (2,) + heads)
        self.built = True

    def _attend(
        self,
        query_heads,
        keys,
        values,
        positions,
        segment_matrix,
        visible,
        training,
        query_index=None,
        segment_length=None,
    ):
        """Attention of `[B, T, N, H]` queries; returns `[B, T, N, H]`.

        With `query_index` (`[B, P]`), the `P` queries sit at those
        positions of the `segment_length` current tokens.

        Scores are laid out heads first, `[N, B, T, K]`: the backward pass
        of the position term then contracts over batch and time without
        transposing the largest tensors.
        """
        query = heads_first(query_heads)

        def biased(bias):
            return query + bias[:, None, None, :]

        content_scores = ops.einsum(
            "nbth,nbkh->nbtk", biased(self.content_bias), heads_first(keys)
        )
        key_length = ops.shape(keys)[1]
        if query_index is None:
            relative_scores = position_scores(
                biased(self.position_bias), positions, key_length
            )
        else:
            relative_scores = position_scores_at(
                biased(self.position_bias),
                positions,
                key_length,
                query_index,
                segment_length,
            )
        segment_scores = ops.einsum(
            "nbth,snh->nbts", biased(self.segment_bias), self.segment_embedding
        )
        segment_scores = ops.where(
            segment_matrix[None],
            segment_scores[..., 1:],
            segment_scores[..., :1],
        )
        # Summed, scaled and masked in float32 under mixed precision.
        scores = sum(
            ops.cast(s, "float32")
            for s in (content_scores, relative_scores, segment_scores)
        )
        scores = ops.where(visible[None], scores * self._scale, MASKED_SCORE)
        probabilities = ops.cast(
            ops.softmax(scores, axis=-1), self.compute_dtype
        )
        probabilities = self.probability_dropout(
            probabilities, training=training
        )
        attended = ops.einsum(
            "nbtk,nbkh->nbth", probabilities, heads_first(values)
        )
        return ops.transpose(attended, (1, 2, 0, 3))

    def _post_attention(self, stream, attended, training):
        output = self.output_dropout(
            self.output_dense(attended), training=training
        )
        return self.layer_norm(ops.add(stream, output))

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
        context = (
            content
            if memory is None
            else ops.concatenate([memory, content], axis=1)
        )
        keys = self.key_dense(context)
        values = self.value_dense(context)
        positions = self.position_dense(position_encoding)

        if output_positions is not None:
            if query is not None:
                raise ValueError(
                    "`output_positions` restricts the content stream; it "
                    "cannot be combined with the query stream."
                )
            # Only these rows of the content stream are computed.
            rows = [
                take_rows(x, output_positions)
                for x in (content, segment_matrix, content_visible)
            ]
            attended = self._attend(
                self.query_dense(rows[0]),
                keys,
                values,
                positions,
                *rows[1:],
                training,
                query_index=output_positions,
                segment_length=ops.shape(content)[1],
            )
            return self._post_attention(rows[0], attended, training)

        attended = self._attend(
            self.query_dense(content),
            keys,
            values,
            positions,
            segment_matrix,
            content_visible,
            training,
        )
        content = self._post_attention(content, attended, training)
        if query is None:
            return content

        target_mapping = ops.cast(target_mapping, self.compute_dtype)
        query_heads = ops.einsum(
            "bpnh,bpt->btnh", self.query_dense(query), target_mapping
        )
        attended = self._attend(
            query_heads,
            keys,
            values,
            positions,
            segment_matrix,
            query_visible,
            training,
        )
        attended = ops.einsum("btnh,bpt->bpnh", attended, target_mapping)
        return content, self._post_attention(query, attended, training)

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
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config

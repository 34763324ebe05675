"""Attention visibility and segment matrices of XLNet."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetAttentionMask(keras.layers.Layer):
    """Which keys each query may attend to, for both attention streams.

    Keys are the `M` memory positions followed by the `T` current tokens.
    A key is hidden from query `i` when it is padding, when the permutation
    mask hides it, or (`"uni"` attention) when it lies in the future of `i`;
    `same_length` also hides keys more than `M` positions in the past so that
    every query sees the same number of keys. Memory positions are hidden
    where `memory_mask` says so (`XLNetClassifier` passes the padding mask
    its memory came from), never by the current padding or permutation. The
    content stream may always attend to its own position; the query stream
    may not.

    Args:
        attention_type: `"bi"` or `"uni"`.
        same_length: bool, only meaningful for `"uni"` attention.

    Call arguments:
        padding_mask: `[batch, T]`, 1 (or `True`) for real tokens.
        memory_length: int or scalar tensor `M`.
        perm_mask: optional `[batch, T, T]`; 1 where query `i` may not see
            token `j`.
        memory_mask: optional `[batch, M]`, 1 (or `True`) for memory
            positions every query may see; all are visible when omitted.

    Returns:
        A tuple `(content_visible, query_visible)` of boolean tensors of
        shape `[batch, T, M + T]`, `True` where attention is allowed.

    Example:
    >>> content, query = XLNetAttentionMask()(np.array([[0, 1, 1]]))
    >>> ops.convert_to_numpy(content)[0].astype(int).tolist()
    [[1, 1, 1], [0, 1, 1], [0, 1, 1]]
    """

    def __init__(self, attention_type="bi", same_length=False, **kwargs):
        super().__init__(**kwargs)
        self.attention_type = attention_type
        self.same_length = same_length
        self.built = True

    def call(
        self, padding_mask, memory_length=0, perm_mask=None, memory_mask=None
    ):
        batch_size = ops.shape(padding_mask)[0]
        query_length = ops.shape(padding_mask)[1]
        key_length = query_length + memory_length
        query_index = ops.arange(query_length)[:, None]
        key_index = ops.arange(key_length)[None, :]
        # Position of query i among the keys.
        own_position = ops.equal(key_index, query_index + memory_length)

        hidden = ops.zeros((1, query_length, key_length), dtype="bool")
        if self.attention_type == "uni":
            future = ops.greater(key_index, query_index + memory_length)
            if self.same_length:
                future = ops.logical_or(
                    future, ops.less(key_index, query_index)
                )
            hidden = future[None]

        if memory_mask is None:
            memory_hidden = ops.zeros((batch_size, memory_length), "bool")
        else:
            memory_hidden = ops.logical_not(ops.cast(memory_mask, "bool"))
        is_padding = ops.logical_not(ops.cast(padding_mask, "bool"))
        padded_keys = ops.concatenate([memory_hidden, is_padding], axis=1)
        hidden = ops.logical_or(hidden, padded_keys[:, None, :])
        if perm_mask is not None:
            memory_columns = ops.zeros(
                (batch_size, query_length, memory_length), dtype="bool"
            )
            permuted = ops.concatenate(
                [memory_columns, ops.cast(perm_mask, "bool")], axis=2
            )
            hidden = ops.logical_or(hidden, permuted)

        query_visible = ops.logical_not(hidden)
        content_visible = ops.logical_or(query_visible, own_position[None])
        return content_visible, query_visible

    def compute_output_spec(
        self, padding_mask, memory_length=0, perm_mask=None, memory_mask=None
    ):
        shape = (padding_mask.shape[0], padding_mask.shape[1], None)
        # Two distinct tensors: the functional graph tells outputs apart by
        # identity.
        return (
            keras.KerasTensor(shape, dtype="bool"),
            keras.KerasTensor(shape, dtype="bool"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "attention_type": self.attention_type,
                "same_length": self.same_length,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetSegmentMatrix(keras.layers.Layer):
    """`True` where query `i` and key `j` lie in different segments.

    Memory positions count as segment 0. Only (in)equality matters, so
    `<cls>` = 2 and padding = 3 or 4 behave the same.

    Call arguments:
        segment_ids: `[batch, T]` integer tensor.
        memory_length: int or scalar tensor `M`.

    Returns:
        A boolean tensor `[batch, T, M + T]`.

    Example:
    >>> matrix = XLNetSegmentMatrix()(np.array([[0, 1]]))
    >>> ops.convert_to_numpy(matrix)[0].astype(int).tolist()
    [[0, 1], [1, 0]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def call(self, segment_ids, memory_length=0):
        batch_size = ops.shape(segment_ids)[0]
        memory_segments = ops.zeros(
            (batch_size, memory_length), dtype=segment_ids.dtype
        )
        key_segments = ops.concatenate([memory_segments, segment_ids], axis=1)
        return ops.not_equal(segment_ids[:, :, None], key_segments[:, None, :])

    def compute_output_spec(self, segment_ids, memory_length=0):
        shape = (segment_ids.shape[0], segment_ids.shape[1], None)
        return keras.KerasTensor(shape, dtype="bool")

"""Pooling of the last real token, where XLNet puts `<cls>`."""

import keras
from keras import ops


def last_real_position(padding_mask):
    """`[batch]` index of each row's last real token (the last position for
    a row without any)."""
    length = ops.shape(padding_mask)[1]
    reversed_mask = ops.cast(ops.flip(padding_mask, axis=1), "int32")
    return length - 1 - ops.argmax(reversed_mask, axis=1)


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetLastTokenPooler(keras.layers.Layer):
    """Picks, per example, the hidden state of the last real token.

    With XLNet's left padding this is the last position (the reference's
    `summary_type="last"`); with right padding it is still the `<cls>`
    token. A row without any real token pools its last position.

    Call arguments:
        sequence_output: `[batch, T, D]`.
        padding_mask: `[batch, T]`, 1 for real tokens.

    Returns:
        `[batch, D]`.

    Example:
    >>> x = np.arange(6, dtype="float32").reshape(1, 3, 2)
    >>> ops.convert_to_numpy(XLNetLastTokenPooler()(x, np.array([[1, 1, 0]])))
    array([[2., 3.]], dtype=float32)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def call(self, sequence_output, padding_mask):
        selector = ops.one_hot(
            last_real_position(padding_mask),
            ops.shape(padding_mask)[1],
            dtype=sequence_output.dtype,
        )
        return ops.einsum("btd,bt->bd", sequence_output, selector)

    def compute_output_spec(self, sequence_output, padding_mask):
        shape = (sequence_output.shape[0], sequence_output.shape[2])
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

"""Sinusoidal relative position encoding of XLNet / Transformer-XL."""

import keras
import numpy as np
from keras import ops


def inverse_frequencies(hidden_dim):
    """`1 / 10000 ** (2i / hidden_dim)`, computed once in numpy float32.

    TensorFlow and numpy round `pow` differently in about a fifth of the
    entries; computing the table in numpy keeps every backend identical.
    """
    exponents = np.arange(0, hidden_dim, 2, dtype=np.float32) / np.float32(
        hidden_dim
    )
    return (1.0 / np.power(np.float32(10000.0), exponents)).astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetRelativePositionEncoding(keras.layers.Layer):
    """Sinusoidal encodings of the relative distances between query and key.

    For a query of length `T` after `M` memory positions (`K = M + T` keys),
    the distances run from `K` down to `-T + 1` (`"bi"` attention) or down
    to `0` (`"uni"`). Each distance `p` is encoded as
    `concat([sin(p * inv_freq), cos(p * inv_freq)])`. The table is computed
    in float32 and cast to the layer's compute dtype last, because bfloat16
    cannot hold integer distances above 256 exactly.

    Args:
        hidden_dim: int. The model dimension `D`.
        attention_type: `"bi"` or `"uni"`.
        bi_data: bool. If `True`, the first half of the batch uses forward
            distances and the second half backward ones (the batch must be
            even), as in XLNet pretraining.
        clamp_len: int. Distances are clipped to `[-clamp_len, clamp_len]`
            when positive; `-1` disables clipping.

    Call arguments:
        token_ids: `[batch, T]` tensor; only its shape is used.
        memory_length: int or scalar tensor `M`, the cached positions.

    Returns:
        `[1, R, D]` (or `[batch, R, D]` with `bi_data`), `R = K + T` for
        `"bi"` and `K + 1` for `"uni"`.

    Example:
    >>> layer = XLNetRelativePositionEncoding(hidden_dim=8)
    >>> tuple(layer(np.zeros((2, 5), "int32")).shape)
    (1, 10, 8)
    """

    def __init__(
        self,
        hidden_dim,
        attention_type="bi",
        bi_data=False,
        clamp_len=-1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if attention_type not in ("bi", "uni"):
            raise ValueError(
                "`attention_type` must be 'bi' or 'uni'. "
                f"Received: attention_type={attention_type!r}"
            )
        if hidden_dim % 2:
            raise ValueError(
                f"`hidden_dim` must be even. Received: hidden_dim={hidden_dim}"
            )
        self.hidden_dim = hidden_dim
        self.attention_type = attention_type
        self.bi_data = bi_data
        self.clamp_len = clamp_len
        self._inverse_frequencies = inverse_frequencies(hidden_dim)
        self.built = True

    def _encode(self, distances):
        angles = (
            distances[:, None]
            * ops.convert_to_tensor(self._inverse_frequencies)[None, :]
        )
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def call(self, token_ids, memory_length=0):
        batch_size, query_length = (
            ops.shape(token_ids)[0],
            ops.shape(token_ids)[1],
        )
        key_length = query_length + memory_length
        end = -query_length if self.attention_type == "bi" else -1
        distances = ops.arange(key_length, end, -1, dtype="float32")
        if self.clamp_len > 0:
            distances = ops.clip(distances, -self.clamp_len, self.clamp_len)
        encoding = self._encode(distances)[None]
        if self.bi_data:
            if isinstance(batch_size, int) and batch_size % 2:
                raise ValueError(
                    "`bi_data=True` needs an even batch size (half forward, "
                    f"half backward). Received: batch_size={batch_size}"
                )
            half = batch_size // 2
            backward = self._encode(-distances)[None]
            encoding = ops.concatenate(
                [
                    ops.repeat(encoding, half, axis=0),
                    ops.repeat(backward, half, axis=0),
                ],
                axis=0,
            )
        return ops.cast(encoding, self.compute_dtype)

    def compute_output_spec(self, token_ids, memory_length=0):
        batch = token_ids.shape[0] if self.bi_data else 1
        return keras.KerasTensor(
            (batch, None, self.hidden_dim), dtype=self.compute_dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "attention_type": self.attention_type,
                "bi_data": self.bi_data,
                "clamp_len": self.clamp_len,
            }
        )
        return config

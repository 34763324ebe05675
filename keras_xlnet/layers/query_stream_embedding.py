"""The learned `mask_emb` that starts XLNet's query stream."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetQueryStreamEmbedding(keras.layers.Layer):
    """Broadcasts one learned `[D]` vector to every predicted position.

    Call arguments:
        target_mapping: `[batch, P, T]`; only its first two sizes are used.

    Returns:
        `[batch, P, D]`, the initial query stream.

    Example:
    >>> layer = XLNetQueryStreamEmbedding(hidden_dim=4)
    >>> tuple(layer(np.zeros((2, 3, 5))).shape)
    (2, 3, 4)
    """

    def __init__(self, hidden_dim, embeddings_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )

    def build(self, target_mapping_shape=None):
        self.mask_embedding = self.add_weight(
            name="mask_embedding",
            shape=(self.hidden_dim,),
            initializer=self.embeddings_initializer,
        )
        self.built = True

    def call(self, target_mapping):
        shape = ops.shape(target_mapping)
        embedding = ops.cast(self.mask_embedding, self.compute_dtype)
        return ops.broadcast_to(
            embedding, (shape[0], shape[1], self.hidden_dim)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config

"""XLNet's language-model head: the tied word embedding and a bias."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetLMHead(keras.layers.Layer):
    """Logits over the vocabulary: `hidden · embeddingᵀ + bias`.

    The output matrix is the backbone's word embedding (tied, as in every
    XLNet checkpoint); the layer owns only the bias (`lm_loss/bias`).

    Args:
        vocabulary_size: int, the rows of the embedding.

    Call arguments:
        hidden: `[..., D]` hidden states (the query stream, say).
        embeddings: `[vocabulary_size, D]`, the word embedding.

    Example:
    >>> head = XLNetLMHead(vocabulary_size=5)
    >>> tuple(head(np.ones((2, 3, 4)), np.ones((5, 4))).shape)
    (2, 3, 5)
    """

    def __init__(self, vocabulary_size, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size

    def build(self, hidden_shape=None, embeddings_shape=None):
        self.bias = self.add_weight(
            name="bias", shape=(self.vocabulary_size,), initializer="zeros"
        )
        self.built = True

    def call(self, hidden, embeddings):
        embeddings = ops.cast(embeddings, self.compute_dtype)
        logits = ops.matmul(hidden, ops.transpose(embeddings))
        return ops.add(logits, ops.cast(self.bias, self.compute_dtype))

    def compute_output_spec(self, hidden, embeddings):
        return keras.KerasTensor(
            tuple(hidden.shape[:-1]) + (self.vocabulary_size,),
            dtype=self.compute_dtype,
        )

    def get_config(self):
        config = super().get_config()
        config["vocabulary_size"] = self.vocabulary_size
        return config

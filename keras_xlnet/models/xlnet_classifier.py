"""XLNet sequence classification task."""

import keras
from keras_hub.models import TextClassifier

from keras_xlnet.layers.dropout import XLNetDropout
from keras_xlnet.layers.last_token_pooler import XLNetLastTokenPooler
from keras_xlnet.layers.last_token_pooler import last_real_position
from keras_xlnet.models.input_checks import check_labels
from keras_xlnet.models.input_checks import check_token_ids
from keras_xlnet.models.input_checks import variables_kept_on_error
from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_backbone import xlnet_kernel_initializer
from keras_xlnet.models.xlnet_text_classifier_preprocessor import (
    XLNetTextClassifierPreprocessor,
)


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetClassifier(TextClassifier):
    """XLNet with XLNet's sequence-summary classification head.

    The head reads the last real token (`<cls>`, last with left padding),
    then `Dense(hidden_dim, tanh)` ("summary"), dropout and
    `Dense(num_classes)` ("logits"), as in the reference implementation.
    Since only `<cls>` of the last layer reaches the head, the last encoder
    block runs at that position alone: the same logits and gradients as
    computing every position, with most of one layer's work saved.

    Args:
        backbone: an `XLNetBackbone`.
        num_classes: int.
        preprocessor: optional `XLNetTextClassifierPreprocessor` turning raw
            strings into the backbone's inputs; `None` means the model takes
            `token_ids`, `padding_mask` and `segment_ids`.
        activation: activation of the logits; `None` (default) returns
            logits, `"softmax"` probabilities.
        dropout: float, after the summary `tanh`.

    Example:
    ```python
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32,
    )
    classifier = keras_xlnet.XLNetClassifier(backbone, num_classes=2)
    logits = classifier.predict({
        "token_ids": np.array([[0, 7, 8, 4, 3]]),
        "padding_mask": np.array([[0, 1, 1, 1, 1]]),
        "segment_ids": np.array([[3, 0, 0, 0, 2]]),
    })
    logits.shape
    # (1, 2)
    ```
    """

    backbone_cls = XLNetBackbone
    preprocessor_cls = XLNetTextClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        dropout=0.1,
        **kwargs,
    ):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.pooler = XLNetLastTokenPooler(
            dtype=backbone.dtype_policy, name="pooler"
        )
        self.summary_dense = keras.layers.Dense(
            backbone.hidden_dim,
            activation="tanh",
            kernel_initializer=xlnet_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="summary",
        )
        self.summary_dropout = XLNetDropout(
            dropout, dtype=backbone.dtype_policy, name="summary_dropout"
        )
        self.logits_dense = keras.layers.Dense(
            num_classes,
            activation=activation,
            kernel_initializer=xlnet_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        sequence_output = backbone(inputs)
        pooled = self.pooler(sequence_output, inputs["padding_mask"])
        summary = self.summary_dropout(self.summary_dense(pooled))
        outputs = self.logits_dense(summary)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout

    def preprocess_samples(self, x, y=None, sample_weight=None):
        """KerasHub's preprocessing of a batch, then checks that its token
        ids fit the embedding and its integer labels name a class (see
        `keras_xlnet.models.input_checks`)."""
        data = super().preprocess_samples(x, y, sample_weight)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, dict) and "token_ids" in x:
            token_ids = check_token_ids(
                x["token_ids"], self.backbone.vocabulary_size
            )
            x = {**x, "token_ids": token_ids}
        if y is not None:
            y = check_labels(y, self.num_classes)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def fit(self, *args, **kwargs):
        with variables_kept_on_error(self):
            return super().fit(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        with variables_kept_on_error(self):
            return super().evaluate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        with variables_kept_on_error(self):
            return super().predict(*args, **kwargs)

    def call(self, inputs, training=None):
        """The functional graph's computation, with the last encoder block
        run only at the pooled `<cls>` position: the other positions of the
        last layer feed nothing into the logits."""
        padding_mask = inputs["padding_mask"]
        pooled = self.backbone._encode(
            inputs["token_ids"],
            padding_mask,
            inputs["segment_ids"],
            training=training,
            output_positions=last_real_position(padding_mask)[:, None],
        )["sequence_output"][:, 0]
        summary = self.summary_dropout(
            self.summary_dense(pooled), training=training
        )
        return self.logits_dense(summary)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
            }
        )
        return config

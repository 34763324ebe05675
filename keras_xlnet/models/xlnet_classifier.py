"""XLNet sequence classification task."""

import dataclasses
import inspect
import warnings

import keras
from keras_hub.models import TextClassifier

from keras_xlnet.layers.dropout import XLNetDropout
from keras_xlnet.models.input_checks import check_labels
from keras_xlnet.models.input_checks import check_sample_weight
from keras_xlnet.models.input_checks import check_segment_layout
from keras_xlnet.models.input_checks import check_token_ids
from keras_xlnet.models.input_checks import variables_kept_on_error
from keras_xlnet.models.segment_recurrence import SegmentSettings
from keras_xlnet.models.segment_recurrence import XLNetSegmentReader
from keras_xlnet.models.task_inputs import check_examples
from keras_xlnet.models.task_inputs import training_arguments
from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_backbone import xlnet_kernel_initializer
from keras_xlnet.models.xlnet_text_classifier_preprocessor import (
    XLNetTextClassifierPreprocessor,
)


def _segment_setting(name, doc):
    """A property of the classifier's `SegmentSettings`; setting it checks
    the new settings and drops the compiled steps traced with the old."""

    def get(self):
        return getattr(self.segment_reader.settings, name)

    def set(self, value):
        reader = self.segment_reader
        reader.settings = dataclasses.replace(reader.settings, **{name: value})
        self.train_function = None
        self.test_function = None
        self.predict_function = None

    return property(get, set, doc=doc)


def _keras_arguments(method, args, kwargs):
    """The arguments of a call to `keras.Model.<method>`, positional ones
    included, by name (KerasHub's overrides take fewer positions)."""
    bound = inspect.signature(getattr(keras.Model, method)).bind(
        None, *args, **kwargs
    )
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    del arguments["self"]
    arguments.update(arguments.pop("kwargs", {}))
    return arguments


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetClassifier(TextClassifier):
    """XLNet with XLNet's sequence-summary classification head.

    The head reads the last real token (`<cls>`, last with left padding),
    then `Dense(hidden_dim, tanh)` ("summary"), dropout and
    `Dense(num_classes)` ("logits"), as in the reference implementation.
    Since only `<cls>` of the last layer reaches the head, the last encoder
    block runs at that position alone: the same logits and gradients as
    computing every position, with most of one layer's work saved.

    Long documents: with `segment_length`, an input of `n *
    segment_length` positions (from a preprocessor with `max_segments=n`)
    is read as `n` segments, each attending to XLNet's memory of the
    earlier ones, and the head reads `<cls>` at the end of the last one.
    Each layer's memory reaches `memory_length` positions back, so through
    `num_layers` layers the last segment sees up to `num_layers *
    memory_length` positions; with `memory_length=None` every earlier
    position is in reach directly. An input no longer than
    `segment_length` is one segment, exactly the plain classifier.

    Args:
        backbone: an `XLNetBackbone`.
        num_classes: int.
        preprocessor: optional `XLNetTextClassifierPreprocessor` turning raw
            strings into the backbone's inputs; `None` means the model takes
            `token_ids`, `padding_mask` and `segment_ids`.
        activation: activation of the logits; `None` (default) returns
            logits, `"softmax"` probabilities.
        dropout: float, after the summary `tanh`.
        segment_length: int, the length of one segment; `None` (default)
            reads the whole input as one segment, unless `preprocessor`
            packs several segments: then its `segment_length` and
            `max_segments` are taken.
        max_segments: int, the most segments an input may hold; defaults
            to the preprocessor's, else 1. Inputs may hold fewer.
        memory_length: int, how many earlier positions each layer keeps as
            memory; `None` (default) keeps every earlier segment, `0` none.
        memory_gradient: `"stop"` (default): gradients flow through the
            last segment only, the memory being a constant (Transformer-XL's
            truncated back-propagation: one forward pass per earlier
            segment, activations of one segment); `"full"`: through every
            segment (activations of all of them).
        quantized_head: how a quantized classifier's head layers are
            quantized, `{"summary": "int8", "logits": "int8"}` say; set by
            `get_config` after `quantize`, so that a saved quantized
            classifier loads (`None`: float).

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
    # Reviews of up to 4 segments of 64 pieces, read with memory.
    preprocessor = keras_xlnet.XLNetTextClassifierPreprocessor(
        keras_xlnet.XLNetTokenizer(proto="spiece.model"),
        sequence_length=256,
        max_segments=4,
    )
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=32000, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32,
    )
    classifier = keras_xlnet.XLNetClassifier(
        backbone, num_classes=2, preprocessor=preprocessor
    )
    classifier.segment_length
    # 64
    classifier.predict(["A review of 200 words ..."]).shape
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
        segment_length=None,
        max_segments=None,
        memory_length=None,
        memory_gradient="stop",
        quantized_head=None,
        **kwargs,
    ):
        packed_segments = getattr(preprocessor, "max_segments", 1)
        if segment_length is None and packed_segments > 1:
            # A classifier not set up for segments (a preset's, say) reads
            # them the way its preprocessor packs them.
            segment_length = preprocessor.segment_length
            max_segments = max(max_segments or 1, packed_segments)
        if max_segments is None:
            max_segments = packed_segments
        segments = SegmentSettings(
            segment_length, max_segments, memory_length, memory_gradient
        )
        # A quantized backbone's policy maps its layers; the head takes its
        # float policy (and is quantized below, as saved).
        dtype = getattr(
            backbone.dtype_policy, "default_policy", backbone.dtype_policy
        )
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.segment_reader = XLNetSegmentReader(
            backbone,
            segments,
            dtype=dtype,
            name="segment_reader",
        )
        self.summary_dense = keras.layers.Dense(
            backbone.hidden_dim,
            activation="tanh",
            kernel_initializer=xlnet_kernel_initializer(),
            dtype=dtype,
            name="summary",
        )
        self.summary_dropout = XLNetDropout(
            dropout, dtype=dtype, name="summary_dropout"
        )
        self.logits_dense = keras.layers.Dense(
            num_classes,
            activation=activation,
            kernel_initializer=xlnet_kernel_initializer(),
            dtype=dtype,
            name="logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        pooled = self.segment_reader(inputs)
        summary = self.summary_dropout(self.summary_dense(pooled))
        outputs = self.logits_dense(summary)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # A quantized classifier's head, rebuilt so (the backbone records
        # its own layers' quantization in its config).
        for name, mode in (quantized_head or {}).items():
            self._head_layers()[name].quantize(mode)

        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout

    def _head_layers(self):
        return {"summary": self.summary_dense, "logits": self.logits_dense}

    segment_length = _segment_setting(
        "segment_length",
        "The length of one segment (`None`: the input is one segment).",
    )
    max_segments = _segment_setting(
        "max_segments", "The most segments an input may hold."
    )
    memory_length = _segment_setting(
        "memory_length",
        "Earlier positions each layer keeps (`None`: all, `0`: none).",
    )
    memory_gradient = _segment_setting(
        "memory_gradient",
        '`"stop"` (through the last segment) or `"full"` back-propagation.',
    )

    def _check_segmentation(self):
        """Refuses a preprocessor packing segments that this classifier
        would read otherwise."""
        preprocessor = self.preprocessor
        packed = getattr(preprocessor, "max_segments", 1)
        if packed > 1 and (
            self.segment_length != preprocessor.segment_length
            or self.max_segments < packed
        ):
            raise ValueError(
                f"The preprocessor packs up to {packed} segments of "
                f"{preprocessor.segment_length}, but the classifier reads "
                f"up to {self.max_segments} segments of "
                f"{self.segment_length}: set the classifier's "
                f"`segment_length = {preprocessor.segment_length}` and "
                f"`max_segments = {packed}`."
            )

    def preprocess_samples(self, x, y=None, sample_weight=None):
        """KerasHub's preprocessing of a batch (packed inputs, a dict of
        `token_ids`, `padding_mask` and `segment_ids`, skip the
        preprocessor), then checks that its token ids fit the embedding,
        its labels name classes and its sample weights are finite and
        non-negative (see `keras_xlnet.models.input_checks`)."""
        if isinstance(x, dict) and "token_ids" in x:
            data = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        else:
            self._check_segmentation()
            data = super().preprocess_samples(x, y, sample_weight)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, dict) and "token_ids" in x:
            token_ids = check_token_ids(
                x["token_ids"], self.backbone.vocabulary_size
            )
            if self.segment_length is not None:
                token_ids = check_segment_layout(
                    token_ids, self.segment_length, self.max_segments
                )
            x = {**x, "token_ids": token_ids}
        if y is not None:
            y = check_labels(y, self.num_classes)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, through KerasHub's preprocessing. Lists,
        arrays and tensors are shuffled before each epoch as Keras shuffles
        arrays (`shuffle=True` by default, seeded by
        `keras.utils.set_random_seed`); a dataset is the caller's to
        shuffle."""
        arguments = training_arguments(**_keras_arguments("fit", args, kwargs))
        with variables_kept_on_error(self):
            return super().fit(**arguments)

    def evaluate(self, *args, **kwargs):
        arguments = _keras_arguments("evaluate", args, kwargs)
        check_examples(arguments["x"], "evaluate")
        with variables_kept_on_error(self):
            return super().evaluate(**arguments)

    def predict(self, *args, **kwargs):
        arguments = _keras_arguments("predict", args, kwargs)
        check_examples(arguments["x"], "predict")
        with variables_kept_on_error(self):
            return super().predict(**arguments)

    def quantize(self, mode, **kwargs):
        """Keras' `quantize` (`"int8"`, ...): the backbone's and the head's
        projections and the embedding. The preprocessor holds no weights;
        it is built first, so that Keras passes over it also when it has
        not run yet (a classifier fresh from `from_preset`).

        Example:
        ```python
        classifier = keras_xlnet.XLNetClassifier.from_preset("run/preset")
        classifier.quantize("int8")
        classifier.export("served_int8/1")
        ```
        """
        if self.preprocessor is not None:
            if not self.preprocessor.built:
                self.preprocessor.build(None)  # Makes its packer.
            for layer in self.preprocessor._flatten_layers():
                if not layer.built:
                    layer.build(None)
        with warnings.catch_warnings():
            # Keras names every layer without weights to quantize.
            warnings.filterwarnings(
                "ignore", "Layer .* does not have a `quantize` method"
            )
            return super().quantize(mode, **kwargs)

    def export(self, filepath, format="tf_saved_model", verbose=None, **kwargs):
        """Exports the classifier for serving, from any backend.

        `format="tf_saved_model"` writes a SavedModel that takes raw text
        (XLNet's tokenizer in the graph, the reference's ids) as well as
        packed ids; `format="onnx"` writes the packed-input classifier as
        ONNX. Both return `logits` and `probabilities`; see
        `keras_xlnet.export_classifier`. Other formats and arguments are
        Keras' `Model.export`.

        Example:
        ```python
        classifier.export("served/1")
        classifier.export("classifier.onnx", format="onnx")
        ```
        """
        if format in ("tf_saved_model", "onnx") and not kwargs:
            from keras_xlnet.serving.export import export_classifier

            return export_classifier(self, filepath, format)
        return super().export(filepath, format, verbose=verbose, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "segment_length": self.segment_length,
                "max_segments": self.max_segments,
                "memory_length": self.memory_length,
                "memory_gradient": self.memory_gradient,
                "quantized_head": {
                    name: layer.quantization_mode
                    for name, layer in self._head_layers().items()
                    if layer.quantization_mode is not None
                }
                or None,
            }
        )
        return config

"""The packed-input XLNetClassifier as an ONNX model, converted from its
TensorFlow graph by `tf2onnx`: inputs `token_ids`, `padding_mask`,
`segment_ids` (`[batch, length]` int32, any batch size and any length up
to the classifier's `sequence_length`, whole segments beyond one),
outputs `logits` and `probabilities`. Tokenize with `XLNetTokenizer` or
the SavedModel's `tokenize` signature; ONNX holds no tokenizer."""

import os

from keras_xlnet.models.segment_recurrence import padded_to_max_segments
from keras_xlnet.serving.saved_model import classify_packed_function
from keras_xlnet.serving.saved_model import packed_signature

OPSET = 17


def write_onnx(classifier, path):
    """Writes the ONNX model (TensorFlow backend only)."""
    import tensorflow as tf
    import tf2onnx

    signature = packed_signature()
    function = tf.function(
        classify_packed_function(classifier), input_signature=signature
    )
    with padded_to_max_segments():  # tf2onnx converts no switch_case.
        tf2onnx.convert.from_function(
            function,
            input_signature=signature,
            opset=OPSET,
            output_path=os.fspath(path),
        )

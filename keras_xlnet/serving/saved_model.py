"""A fine-tuned XLNetClassifier as a TensorFlow SavedModel that takes raw
text: XLNet's tokenizer (in TensorFlow ops, the reference's ids), packing
and the classifier in one graph, servable by TensorFlow Serving.

Signatures (each returns `logits` and softmax `probabilities`,
`[batch, num_classes]` float32, except `tokenize`):
- `serving_default`: `texts`, a `[batch]` string tensor;
- `classify_pairs`: `texts` and `second_texts` (text pairs);
- `classify_packed`: `token_ids`, `padding_mask`, `segment_ids`
  (`[batch, length]` int32, the preprocessor's packing; any batch size and
  any length up to the classifier's `sequence_length`, whole segments
  beyond one for a multi-segment classifier);
- `tokenize`: `texts` -> `token_ids` (`[batch, longest]` int32, each
  text's ids right-padded with -1) and `lengths` (`[batch]` int32).

Loading needs TensorFlow Text's ops (`import tensorflow_text`, or its op
libraries), not Keras or `keras_xlnet`.
"""

import os

import keras

PACKED_INPUTS = ("token_ids", "padding_mask", "segment_ids")


def packed_signature():
    """The `classify_packed` inputs: `[batch, length]` int32 each."""
    import tensorflow as tf

    return [
        tf.TensorSpec([None, None], tf.int32, name=n) for n in PACKED_INPUTS
    ]


def classify_packed_function(classifier):
    """`(token_ids, padding_mask, segment_ids) -> {"logits",
    "probabilities"}` in TensorFlow ops."""
    import tensorflow as tf

    def classify_packed(token_ids, padding_mask, segment_ids):
        inputs = dict(
            zip(PACKED_INPUTS, (token_ids, padding_mask, segment_ids))
        )
        logits = tf.cast(classifier(inputs, training=False), tf.float32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    return classify_packed


def write_saved_model(classifier, path, verbose=False):
    """Writes the SavedModel (TensorFlow backend only)."""
    import tensorflow as tf

    preprocessor = classifier.preprocessor
    tokenizer = preprocessor.tokenizer
    classify_packed = classify_packed_function(classifier)

    def classified(inputs):
        return classify_packed(*(inputs[name] for name in PACKED_INPUTS))

    def classify(texts):
        return classified(preprocessor(texts))

    def classify_pairs(texts, second_texts):
        return classified(preprocessor(x=(texts, second_texts)))

    def tokenize(texts):
        ids = tokenizer(texts)
        if not isinstance(ids, tf.RaggedTensor):  # Its `sequence_length`.
            ids = tf.RaggedTensor.from_tensor(
                ids, padding=tokenizer.pad_token_id
            )
        return {
            "token_ids": tf.cast(ids.to_tensor(default_value=-1), tf.int32),
            "lengths": tf.cast(ids.row_lengths(), tf.int32),
        }

    text = tf.TensorSpec([None], tf.string)
    archive = keras.export.ExportArchive()
    archive.track(classifier)
    with tokenizer.search_without_xla():
        for name, fn, signature in (
            ("serving_default", classify, [text]),
            ("classify_pairs", classify_pairs, [text, text]),
            ("classify_packed", classify_packed, packed_signature()),
            ("tokenize", tokenize, [text]),
        ):
            archive.add_endpoint(name, fn, signature)
        archive.write_out(os.fspath(path), verbose=verbose)

"""Evaluation and prediction in length order: pay for real tokens only.

XLNet pads on the left and its positions are relative, so cutting a batch's
leading padding changes no output. Texts sorted by length and batched
together need little padding; each batch is then cut to the next multiple
of `bucket_width` above its longest text (whole segments beyond one), so
at most `segment_length / bucket_width` (+ `max_segments - 1`) shapes are
ever compiled. Results come back in length order; `restore_order` puts them
back in the texts' order (`predict_by_length` does both).

For training, `sort_by_length` orders groups of several batches' worth of
shuffled examples (unbatch, batch and `trim_padding` after it), so that
each batch holds texts of similar lengths (`tools/finetune_imdb.py
--group-by-length`).
"""

import numpy as np
import tensorflow as tf

from keras_xlnet.models.task_inputs import check_examples

DEFAULT_BUCKET_WIDTH = 64


def packed_lengths(preprocessor, texts):
    """Positions each text takes once packed (its pieces, `<sep>`,
    `<cls>`), at most the preprocessor's output length."""
    pieces = preprocessor.tokenizer(list(texts))
    lengths = np.array([len(text) for text in pieces]) + 2
    return np.minimum(lengths, preprocessor.sequence_length)


def bucket_length(longest, segment_length, bucket_width):
    """The padded length of a batch whose longest text takes `longest`
    positions: the next multiple of `bucket_width` (at most
    `segment_length`), or of `segment_length` beyond one segment."""
    step = tf.where(longest > segment_length, segment_length, bucket_width)
    rounded = (longest + step - 1) // step * step
    return tf.where(
        longest > segment_length,
        rounded,
        tf.minimum(rounded, segment_length),
    )


def trim_padding(segment_length, bucket_width=DEFAULT_BUCKET_WIDTH):
    """A `tf.data` map function cutting a left-padded packed batch (alone
    or first of `(x, y, sample_weight)`) to its `bucket_length`."""
    if bucket_width < 1:
        raise ValueError(
            "`bucket_width` must be a positive integer; "
            f"received {bucket_width!r}"
        )

    def trim(x, *rest):
        real = tf.reduce_sum(tf.cast(x["padding_mask"], "int32"), axis=1)
        width = bucket_length(tf.reduce_max(real), segment_length, bucket_width)
        x = {key: value[:, -width:] for key, value in x.items()}
        return (x, *rest) if rest else x

    return trim


def sort_by_length(x, *rest):
    """A `tf.data` map function sorting a packed batch (alone or first of
    `(x, y, ...)`) by real length, longest first (ties keep their order)."""
    real = tf.reduce_sum(tf.cast(x["padding_mask"], "int32"), axis=1)
    order = tf.argsort(real, direction="DESCENDING", stable=True)
    sorted_batch = tf.nest.map_structure(
        lambda values: tf.gather(values, order), (x, *rest)
    )
    return sorted_batch if rest else sorted_batch[0]


def length_sorted_dataset(
    preprocessor,
    texts,
    labels=None,
    sample_weight=None,
    batch_size=32,
    bucket_width=DEFAULT_BUCKET_WIDTH,
):
    """Packed batches of `texts` in length order, each cut to its bucket.

    Args:
        preprocessor: an `XLNetTextClassifierPreprocessor` (left padding).
        texts: a sequence of strings.
        labels, sample_weight: optional per-text sequences, kept with
            their texts.
        batch_size: int.
        bucket_width: int, batches are padded to a multiple of it (capped
            at the preprocessor's `segment_length`), or of whole segments.

    Returns:
        `(dataset, order)`: a `tf.data.Dataset` of `x`, `(x, y)` or
        `(x, y, sample_weight)` for `classifier.predict` / `evaluate` (the
        batches are packed: the classifier's preprocessor passes them), and
        the index of each of its examples in `texts`.
    """
    check_examples(texts, "length_sorted_dataset")
    if preprocessor.padding_side != "left":
        raise ValueError(
            "Cutting padding needs padding_side='left'; received "
            f"{preprocessor.padding_side!r}."
        )
    order = np.argsort(packed_lengths(preprocessor, texts), kind="stable")
    columns = [np.asarray(texts, dtype=object)[order].astype(str)]
    for values in (labels, sample_weight):
        if values is not None:
            columns.append(np.asarray(values)[order])
    dataset = tf.data.Dataset.from_tensor_slices(tuple(columns))
    dataset = dataset.batch(batch_size).map(
        lambda x, *rest: (preprocessor(x), *rest)
    )
    dataset = dataset.map(
        trim_padding(preprocessor.segment_length, bucket_width)
    )
    return dataset.prefetch(tf.data.AUTOTUNE), order


def restore_order(values, order):
    """`values` given in `order` (see `length_sorted_dataset`), put back
    in the order of the original texts."""
    restored = np.empty_like(np.asarray(values))
    restored[order] = values
    return restored


def predict_by_length(
    classifier, texts, batch_size=32, bucket_width=DEFAULT_BUCKET_WIDTH
):
    """`classifier.predict(texts)` in length-sorted, cut batches; the
    outputs come back in the order of `texts`.

    Example:
    ```python
    from keras_xlnet.data.length_buckets import predict_by_length

    preprocessor = keras_xlnet.XLNetTextClassifierPreprocessor(
        keras_xlnet.XLNetTokenizer(proto="spiece.model"), sequence_length=64
    )
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=32000, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32,
    )
    classifier = keras_xlnet.XLNetClassifier(
        backbone, num_classes=2, preprocessor=preprocessor
    )
    texts = ["A long and winding review of a film. " * 5, "Great!"]
    logits = predict_by_length(classifier, texts, bucket_width=16)
    bool(np.allclose(logits, classifier.predict(texts), atol=1e-5))
    # True
    ```
    """
    if not isinstance(texts, (str, bytes)):
        texts = list(texts)  # A generator, say.
    check_examples(texts, "predict_by_length")
    dataset, order = length_sorted_dataset(
        classifier.preprocessor,
        texts,
        batch_size=batch_size,
        bucket_width=bucket_width,
    )
    return restore_order(classifier.predict(dataset, verbose=0), order)

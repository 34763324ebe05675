"""The IMDB review data of the fine-tuning recipe.

Reads Stanford's aclImdb v1 folders (`{train,test}/{neg,pos}/*.txt`, text
`strip()`-ed with `<br />` replaced by a space, neg = 0, pos = 1) and
TFRecords in the format of XLNet's original preprocessing (`input_ids`,
`input_mask` with 1 = padding, `segment_ids`, `label_ids`,
`is_real_example`), and writes the latter.
"""

import os
import tarfile
import tempfile
import zlib

from keras_xlnet.checkpoints.downloads import DownloadError
from keras_xlnet.checkpoints.downloads import download

ACLIMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
LABELS = {"neg": 0, "pos": 1}
# Segment id of padding in the original TFRecords.
ORIGINAL_PAD_SEGMENT_ID = 4


class DataError(ValueError):
    """Data files that do not fit the run's settings."""


def clean_review(text):
    return text.strip().replace("<br />", " ")


def read_aclimdb(root, split):
    """`(texts, labels)` of `root/split/{neg,pos}/*.txt`, in sorted order:
    all negative reviews, then all positive ones (shuffle before training
    or writing, as `training.data_stream` and `shuffled` do)."""
    texts, labels = [], []
    for name, label in LABELS.items():
        folder = os.path.join(root, split, name)
        if not os.path.isdir(folder):
            raise DataError(
                f"{folder} does not exist: expected the aclImdb layout "
                "<data-dir>/{train,test}/{neg,pos}/*.txt."
            )
        files = sorted(f for f in os.listdir(folder) if f.endswith(".txt"))
        if not files:
            raise DataError(
                f"{folder} holds no reviews (*.txt): both classes of a split "
                "need examples."
            )
        for file in files:
            with open(os.path.join(folder, file), encoding="utf-8") as f:
                texts.append(clean_review(f.read()))
            labels.append(label)
    return texts, labels


def shuffled(texts, labels, seed=0):
    """`(texts, labels)` in one random order fixed by `seed` (the original
    preprocessing shuffles all examples before writing them)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(texts))
    return [texts[i] for i in order], [labels[i] for i in order]


def download_aclimdb(cache_dir):
    """Downloads (resumably) and unpacks aclImdb once; returns its root."""
    root = os.path.join(cache_dir, "aclImdb")
    if os.path.isdir(os.path.join(root, "test", "pos")):
        return root
    archive = download(
        ACLIMDB_URL, os.path.join(cache_dir, os.path.basename(ACLIMDB_URL))
    )
    with tempfile.TemporaryDirectory(
        prefix=".aclImdb-", dir=cache_dir
    ) as staging:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, EOFError, zlib.error):
            os.remove(archive)
            raise DownloadError(
                f"{archive} is not a readable aclImdb archive (a truncated "
                "or corrupt .tar.gz); it was deleted, the next run downloads "
                "it again."
            ) from None
        unpacked = os.path.join(staging, "aclImdb")
        if not os.path.isdir(unpacked):
            raise DownloadError(f"{archive} holds no aclImdb folder.")
        os.replace(unpacked, root)
    return root


def _feature_spec(sequence_length):
    import tensorflow as tf

    return {
        "input_ids": tf.io.FixedLenFeature([sequence_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([sequence_length], tf.float32),
        "segment_ids": tf.io.FixedLenFeature([sequence_length], tf.int64),
        "label_ids": tf.io.FixedLenFeature([], tf.int64),
        "is_real_example": tf.io.FixedLenFeature([], tf.int64),
    }


def _check_record_length(path, sequence_length):
    """Raises `DataError` unless the first record of `path` holds
    `sequence_length` ids (parsing would fail later, deep in `tf.data`)."""
    import tensorflow as tf

    for record in tf.data.TFRecordDataset(path).take(1):
        example = tf.train.Example.FromString(record.numpy())
        feature = example.features.feature.get("input_ids")
        length = len(feature.int64_list.value) if feature else None
        if length != sequence_length:
            raise DataError(
                f"{path} holds sequences of {length} ids (`input_ids`), but "
                f"the run uses --sequence-length {sequence_length}."
            )
        return
    raise DataError(f"{path} holds no records.")


def tfrecord_files(pattern, sequence_length):
    """`(files, parse)`: the TFRecord files matching `pattern`, checked,
    and a function parsing one record into `(inputs, label, weight)`.

    `inputs` is what `XLNetBackbone` takes; `weight` is `is_real_example`,
    so padding examples count for nothing.
    """
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise DataError(f"No TFRecord file matches {pattern!r}.")
    _check_record_length(files[0], sequence_length)
    spec = _feature_spec(sequence_length)

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        inputs = {
            "token_ids": tf.cast(example["input_ids"], "int32"),
            "padding_mask": tf.cast(1.0 - example["input_mask"], "int32"),
            "segment_ids": tf.cast(example["segment_ids"], "int32"),
        }
        weight = tf.cast(example["is_real_example"], "float32")
        return inputs, tf.cast(example["label_ids"], "int32"), weight

    return files, parse


def read_tfrecords(pattern, sequence_length):
    """A `tf.data.Dataset` of `(inputs, label, weight)` from TFRecords, in
    file order (see `tfrecord_files`)."""
    import tensorflow as tf

    files, parse = tfrecord_files(pattern, sequence_length)
    return tf.data.TFRecordDataset(files).map(parse)


def count_records(files):
    """The number of records in `files`."""
    import tensorflow as tf

    return int(tf.data.TFRecordDataset(files).reduce(0, lambda n, _: n + 1))


def write_tfrecords(path, preprocessor, texts, labels, batch_size=256):
    """Writes texts in the original TFRecord format (local or `gs://`).

    Padding follows the original: id 0, `input_mask` 1, segment id 4.
    """
    import numpy as np
    import tensorflow as tf

    def int64s(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    with tf.io.TFRecordWriter(path) as writer:
        for start in range(0, len(texts), batch_size):
            packed = preprocessor(texts[start : start + batch_size])
            real = np.asarray(packed["padding_mask"]).astype(bool)
            ids = np.where(real, np.asarray(packed["token_ids"]), 0)
            segments = np.where(
                real, np.asarray(packed["segment_ids"]), ORIGINAL_PAD_SEGMENT_ID
            )
            for i, label in enumerate(labels[start : start + batch_size]):
                mask = (~real[i]).astype("float32").tolist()
                features = {
                    "input_ids": int64s(ids[i].tolist()),
                    "input_mask": tf.train.Feature(
                        float_list=tf.train.FloatList(value=mask)
                    ),
                    "segment_ids": int64s(segments[i].tolist()),
                    "label_ids": int64s([int(label)]),
                    "is_real_example": int64s([1]),
                }
                example = tf.train.Example(
                    features=tf.train.Features(feature=features)
                )
                writer.write(example.SerializeToString())

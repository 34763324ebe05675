"""XLNet's IMDB fine-tuning recipe (the TF Model Garden tutorial), a task
of the training runner.

`run(ImdbConfig(...))` trains `XLNetClassifier` with the tutorial's
settings (XLNet-Large cased, length 512, batch 32, 4000 steps, warm-up
500, peak learning rate 2e-5, Adam eps 1e-8, no weight decay, gradient
clipping 1.0, dropout 0.1), evaluates on the whole test set every
`eval_every` steps, checkpoints at each evaluation (resumable with
`resume=True`), and writes `metrics.json`, TensorBoard logs and the
fine-tuned classifier as a preset folder into `model_dir`.
"""

import dataclasses
import os
import typing

import keras
import tensorflow as tf

from keras_xlnet.data import imdb
from keras_xlnet.data import length_buckets
from keras_xlnet.training import data_stream
from keras_xlnet.training import runner
from keras_xlnet.training.settings import RunConfig
from keras_xlnet.training.settings import RunError


@dataclasses.dataclass
class ImdbConfig(RunConfig):
    """Settings of an IMDB run; the defaults are the tutorial's."""

    model_dir: str = "xlnet_imdb"
    preset: str = "xlnet_large_cased"
    data_dir: str = None
    train_tfrecord: str = None
    eval_tfrecord: str = None
    # The packed length of a review, read as `max_segments` segments with
    # XLNet's memory (see `XLNetClassifier`); one segment is the tutorial's.
    sequence_length: int = 512
    max_segments: int = 1
    memory_length: int = None
    memory_gradient: str = "stop"
    # Which pieces of a longer review are kept (see
    # `XLNetTextClassifierPreprocessor`).
    keep: str = "head"
    head_length: int = 128
    # Batches in length order are padded to a multiple of this (see
    # `keras_xlnet.data.length_buckets`): evaluation always (the metrics of
    # padding to the full length, which 0 asks for, as the tutorial does),
    # training with `group_by_length`.
    bucket_width: int = 64
    # Training batches of similar lengths: examples sorted by length within
    # groups of `GROUP_BATCHES` batches of a pass. Changes which examples
    # share a batch, not the objective; off is the tutorial's.
    group_by_length: bool = False
    cache_dir: str = None

    RESUME_SETTINGS: typing.ClassVar[tuple] = (
        *RunConfig.RESUME_SETTINGS,
        "preset",
        "data_dir",
        "train_tfrecord",
        "sequence_length",
        "max_segments",
        "memory_length",
        "memory_gradient",
        "keep",
        "head_length",
        "group_by_length",
        "bucket_width",
    )
    MINIMA: typing.ClassVar[dict] = {
        **RunConfig.MINIMA,
        "sequence_length": 3,  # One piece, `<sep>` and `<cls>`.
        "max_segments": 1,
        "head_length": 0,
        "bucket_width": 0,
    }

    @property
    def segment_length(self):
        return self.sequence_length // self.max_segments

    def check(self):
        from keras_xlnet.models.segment_recurrence import SegmentSettings
        from keras_xlnet.models.xlnet_text_classifier_preprocessor import KEEPS
        from keras_xlnet.models.xlnet_text_classifier_preprocessor import (
            segmentation_problem,
        )

        super().check()
        problem = segmentation_problem(self.sequence_length, self.max_segments)
        if problem:
            raise RunError(problem)
        try:
            SegmentSettings(
                self.segment_length if self.max_segments > 1 else None,
                self.max_segments,
                self.memory_length,
                self.memory_gradient,
            )
        except ValueError as error:
            raise RunError(str(error)) from None
        if self.keep not in KEEPS:
            raise RunError(
                f"keep must be one of {KEEPS}; received {self.keep!r}."
            )
        if self.max_segments > 1 and (
            self.train_tfrecord or self.eval_tfrecord
        ):
            raise RunError(
                "max_segments > 1 reads the reviews' texts (--data-dir): the "
                "TFRecords hold one packed segment each."
            )
        if self.group_by_length and not self.bucket_width:
            raise RunError(
                "group_by_length cuts batches to multiples of bucket_width; "
                "bucket_width must be positive with it."
            )

    def resume_settings(self, dtype):
        settings = super().resume_settings(dtype)
        if not self.group_by_length:
            # Without grouping, the width only batches the evaluation.
            del settings["bucket_width"]
        return settings


def load_texts(config):
    """`(train, test)` lists of `(texts, labels)`: from `data_dir`, else
    downloaded once into the cache."""
    if config.data_dir:
        root = config.data_dir
    else:
        cache = config.cache_dir or os.path.join(
            os.path.expanduser("~"), ".cache", "keras_xlnet"
        )
        try:
            root = imdb.download_aclimdb(cache)
        except OSError as error:
            raise RunError(
                f"The IMDB reviews are not available ({error}). Pass "
                "--data-dir with an unpacked aclImdb folder, or "
                "--train-tfrecord/--eval-tfrecord, or run --demo."
            ) from None
    return imdb.read_aclimdb(root, "train"), imdb.read_aclimdb(root, "test")


class ImdbTask(runner.WeightedAccuracyAndCrossEntropy, runner.Task):
    """Sentiment classification of IMDB reviews with `XLNetClassifier`.

    Args:
        config: an `ImdbConfig`.
        build_classifier: optional callable `dtype -> XLNetClassifier` (with
            a preprocessor); by default `config.preset` is loaded.
        train, test: optional `(texts, labels)`; read from `config` (aclImdb
            folder, download, or TFRecords) when omitted.
    """

    def __init__(self, config, build_classifier=None, train=None, test=None):
        super().__init__(config)
        self.build_classifier = build_classifier or self._from_preset
        self.data = (train, test)

    def _from_preset(self, dtype):
        from keras_xlnet.models.xlnet_classifier import XLNetClassifier

        return XLNetClassifier.from_preset(
            self.config.preset, num_classes=2, dtype=dtype
        )

    def _texts(self):
        if self.data[0] is None:
            self.data = load_texts(self.config)
        return self.data

    def build_model(self, dtype):
        return self._configured(self.build_classifier(dtype))

    def build_trained_model(self, dtype):
        """`--mode eval` or `export_only` without a checkpoint: the
        fine-tuned classifier of `--preset` (a run's `<model-dir>/preset`,
        say), head included."""
        from keras_xlnet import presets
        from keras_xlnet.models.xlnet_classifier import XLNetClassifier

        if self.build_classifier != self._from_preset:
            return super().build_trained_model(dtype)
        config = self.config
        unusable = (
            f"--mode {config.mode}: {config.model_dir} holds no checkpoint, "
            f"and --preset {config.preset} is not a fine-tuned classifier"
        )
        if config.preset in presets.load_registry():
            raise RunError(
                f"{unusable} (a pretrained model: name a fine-tuned one, a "
                "run's <model-dir>/preset for example)."
            )
        try:
            classifier = XLNetClassifier.from_preset(config.preset, dtype=dtype)
        except (ValueError, TypeError) as error:
            # TypeError: a backbone preset builds no task (num_classes).
            raise RunError(f"{unusable} ({error})") from None
        return self._configured(classifier)

    def _configured(self, classifier):
        """`classifier` with the run's packing and segment settings."""
        config = self.config
        preprocessor = classifier.preprocessor
        if preprocessor is None and not (
            config.train_tfrecord and config.eval_tfrecord
        ):
            raise RunError(
                "The classifier has no preprocessor (tokenizer): use a preset "
                "converted with a vocabulary, or TFRecords."
            )
        if preprocessor is not None:
            preprocessor.sequence_length = config.sequence_length
            preprocessor.max_segments = config.max_segments
            preprocessor.keep = config.keep
            preprocessor.head_length = config.head_length
        if config.max_segments > 1:
            classifier.segment_length = config.segment_length
        classifier.max_segments = config.max_segments
        classifier.memory_length = config.memory_length
        classifier.memory_gradient = config.memory_gradient
        return classifier

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def export_for_serving(self, model, folder):
        """The classifier as a SavedModel taking raw text
        (`XLNetClassifier.export`)."""
        try:
            model.export(folder)
        except ValueError as error:
            raise RunError(f"Cannot export for serving: {error}") from None

    def training_batches(self, model, skip_batches):
        config = self.config
        if config.train_tfrecord:
            files, parse = imdb.tfrecord_files(
                config.train_tfrecord, config.sequence_length
            )
            source = data_stream.RecordFiles(
                files, lambda r: parse(r)[:2], imdb.count_records(files)
            )
            pack = None
        else:
            source = data_stream.InMemoryExamples(*self._texts()[0])
            pack = model.preprocessor
        group = None
        if config.group_by_length:
            group = (
                data_stream.GROUP_BATCHES * config.batch_size,
                length_buckets.trim_padding(
                    config.segment_length, config.bucket_width
                ),
            )
        try:
            return data_stream.training_batches(
                source,
                pack or (lambda x: x),
                config.micro_batch_size,
                config.train_steps * config.batch_size,
                config.seed,
                skip_batches,
                group,
            )
        except ValueError as error:
            raise RunError(str(error)) from None

    def evaluation_batches(self, model):
        config = self.config
        size = config.eval_batch_size
        if config.eval_tfrecord:
            files, parse = imdb.tfrecord_files(
                config.eval_tfrecord, config.sequence_length
            )
            examples = tf.data.TFRecordDataset(files).map(parse)
            x, y, _ = next(iter(examples.take(1)))
            filler = (x, y, tf.constant(0.0))
            return data_stream.padded_to_whole_batches(
                examples, imdb.count_records(files), size, filler
            ).batch(size)
        texts, labels = self._texts()[1]
        missing = -len(texts) % size
        padded = (
            list(texts) + [""] * missing,
            list(labels) + [0] * missing,
            [1.0] * len(texts) + [0.0] * missing,
        )
        if config.bucket_width:
            dataset, _ = length_buckets.length_sorted_dataset(
                model.preprocessor,
                *padded,
                batch_size=size,
                bucket_width=config.bucket_width,
            )
            return dataset
        return (
            tf.data.Dataset.from_tensor_slices(padded)
            .batch(size)
            .map(lambda x, y, w: (model.preprocessor(x), y, w))
        )


def run(config, build_classifier=None, train=None, test=None, callbacks=()):
    """Fine-tunes and evaluates (see `ImdbTask`); returns the summary."""
    task = ImdbTask(config, build_classifier, train, test)
    return runner.run(task, callbacks)

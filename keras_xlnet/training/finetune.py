"""XLNet's IMDB fine-tuning recipe (TF Model Garden tutorial), any backend.

`run(FinetuneConfig(...))` trains `XLNetClassifier` with the recipe's
defaults (XLNet-Large cased, length 512, batch 32, 4000 steps, warm-up 500,
peak learning rate 2e-5, Adam eps 1e-8, no weight decay, gradient clipping
1.0, dropout 0.1), evaluates on the whole test set every `eval_every` steps,
checkpoints at each evaluation (resumable with `resume=True`), and writes
`metrics.json`, TensorBoard logs and the fine-tuned classifier as a preset
folder into `model_dir`.
"""

import dataclasses
import io
import json
import os
import tempfile
import warnings
import zipfile

import h5py
import keras
import numpy as np
from tensorflow.io import gfile

from keras_xlnet.data import imdb
from keras_xlnet.data import length_buckets
from keras_xlnet.training import distribution
from keras_xlnet.training import processes
from keras_xlnet.training.optimizer import XLNetAdam
from keras_xlnet.training.schedules import WarmupLinearDecay


@dataclasses.dataclass
class FinetuneConfig:
    """Settings of a fine-tuning run; the defaults are the tutorial's."""

    preset: str = "xlnet_large_cased"
    data_dir: str = None
    train_tfrecord: str = None
    eval_tfrecord: str = None
    model_dir: str = "xlnet_imdb"
    sequence_length: int = 512
    # Long reviews (see `XLNetClassifier`): segments of `sequence_length`
    # read with memory; one segment is the tutorial's recipe.
    max_segments: int = 1
    memory_length: int = None
    memory_gradient: str = "stop"
    truncate: str = "head"
    batch_size: int = 32
    train_steps: int = 4000
    warmup_steps: int = 500
    learning_rate: float = 2e-5
    clip_norm: float = 1.0
    per_replica_clip: bool = False
    accumulation_steps: int = 1
    eval_every: int = 500
    eval_batch_size: int = 32
    # Batches in length order are padded to a multiple of this (see
    # `keras_xlnet.data.length_buckets`): evaluation always (the same
    # metrics as padding to the full length, which 0 asks for, as the
    # tutorial does), training with `group_by_length`.
    bucket_width: int = 64
    # Training batches of similar lengths: examples sorted by length within
    # groups of `GROUP_BATCHES` batches of a shuffled pass. Changes which
    # examples share a batch, not the objective; off is the tutorial's.
    group_by_length: bool = False
    distribution: str = "auto"
    tpu: str = None
    # Several processes: seconds a process waits for the coordinator (and
    # the coordinator for the others) before failing.
    connect_timeout: int = processes.CONNECT_TIMEOUT
    remat: bool = False
    dtype: str = "auto"
    resume: bool = False
    seed: int = 0
    cache_dir: str = None
    verbose: int = 1


class RecipeError(ValueError):
    """Settings or inputs that the recipe cannot run with."""


# Settings and the smallest value each may take.
_MINIMA = {
    "sequence_length": 3,  # One piece, `<sep>` and `<cls>`.
    "max_segments": 1,
    "batch_size": 1,
    "train_steps": 1,
    "warmup_steps": 0,
    "eval_every": 1,
    "eval_batch_size": 1,
    "accumulation_steps": 1,
    "bucket_width": 0,
    "connect_timeout": 1,
}


def _check(config):
    from keras_xlnet.models.segment_recurrence import SegmentSettings
    from keras_xlnet.models.xlnet_text_classifier_preprocessor import (
        TRUNCATIONS,
    )

    for name, minimum in _MINIMA.items():
        value = getattr(config, name)
        if not isinstance(value, int) or value < minimum:
            raise RecipeError(
                f"{name} must be an integer of at least {minimum}; "
                f"received {value!r}."
            )
    for name in ("learning_rate", "clip_norm"):
        value = getattr(config, name)
        if not value > 0:
            raise RecipeError(f"{name} must be positive; received {value!r}.")
    try:
        SegmentSettings(
            config.sequence_length if config.max_segments > 1 else None,
            config.max_segments,
            config.memory_length,
            config.memory_gradient,
        )
    except ValueError as error:
        raise RecipeError(str(error)) from None
    if config.truncate not in TRUNCATIONS:
        raise RecipeError(
            f"truncate must be one of {TRUNCATIONS}; received "
            f"{config.truncate!r}."
        )
    if config.max_segments > 1 and (
        config.train_tfrecord or config.eval_tfrecord
    ):
        raise RecipeError(
            "max_segments > 1 reads the reviews' texts (--data-dir): the "
            "TFRecords hold one packed segment each."
        )
    if config.group_by_length and not config.bucket_width:
        raise RecipeError(
            "group_by_length cuts batches to multiples of bucket_width; "
            "bucket_width must be positive with it."
        )
    if config.warmup_steps > config.train_steps:
        raise RecipeError(
            f"warmup_steps ({config.warmup_steps}) exceeds train_steps "
            f"({config.train_steps})."
        )
    if config.train_steps % config.eval_every:
        raise RecipeError(
            f"eval_every ({config.eval_every}) must divide train_steps "
            f"({config.train_steps})."
        )
    if config.batch_size % config.accumulation_steps:
        raise RecipeError(
            f"accumulation_steps ({config.accumulation_steps}) must divide "
            f"batch_size ({config.batch_size})."
        )


def default_dtype():
    """`mixed_bfloat16` on TPU and GPU, `float32` on CPU."""
    return "mixed_bfloat16" if distribution.accelerator_count() else "float32"


def load_texts(config):
    """`(train, test)` lists of `(texts, labels)`."""
    if config.data_dir:
        root = config.data_dir
    else:
        cache = config.cache_dir or os.path.join(
            os.path.expanduser("~"), ".cache", "keras_xlnet"
        )
        try:
            root = imdb.download_aclimdb(cache)
        except OSError as error:
            raise RecipeError(
                f"The IMDB reviews are not available ({error}). Pass "
                "--data-dir with an unpacked aclImdb folder, or "
                "--train-tfrecord/--eval-tfrecord, or run --demo."
            ) from None
    return imdb.read_aclimdb(root, "train"), imdb.read_aclimdb(root, "test")


def _padded_eval_examples(texts, labels, batch_size):
    """Pads the test set to whole batches with weight-0 fake examples."""
    missing = -len(texts) % batch_size
    weights = [1.0] * len(texts) + [0.0] * missing
    return (
        list(texts) + [""] * missing,
        list(labels) + [0] * missing,
        weights,
    )


SHUFFLE_BUFFER = 2048
# With `group_by_length`, training examples are sorted by length within
# groups of this many batches of one pass (Hugging Face's mega-batches).
GROUP_BATCHES = 10


def shuffled_pass(dataset, index, seed):
    """Pass `index` over `dataset`, shuffled in an order fixed by
    `(seed, index)`.

    `shuffle().repeat()` reshuffles later passes in an order that depends on
    how often the dataset was iterated before in the process (Keras' `fit`
    iterates it more than once), so a resumed run that skips to its position
    would read other batches than an uninterrupted one. Here the order
    depends on the position alone.
    """
    pass_seed = np.random.SeedSequence([seed, index]).generate_state(1)[0]
    return dataset.shuffle(
        SHUFFLE_BUFFER, seed=int(pass_seed), reshuffle_each_iteration=False
    )


def micro_batch_size(config):
    """Examples per training step (per gradient, with accumulation)."""
    return config.batch_size // config.accumulation_steps


def training_batches(config, dataset, size, pack, skip_batches=0):
    """The training micro-batches, packed, from batch `skip_batches` on.

    Passes over `dataset` (`size` examples of `(text or packed inputs,
    label)`) follow each other, each in its own shuffled order, so every
    example is read once per pass; `pack` packs a batch of them. With
    `config.group_by_length` each pass is cut into groups of
    `GROUP_BATCHES` batches, each group sorted by length (longest first)
    and each batch cut to a multiple of `config.bucket_width`.
    """
    if size == 0:
        raise RecipeError("The training data hold no examples.")
    micro_batch = micro_batch_size(config)
    examples = config.train_steps * config.batch_size
    first_pass, offset = divmod(skip_batches * micro_batch, size)
    group = GROUP_BATCHES * config.batch_size
    passes = []
    # One pass at least, even when all is skipped (a run resumed at its end).
    last_pass = max(first_pass + 1, -(-examples // size))
    for index in range(first_pass, last_pass):
        one_pass = shuffled_pass(dataset, index, config.seed)
        skip = offset if index == first_pass else 0
        if config.group_by_length:
            one_pass = (
                one_pass.skip(skip // group * group)
                .batch(group)
                .map(lambda x, y: (pack(x), y))
                .map(length_buckets.sort_by_length)
                .unbatch()
            )
            skip %= group
        passes.append(one_pass.skip(skip))
    stream = passes[0]
    for one_pass in passes[1:]:
        stream = stream.concatenate(one_pass)
    stream = stream.batch(micro_batch, drop_remainder=True)
    if config.group_by_length:
        return stream.map(
            length_buckets.trim_padding(
                config.sequence_length, config.bucket_width
            )
        )
    return stream.map(lambda x, y: (pack(x), y))


def make_datasets(config, preprocessor, train, test, skip_batches=0):
    """tf.data pipelines: shuffled training batches, padded eval."""
    import tensorflow as tf

    if config.train_tfrecord:
        train_ds = imdb.read_tfrecords(
            config.train_tfrecord, config.sequence_length
        ).map(lambda x, y, w: (x, y))
        size = int(train_ds.reduce(0, lambda count, _: count + 1))
        train_ds = training_batches(
            config, train_ds, size, lambda x: x, skip_batches
        )
    else:
        texts, labels = train
        train_ds = training_batches(
            config,
            tf.data.Dataset.from_tensor_slices((texts, labels)),
            len(texts),
            preprocessor,
            skip_batches,
        )
    if config.eval_tfrecord:
        eval_ds = imdb.read_tfrecords(
            config.eval_tfrecord, config.sequence_length
        ).batch(config.eval_batch_size)
    elif config.bucket_width:
        eval_ds, _ = length_buckets.length_sorted_dataset(
            preprocessor,
            *_padded_eval_examples(*test, config.eval_batch_size),
            batch_size=config.eval_batch_size,
            bucket_width=config.bucket_width,
        )
    else:
        eval_ds = (
            tf.data.Dataset.from_tensor_slices(
                _padded_eval_examples(*test, config.eval_batch_size)
            )
            .batch(config.eval_batch_size)
            .map(lambda x, y, w: (preprocessor(x), y, w))
        )
    # Several processes: each feeds its slice of every global batch.
    train_ds = processes.process_batches(train_ds, micro_batch_size(config))
    eval_ds = processes.process_batches(eval_ds, config.eval_batch_size)
    prefetch = tf.data.AUTOTUNE
    return train_ds.prefetch(prefetch), eval_ds.prefetch(prefetch)


def make_optimizer(config):
    """The recipe's Adam, schedule, clipping and accumulation."""
    k = config.accumulation_steps
    schedule = WarmupLinearDecay(
        config.learning_rate, config.train_steps, config.warmup_steps
    )
    clipping = (
        {"micro_batch_clipnorm": config.clip_norm * k}
        if config.per_replica_clip
        else {"global_clipnorm": config.clip_norm}
    )
    return XLNetAdam(
        schedule,
        beta_1=0.9,
        beta_2=0.999,
        gradient_accumulation_steps=k if k > 1 else None,
        **clipping,
    )


RANDOM_STATE_FILE = "random_state.npz"
WEIGHTS_FILE = "latest.weights.h5"
METADATA_FILE = "training_metadata.json"
SETTINGS_FILE = "run_settings.json"
# Settings a resumed run must share with the checkpoint: they fix the model,
# the schedule and the order of the training data.
RESUME_SETTINGS = (
    "preset",
    "data_dir",
    "train_tfrecord",
    "sequence_length",
    "max_segments",
    "memory_length",
    "memory_gradient",
    "truncate",
    "batch_size",
    "train_steps",
    "warmup_steps",
    "learning_rate",
    "clip_norm",
    "per_replica_clip",
    "accumulation_steps",
    "eval_every",
    "seed",
    "group_by_length",
    "bucket_width",
)


def _read_bytes(path):
    with gfile.GFile(path, "rb") as file:
        return file.read()


def _write_bytes(path, data):
    with gfile.GFile(path, "wb") as file:
        file.write(data)


def read_random_state(path):
    """`(epoch, {variable path: state})` of a random-state file."""
    saved = dict(np.load(io.BytesIO(_read_bytes(path))))
    return int(saved.pop("epoch")), saved


class ProcessBackupAndRestore(keras.callbacks.Callback):
    """`BackupAndRestore` (two checkpoints, kept at the end) for one of
    several processes: each restores from `backup_dir` and writes the same
    checkpoints (saving takes part in the processes' collectives) to
    `write_dir`, the chief's being `backup_dir`."""

    def __init__(self, backup_dir, write_dir):
        super().__init__()
        self.reader, self.writer = (
            keras.callbacks.BackupAndRestore(
                folder, delete_checkpoint=False, double_checkpoint=True
            )
            for folder in (backup_dir, write_dir)
        )

    def set_model(self, model):
        super().set_model(model)
        self.reader.set_model(model)
        self.writer.set_model(model)

    def on_train_begin(self, logs=None):
        self.reader.on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        with processes.readable_variables(self.model):
            self.writer.on_epoch_end(epoch, logs)


class RandomStateBackup(keras.callbacks.Callback):
    """Checkpoints the dropout RNG states beside `BackupAndRestore`'s files.

    Keras' weight files leave out the states of the layers' seed
    generators; without them a resumed run draws other dropout masks than
    an uninterrupted one. The file records its epoch, so that a crash
    between the two writes is noticed. Put this callback after
    `BackupAndRestore`.
    """

    def __init__(self, backup_dir, write_dir=None):
        super().__init__()
        self.path = os.path.join(backup_dir, RANDOM_STATE_FILE)
        self.write_path = os.path.join(
            write_dir or backup_dir, RANDOM_STATE_FILE
        )

    def _states(self):
        return [
            v
            for v in self.model.non_trainable_variables
            if v.path.endswith("seed_generator_state")
        ]

    def on_train_begin(self, logs=None):
        if gfile.exists(self.path):
            _, saved = read_random_state(self.path)
            for variable in self._states():
                variable.assign(saved[variable.path])

    def on_epoch_end(self, epoch, logs=None):
        path = self.write_path
        if gfile.exists(path):
            gfile.copy(path, path + ".bkp", overwrite=True)
        states = {v.path: keras.ops.convert_to_numpy(v) for v in self._states()}
        buffer = io.BytesIO()
        np.savez(buffer, epoch=epoch + 1, **states)
        _write_bytes(path, buffer.getvalue())


def _checkpoint_problem(backup_dir, suffix=""):
    """What makes the checkpoint files (names + `suffix`) unusable, or None."""
    paths = [
        os.path.join(backup_dir, name + suffix)
        for name in (WEIGHTS_FILE, METADATA_FILE, RANDOM_STATE_FILE)
    ]
    for path in paths:
        if not gfile.exists(path):
            return f"{path} is missing"
    weights, metadata, random_state = paths
    try:
        with gfile.GFile(weights, "rb") as file, h5py.File(file, "r"):
            pass
    except OSError as error:
        return f"{weights} is unreadable ({error})"
    try:
        epoch = json.loads(_read_bytes(metadata))["epoch"]
    except (ValueError, KeyError, TypeError) as error:
        return f"{metadata} is unreadable ({error!r})"
    try:
        random_epoch, _ = read_random_state(random_state)
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        zipfile.BadZipFile,
    ) as error:
        return f"{random_state} is unreadable ({error!r})"
    if random_epoch != epoch:
        return (
            f"{random_state} is of interval {random_epoch}, the weights of "
            f"interval {epoch}"
        )
    return None


def restorable_epoch(backup_dir, repair=True):
    """Completed evaluation intervals of the checkpoint to resume from.

    A latest checkpoint that is incomplete or unreadable (a crash while
    writing it) is replaced by the previous one (when `repair`), with a
    warning; without a usable previous one, `RecipeError`. `backup_dir`
    may be on `gs://`.
    """
    if not gfile.exists(os.path.join(backup_dir, WEIGHTS_FILE)):
        return 0
    problem = _checkpoint_problem(backup_dir)
    suffix = ""
    if problem:
        if _checkpoint_problem(backup_dir, ".bkp"):
            raise RecipeError(
                f"Cannot resume: {problem}, and there is no complete previous "
                "checkpoint. Start again with another --model-dir."
            )
        warnings.warn(
            f"The latest checkpoint is unusable ({problem}); resuming from "
            "the previous one.",
            stacklevel=2,
        )
        suffix = ".bkp"
        if repair:
            for name in (WEIGHTS_FILE, METADATA_FILE, RANDOM_STATE_FILE):
                path = os.path.join(backup_dir, name)
                gfile.copy(path + suffix, path, overwrite=True)
    metadata = os.path.join(backup_dir, METADATA_FILE + suffix)
    return json.loads(_read_bytes(metadata))["epoch"]


def check_resume_settings(config, backup_dir, record=True):
    """Records the run's settings in `backup_dir` (when `record`), or, when
    resuming, raises `RecipeError` naming each one that differs from the
    record."""
    settings = {
        name: getattr(config, name)
        for name in RESUME_SETTINGS
        # Without grouping, the width only batches the evaluation.
        if name != "bucket_width" or config.group_by_length
    }
    path = os.path.join(backup_dir, SETTINGS_FILE)
    if not (config.resume and gfile.exists(path)):
        if record:
            gfile.makedirs(backup_dir)
            _write_bytes(path, json.dumps(settings, indent=2).encode())
        return
    try:
        recorded = json.loads(_read_bytes(path))
    except ValueError as error:
        raise RecipeError(f"Cannot resume: {path} is unreadable ({error}).")
    # A record from before a setting existed holds its default.
    defaults = dataclasses.asdict(FinetuneConfig())
    recorded = {name: recorded.get(name, defaults[name]) for name in settings}
    changed = [
        f"{name}={settings[name]!r} (checkpoint: {recorded[name]!r})"
        for name in settings
        if recorded[name] != settings[name]
    ]
    if changed:
        raise RecipeError(
            "--resume needs the settings of the run it continues; changed: "
            f"{', '.join(changed)}. Use the original settings, or start "
            "again with another --model-dir."
        )


def prepare_model_dir(config):
    """Checks `model_dir` before any work: `(backup folder, completed
    evaluation intervals to resume from)`. Every process checks; only the
    chief writes (the settings record, a repaired checkpoint), and the
    others read after it."""
    chief = processes.is_chief()
    if chief:
        gfile.makedirs(config.model_dir)
    backup_dir = os.path.join(config.model_dir, "backup")
    if not config.resume and gfile.exists(
        os.path.join(backup_dir, WEIGHTS_FILE)
    ):
        raise RecipeError(
            f"{backup_dir} holds a checkpoint: pass --resume to continue "
            "from it, or choose another --model-dir."
        )
    check_resume_settings(config, backup_dir, record=chief)
    completed = (
        restorable_epoch(backup_dir, repair=chief) if config.resume else 0
    )
    processes.barrier("keras_xlnet: model_dir prepared")
    return backup_dir, completed


def run(config, build_classifier=None, train=None, test=None, callbacks=()):
    """Fine-tunes and evaluates; returns the training summary dict.

    Args:
        config: a `FinetuneConfig`.
        build_classifier: optional callable `dtype -> XLNetClassifier` (with
            a preprocessor); by default `config.preset` is loaded.
        train, test: optional `(texts, labels)`; read from `config` (aclImdb
            folder, download, or TFRecords) when omitted.
        callbacks: extra Keras callbacks, run after the checkpointing one.
    """
    _check(config)
    # First: joining several processes precedes any other JAX work.
    scope = distribution.configure(
        config.distribution, config.tpu, connect_timeout=config.connect_timeout
    )
    backup_dir, completed = prepare_model_dir(config)
    keras.utils.set_random_seed(config.seed)
    dtype = default_dtype() if config.dtype == "auto" else config.dtype
    if build_classifier is None:
        from keras_xlnet.models.xlnet_classifier import XLNetClassifier

        def build_classifier(dtype):
            return XLNetClassifier.from_preset(
                config.preset, num_classes=2, dtype=dtype
            )

    with scope, processes.output_dir(config.model_dir) as output_dir:
        classifier = build_classifier(dtype)
        if config.remat:
            classifier.backbone.remat = True
            for block in classifier.backbone.encoder_blocks:
                block.remat = True
        return _train(
            config,
            classifier,
            (train, test),
            callbacks,
            (backup_dir, output_dir),
            completed,
        )


def _train(config, classifier, data, callbacks, folders, completed):
    """Fine-tunes `classifier` on `data`, `(train, test)`, restoring from
    and checkpointing to the folders `(backup_dir, output_dir)`: the
    chief's output folder is `model_dir`, the other processes' a scratch
    one."""
    train, test = data
    backup_dir, output_dir = folders
    preprocessor = classifier.preprocessor
    if preprocessor is None and not (
        config.train_tfrecord and config.eval_tfrecord
    ):
        raise RecipeError(
            "The classifier has no preprocessor (tokenizer): use a preset "
            "converted with a vocabulary, or TFRecords."
        )
    if preprocessor is not None:
        preprocessor.sequence_length = config.sequence_length
        preprocessor.max_segments = config.max_segments
        preprocessor.truncate = config.truncate
    if config.max_segments > 1:
        classifier.segment_length = config.sequence_length
    classifier.max_segments = config.max_segments
    classifier.memory_length = config.memory_length
    classifier.memory_gradient = config.memory_gradient
    if train is None and not config.train_tfrecord:
        train, test = load_texts(config)

    steps_per_epoch = config.eval_every * config.accumulation_steps
    train_ds, eval_ds = make_datasets(
        config, preprocessor, train, test, completed * steps_per_epoch
    )

    # The datasets are already packed: the classifier must not re-tokenize.
    classifier.preprocessor = None
    classifier.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[],
        # Weighted by the examples' weights: the padding examples of the
        # last evaluation batch count 0. Keras' own `val_loss` averages
        # batches by their size, padding included, so the reported loss is
        # this weighted cross-entropy instead.
        weighted_metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(
                from_logits=True, name="cross_entropy"
            ),
        ],
    )
    write_dir = os.path.join(output_dir, "backup")
    callbacks = [
        ProcessBackupAndRestore(backup_dir, write_dir),
        RandomStateBackup(backup_dir, write_dir),
        keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")),
        *callbacks,
    ]
    history = classifier.fit(
        train_ds,
        epochs=config.train_steps // config.eval_every,
        steps_per_epoch=steps_per_epoch,
        validation_data=eval_ds,
        callbacks=callbacks,
        verbose=config.verbose,
    )
    if "val_accuracy" in history.history:
        # The last interval ended with an evaluation of the final weights.
        evaluation = {
            "cross_entropy": history.history["val_cross_entropy"][-1],
            "accuracy": history.history["val_accuracy"][-1],
        }
    else:  # Resumed after the last interval: nothing was trained.
        evaluation = classifier.evaluate(eval_ds, return_dict=True, verbose=0)
    classifier.preprocessor = preprocessor
    train_logs = {
        k: float(v[-1])
        for k, v in history.history.items()
        if not k.startswith("val_")
    }
    summary = {
        "total_training_steps": int(
            keras.ops.convert_to_numpy(classifier.optimizer.iterations)
        ),
        "train_loss": train_logs.get("loss"),
        "last_train_metrics": train_logs,
        "eval_metrics": {
            # Means over the real test examples only (see `compile` above).
            "loss": float(evaluation["cross_entropy"]),
            "accuracy": float(evaluation["accuracy"]),
        },
    }
    with gfile.GFile(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with processes.readable_variables(classifier):
        _export_preset(classifier, os.path.join(output_dir, "preset"))
    return summary


def _export_preset(classifier, preset_dir):
    """Saves the classifier as a preset folder, locally or on `gs://`."""
    if "://" not in preset_dir:
        classifier.save_to_preset(preset_dir)
        return
    with tempfile.TemporaryDirectory() as local:
        classifier.save_to_preset(local)
        for folder, _, files in os.walk(local):
            target = os.path.join(preset_dir, os.path.relpath(folder, local))
            gfile.makedirs(target)
            for name in files:
                gfile.copy(
                    os.path.join(folder, name),
                    os.path.join(target, name),
                    overwrite=True,
                )


def format_summary(summary):
    """The tutorial-style `Training Summary` block."""
    return "Training Summary:\n" + json.dumps(summary, indent=2)


def demo_data():
    """The bundled reviews written for the demo: `(train, test)`."""
    import importlib.resources

    text = (
        importlib.resources.files("keras_xlnet.data")
        .joinpath("demo_reviews.tsv")
        .read_text(encoding="utf-8")
    )
    rows = [line.split("\t", 1) for line in text.splitlines()[1:] if line]
    # Every fourth review is held out for evaluation.
    splits = {True: ([], []), False: ([], [])}
    for i, (label, review) in enumerate(rows):
        texts, labels = splits[i % 4 == 0]
        texts.append(review)
        labels.append(int(label))
    train, test = splits[False], splits[True]
    return train, test


def demo_classifier(train_texts, folder, seed=0, dtype="float32"):
    """A tiny XLNet and a SentencePiece vocabulary trained on `train_texts`."""
    from keras_xlnet.models.xlnet_backbone import XLNetBackbone
    from keras_xlnet.models.xlnet_classifier import XLNetClassifier
    from keras_xlnet.models.xlnet_text_classifier_preprocessor import (
        XLNetTextClassifierPreprocessor,
    )
    from keras_xlnet.models.xlnet_tokenizer import XLNetTokenizer
    from keras_xlnet.models.xlnet_tokenizer import train_vocabulary

    os.makedirs(folder, exist_ok=True)
    vocabulary = train_vocabulary(
        train_texts, os.path.join(folder, "demo_spiece"), 400
    )
    tokenizer = XLNetTokenizer(proto=vocabulary)
    keras.utils.set_random_seed(seed)
    backbone = XLNetBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        dtype=dtype,
    )
    return XLNetClassifier(
        backbone,
        num_classes=2,
        preprocessor=XLNetTextClassifierPreprocessor(tokenizer),
    )

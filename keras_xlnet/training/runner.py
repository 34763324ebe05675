"""The training runner: one run of any task, resumable, on any backend.

A task (see `Task`) supplies its model, its data and its metrics; the
runner supplies the rest: the distribution over devices and processes,
the optimizer of XLNet's recipes, a checkpoint at every evaluation
(atomic, see `checkpointer`), exact resume, TensorBoard logs,
`metrics.json`, the summary and the export of the trained model. Only the
chief process writes files (on JAX every process takes part in writing a
checkpoint, each its own shards).
"""

import dataclasses
import json
import os
import tempfile
import time

import keras
from tensorflow.io import gfile

from keras_xlnet.training import distribution
from keras_xlnet.training import processes
from keras_xlnet.training.checkpointer import Checkpoints
from keras_xlnet.training.checkpointer import IntervalCheckpoint
from keras_xlnet.training.optimizer import XLNetAdam
from keras_xlnet.training.schedules import WarmupLinearDecay
from keras_xlnet.training.settings import RunConfig
from keras_xlnet.training.settings import RunError
from keras_xlnet.training.settings import changed_settings


class Task:
    """What a recipe hands the runner. Subclass and implement the methods
    that raise `NotImplementedError`.

    Attributes:
        config: the run's settings, a `RunConfig` (or a subclass).
    """

    def __init__(self, config):
        self.config = config

    def build_model(self, dtype):
        """The model to train, built with `dtype` (a Keras dtype policy)."""
        raise NotImplementedError

    def build_trained_model(self, dtype):
        """The trained model `--mode eval` and `--mode export_only` use
        when `model_dir` holds no checkpoint (a task's fine-tuned preset,
        say); none by default."""
        raise RunError(
            f"--mode {self.config.mode}: {self.config.model_dir} holds no "
            "checkpoint."
        )

    def build_model_of_run(self, dtype, settings):
        """The model that a checkpoint of a run with `settings` (its
        recorded settings, a dict) restores into, for `--mode eval` and
        `export_only`; `build_model(dtype)` by default."""
        return self.build_model(dtype)

    def loss(self):
        raise NotImplementedError

    def metrics(self):
        """Weighted metrics, computed in training and evaluation."""
        return []

    def training_batches(self, model, skip_batches):
        """A `tf.data.Dataset` of global training micro-batches `(x, y)`
        of `config.micro_batch_size`, from batch `skip_batches` on, enough
        for the whole run (`training.data_stream` builds one)."""
        raise NotImplementedError

    def evaluation_batches(self, model):
        """A `tf.data.Dataset` of global evaluation batches `(x, y,
        weight)`, all of `config.eval_batch_size` examples (filled with
        weight-0 examples), so that every process takes part in each."""
        raise NotImplementedError

    def summary_metrics(self, evaluation):
        """The evaluation's figures for the summary (a dict of floats)."""
        return {name: float(value) for name, value in evaluation.items()}

    def export(self, model, folder):
        """Saves the trained `model` into the local `folder`."""
        model.save_to_preset(folder)

    def export_for_serving(self, model, folder):
        """Writes the trained `model`'s serving artifact (a SavedModel,
        say) into the local `folder` (`--export`, `--mode export_only`);
        none by default."""
        raise RunError("This task has no export for serving.")


class WeightedAccuracyAndCrossEntropy:
    """Task methods for integer targets scored from logits: accuracy and
    cross-entropy weighted by the examples' weights, so that the filling
    examples of the last evaluation batch count 0 (Keras' own `val_loss`
    averages batches by their size, filling included: the summary reports
    this cross-entropy as `loss` instead)."""

    def metrics(self):
        return [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(
                from_logits=True, name="cross_entropy"
            ),
        ]

    def summary_metrics(self, evaluation):
        return {
            "loss": float(evaluation["cross_entropy"]),
            "accuracy": float(evaluation["accuracy"]),
        }


def make_optimizer(config):
    """XLNet's Adam (eps 1e-8), warm-up and linear decay, clipping and
    gradient accumulation as `config` sets them."""
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


def default_dtype():
    """`mixed_bfloat16` on TPU and GPU, `float32` on CPU."""
    return "mixed_bfloat16" if distribution.accelerator_count() else "float32"


def _check_model_dir(model_dir):
    """The chief makes `model_dir` and checks that it can write there."""
    if not processes.is_chief():
        return
    if gfile.exists(model_dir) and not gfile.isdir(model_dir):
        raise RunError(f"--model-dir {model_dir} is a file, not a folder.")
    try:
        gfile.makedirs(model_dir)
        probe = os.path.join(model_dir, ".keras_xlnet_write_test")
        with gfile.GFile(probe, "w") as file:
            file.write("")
        gfile.remove(probe)
    except Exception as error:  # noqa: BLE001 - any storage's error.
        raise RunError(
            f"--model-dir {model_dir} cannot be written ({error})."
        ) from None


def _prepare_model_dir(config, checkpoints, settings):
    """Checks `model_dir` before any work: the interval to resume from
    (0 to start) and the number of micro-batches already read. Every
    process checks, and all must see the same checkpoint."""
    _check_model_dir(config.model_dir)
    interval = processes.agree(
        "the checkpoint to resume from (interval)", checkpoints.latest()
    )
    if not interval:
        return 0, 0
    if not config.resume:
        raise RunError(
            f"{checkpoints.directory} holds the checkpoint of interval "
            f"{interval}: pass --resume to continue from it, or choose "
            "another --model-dir."
        )
    record = checkpoints.record(interval)
    changed = changed_settings(settings, record["settings"])
    if changed:
        raise RunError(
            "--resume needs the settings of the run it continues; changed: "
            f"{', '.join(changed)}. Use the original settings, or start "
            "again with another --model-dir."
        )
    return interval, record["batches_read"]


def run(task, callbacks=()):
    """Runs `task` in its config's `mode` (train and evaluate, train, or
    evaluate); returns the summary dict.

    Args:
        task: a `Task`.
        callbacks: extra Keras callbacks, run after the checkpointing one.
    """
    config = task.config
    config.check()
    # First: joining several processes precedes any other JAX work.
    scope = distribution.configure(
        config.distribution, config.tpu, connect_timeout=config.connect_timeout
    )
    chief = processes.is_chief()
    dtype = default_dtype() if config.dtype == "auto" else config.dtype
    settings = config.resume_settings(dtype)
    checkpoints = Checkpoints(
        config.model_dir,
        writer=chief or keras.config.backend() == "jax",
    )
    if config.mode == "eval":
        return _evaluate(task, scope, checkpoints, dtype, chief)
    if config.mode == "export_only":
        return _export_only(task, scope, checkpoints, dtype, chief)
    interval, batches_read = _prepare_model_dir(config, checkpoints, settings)
    processes.barrier("keras_xlnet: model_dir prepared")
    keras.utils.set_random_seed(config.seed)
    with scope:
        model = task.build_model(dtype)
        if config.remat:
            _recompute_blocks(model)
        _compile_and_restore(task, model, config, checkpoints, interval)
        train_ds = task.training_batches(model, batches_read)
        eval_ds = None
        if config.mode == "train_and_eval":
            eval_ds = _for_this_process(
                task.evaluation_batches(model), config.eval_batch_size
            )
        history = model.fit(
            _for_this_process(train_ds, config.micro_batch_size),
            initial_epoch=interval,
            epochs=config.intervals,
            steps_per_epoch=config.batches_per_interval,
            validation_data=eval_ds,
            # Each pass is a permutation already (`data_stream`).
            shuffle=False,
            callbacks=[
                IntervalCheckpoint(
                    checkpoints, config.batches_per_interval, settings
                ),
                *_logs(config.model_dir, chief),
                *callbacks,
            ],
            verbose=config.verbose,
        )
        summary = _summary(task, model, history, eval_ds)
    # Outside the strategy's scope: saving creates variables, which under a
    # TensorFlow strategy of several workers would wait for the others.
    _write_results(task, model, summary, config.model_dir, chief)
    return summary


def _compile_and_restore(task, model, config, checkpoints, interval):
    """Compiles `model` with the task's loss and metrics and the optimizer
    of `config`; with an `interval`, assigns that checkpoint to the model
    and the (built) optimizer."""
    model.compile(
        optimizer=make_optimizer(config),
        loss=task.loss(),
        metrics=[],
        weighted_metrics=task.metrics(),
    )
    if interval:
        model.optimizer.build(model.trainable_variables)
        checkpoints.restore(interval, model)


def _for_this_process(dataset, batch_size):
    """This process's slice of each global batch, prefetched."""
    import tensorflow as tf

    return processes.process_batches(dataset, batch_size).prefetch(
        tf.data.AUTOTUNE
    )


def _recompute_blocks(model):
    """Recomputes each encoder block in the backward pass (`--remat`)."""
    backbone = getattr(model, "backbone", None)
    if backbone is None or not hasattr(backbone, "encoder_blocks"):
        raise RunError("--remat needs a model with an XLNet backbone.")
    backbone.remat = True
    for block in backbone.encoder_blocks:
        block.remat = True


def _logs(model_dir, chief):
    """TensorBoard logs, written by the chief."""
    if not chief:
        return []
    return [keras.callbacks.TensorBoard(os.path.join(model_dir, "logs"))]


def _trained_model(task, checkpoints, dtype):
    """The newest checkpoint of `model_dir` (without one, the task's
    trained model), compiled: `(model, "checkpoint N" or "preset")`. Call
    within the run's scope (a TensorFlow strategy's scope is entered
    once)."""
    config = task.config
    _check_model_dir(config.model_dir)
    interval = processes.agree(
        "the checkpoint to use (interval)", checkpoints.latest()
    )
    optimizer_config = config
    if interval:
        # The checkpoint holds the optimizer's state: build the optimizer
        # of its run (accumulation adds variables).
        recorded = checkpoints.record(interval)["settings"]
        optimizer_config = dataclasses.replace(
            config,
            **{
                name: recorded[name]
                for name in RunConfig.RESUME_SETTINGS
                if name != "dtype" and name in recorded
            },
        )
    keras.utils.set_random_seed(config.seed)
    if interval:
        model = task.build_model_of_run(dtype, recorded)
    else:
        model = task.build_trained_model(dtype)
    _compile_and_restore(task, model, optimizer_config, checkpoints, interval)
    return model, f"checkpoint {interval}" if interval else "preset"


def _evaluate(task, scope, checkpoints, dtype, chief):
    """`--mode eval`: the trained model (`_trained_model`) on the
    evaluation data; the summary goes to `model_dir/eval/metrics.json`."""
    config = task.config
    with scope:
        model, source = _trained_model(task, checkpoints, dtype)
        evaluation = model.evaluate(
            _for_this_process(
                task.evaluation_batches(model), config.eval_batch_size
            ),
            return_dict=True,
            verbose=config.verbose,
        )
    summary = {
        "evaluated": source,
        "total_training_steps": _steps(model),
        "eval_metrics": task.summary_metrics(evaluation),
    }
    if chief:
        _write_json(os.path.join(config.model_dir, "eval"), summary)
    return summary


def _export_only(task, scope, checkpoints, dtype, chief):
    """`--mode export_only`: the trained model (`_trained_model`) exported
    for serving into `<export_dir>/<version>`."""
    with scope:
        model, source = _trained_model(task, checkpoints, dtype)
    summary = {"exported": source, "total_training_steps": _steps(model)}

    def write():
        summary["export"] = _write_serving_export(task, model)

    _by_the_chief(model, chief, write)
    return summary


def export_folder(config):
    """A new, empty version folder `<export_dir>/<version>` (the Unix time
    in seconds, as TensorFlow Serving orders versions; the next free one
    if taken) of `config.export_dir` (default `<model_dir>/export`). A
    local folder is made at once, so that two exports cannot take the
    same version."""
    root = config.export_dir or os.path.join(config.model_dir, "export")
    gfile.makedirs(root)
    version = int(time.time())
    while True:
        folder = os.path.join(root, str(version))
        if "://" in folder:
            if not gfile.exists(folder):
                return folder
        else:
            try:
                os.mkdir(folder)
                return folder
            except FileExistsError:
                pass
        version += 1


def _write_serving_export(task, model):
    """`task.export_for_serving` into a new `export_folder`; its path."""
    folder = export_folder(task.config)
    _write_folder(lambda local: task.export_for_serving(model, local), folder)
    return folder


def _steps(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _write_json(folder, summary):
    """`folder/metrics.json`."""
    gfile.makedirs(folder)
    with gfile.GFile(os.path.join(folder, "metrics.json"), "w") as file:
        json.dump(summary, file, indent=2)


def _summary(task, model, history, eval_ds):
    """The run's summary; `eval_ds` (this process's batches, `None` in
    `--mode train`) evaluates the final weights when the last interval
    did not (a resumed run that had nothing left to train)."""
    train_logs = {
        k: float(v[-1])
        for k, v in history.history.items()
        if not k.startswith("val_")
    }
    summary = {
        "total_training_steps": _steps(model),
        "train_loss": train_logs.get("loss"),
        "last_train_metrics": train_logs,
    }
    if eval_ds is None:  # --mode train
        return summary
    if "val_loss" in history.history:
        # The last interval ended with an evaluation of the final weights.
        evaluation = {
            key.removeprefix("val_"): values[-1]
            for key, values in history.history.items()
            if key.startswith("val_")
        }
    else:  # Resumed after the last interval: nothing was trained.
        evaluation = model.evaluate(eval_ds, return_dict=True, verbose=0)
    summary["eval_metrics"] = task.summary_metrics(evaluation)
    return summary


def _write_results(task, model, summary, model_dir, chief):
    """`metrics.json`, the trained preset (`model_dir/preset`) and with
    `--export` the serving export (its path added to `summary`)."""

    def write():
        _write_json(model_dir, summary)
        _write_folder(
            lambda local: task.export(model, local),
            os.path.join(model_dir, "preset"),
        )
        if task.config.export:
            summary["export"] = _write_serving_export(task, model)

    _by_the_chief(model, chief, write)


def _by_the_chief(model, chief, write):
    """`write()` by the chief alone, outside any distribution (saving
    creates variables, which under a distribution of several processes
    would wait for the others); every process takes part in reading
    split variables."""
    with processes.readable_variables(model):
        if not chief:
            return
        distributed = keras.distribution.distribution()
        keras.distribution.set_distribution(None)
        try:
            write()
        finally:
            keras.distribution.set_distribution(distributed)


def _write_folder(write, folder):
    """`write(local_folder)` into `folder`, locally or on `gs://`."""
    if "://" not in folder:
        write(folder)
        return
    with tempfile.TemporaryDirectory() as local:
        write(local)
        for root, _, files in os.walk(local):
            target = os.path.join(folder, os.path.relpath(root, local))
            gfile.makedirs(target)
            for name in files:
                gfile.copy(
                    os.path.join(root, name),
                    os.path.join(target, name),
                    overwrite=True,
                )


def format_summary(summary):
    """The tutorial-style `Training Summary` block."""
    return "Training Summary:\n" + json.dumps(summary, indent=2)

"""Atomic checkpoints of a run, one per evaluation interval (Orbax).

A checkpoint holds everything a resumed run needs: every variable of the
model (weights and the dropout RNG states), every variable of the
optimizer (its step, Adam's moments, accumulated gradients), the global
random state that unseeded operations draw from (torch's) and a record
of the interval, the data position and the run's settings. Orbax writes it
into a temporary folder and renames it when complete (on `gs://` it
writes a commit marker last), and deletes the older checkpoint only after
that, keeping the two newest: a crash at any moment leaves the newest
complete checkpoint readable, and an incomplete one is never listed.

On JAX, every process of a multi-process run takes part in a save (each
writes the shards its devices hold; no variable is gathered); elsewhere
the chief alone writes.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow.io import gfile

from keras_xlnet.training import processes
from keras_xlnet.training.settings import RunError

FOLDER = "checkpoints"
# A complete checkpoint folder holds this file (Orbax writes it last).
COMPLETE = "commit_success.txt"
RECORD = os.path.join("run", "metadata")


def _orbax():
    import orbax.checkpoint as ocp

    return ocp


def _values(variables):
    if keras.config.backend() == "jax":
        return [variable.value for variable in variables]
    return [keras.ops.convert_to_numpy(variable) for variable in variables]


def _targets(variables):
    """What each variable restores into: its shape, dtype and (JAX) the
    placement of its current value."""
    if keras.config.backend() == "jax":
        import jax

        return [
            jax.ShapeDtypeStruct(
                v.shape, v.value.dtype, sharding=v.value.sharding
            )
            for v in variables
        ]
    return [
        np.zeros(v.shape, keras.backend.standardize_dtype(v.dtype))
        for v in variables
    ]


def _global_random_state():
    """The backend's global random states that unseeded operations draw
    from (torch's dropout without a seed), as arrays: none elsewhere."""
    if keras.config.backend() != "torch":
        return []
    import torch

    states = [torch.get_rng_state()]
    if torch.cuda.is_available():
        states += torch.cuda.get_rng_state_all()
    return [state.numpy() for state in states]


def _set_global_random_state(states):
    if not states:
        return
    import torch

    torch.set_rng_state(torch.from_numpy(states[0]))
    if len(states) > 1:
        torch.cuda.set_rng_state_all([torch.from_numpy(s) for s in states[1:]])


def describe(variables):
    """`[[path, shape], ...]`: what a checkpoint records of its variables."""
    return [[v.path, list(v.shape)] for v in variables]


class Checkpoints:
    """The checkpoints of a run in `model_dir/checkpoints`.

    Args:
        model_dir: the run's folder (local or `gs://`).
        writer: whether this process writes (every process on JAX, the
            chief elsewhere).
    """

    def __init__(self, model_dir, writer=True):
        if "://" not in model_dir:  # Orbax takes absolute paths.
            model_dir = os.path.abspath(model_dir)
        self.directory = os.path.join(model_dir, FOLDER)
        self.writer = writer
        self._manager = None
        # The global random state of the restored checkpoint, to apply.
        self.random_state = None

    def _get_manager(self):
        if self._manager is None:
            ocp = _orbax()
            options = ocp.CheckpointManagerOptions(
                max_to_keep=2,
                create=self.writer,
                read_only=not self.writer,
                enable_async_checkpointing=False,
            )
            self._manager = ocp.CheckpointManager(
                self.directory, options=options
            )
        return self._manager

    def intervals(self):
        """The complete checkpoints' intervals, as this process sees them."""
        if not gfile.isdir(self.directory):
            return []
        names = [name.rstrip("/") for name in gfile.listdir(self.directory)]
        return sorted(
            int(name)
            for name in names
            if name.isdigit()
            and gfile.exists(os.path.join(self.directory, name, COMPLETE))
        )

    def latest(self):
        """The newest complete interval, or 0 without a checkpoint."""
        found = self.intervals()
        return found[-1] if found else 0

    def record(self, interval):
        """The record of checkpoint `interval` (a dict), checked."""
        path = os.path.join(self.directory, str(interval), RECORD)
        try:
            with gfile.GFile(path, "rb") as file:
                record = json.loads(file.read())
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise RunError(
                f"Cannot resume: {path} is unreadable ({error}). Delete "
                f"{os.path.dirname(os.path.dirname(path))} to resume from the "
                "checkpoint before it, or start again with another "
                "--model-dir."
            ) from None
        keys = {"interval", "batches_read", "settings", "variables"}
        if not isinstance(record, dict) or not keys <= set(record):
            raise RunError(
                f"Cannot resume: {path} is not a checkpoint record (a JSON "
                f"object with {sorted(keys)}); received {record!r:.80}."
            )
        return record

    def save(self, interval, model, batches_read, settings):
        """Writes checkpoint `interval` of `model` and its optimizer."""
        ocp = _orbax()
        variables = processes.model_variables(model)
        record = {
            "interval": interval,
            "batches_read": batches_read,
            "settings": settings,
            "variables": describe(variables),
        }
        state = ocp.args.StandardSave(
            {"variables": _values(variables), "random": _global_random_state()}
        )
        self._get_manager().save(
            interval,
            args=ocp.args.Composite(state=state, run=ocp.args.JsonSave(record)),
        )
        self._get_manager().wait_until_finished()

    def restore(self, interval, model):
        """Assigns checkpoint `interval` to `model` and its (built)
        optimizer; returns its record. A checkpoint of another model is
        refused with the difference named."""
        record = self.record(interval)
        variables = processes.model_variables(model)
        _check_same_model(record["variables"], describe(variables))
        ocp = _orbax()
        restored = self._get_manager().restore(
            interval,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(
                    {
                        "variables": _targets(variables),
                        "random": _global_random_state(),
                    }
                )
            ),
        )
        # Applied before the first step of the resumed run
        # (`IntervalCheckpoint`): `fit` draws from it for its data iterator
        # first, which the interrupted run had done before it saved.
        self.random_state = restored.state["random"]
        for variable, value in zip(variables, restored.state["variables"]):
            variable.assign(value)
        return record

    def close(self):
        if self._manager is not None:
            self._manager.close()
            self._manager = None


def _check_same_model(recorded, current):
    """`RunError` naming the first variable whose shape differs."""

    def parameters(described):
        return sum(int(np.prod(shape)) for _, shape in described)

    problem = None
    if len(recorded) != len(current):
        problem = (
            f"it holds {len(recorded)} variables, this model and optimizer "
            f"{len(current)}"
        )
    else:
        for (path, shape), (_, expected) in zip(recorded, current):
            if shape != expected:
                problem = (
                    f"its variable {path} has shape {shape}, this model's "
                    f"{expected}"
                )
                break
    if problem:
        raise RunError(
            "Cannot resume: the checkpoint is of a model of another size "
            f"({parameters(recorded):,} values against {parameters(current):,}"
            f"; {problem}). Use the model of the checkpoint, or start again "
            "with another --model-dir."
        )


class IntervalCheckpoint(keras.callbacks.Callback):
    """Writes a checkpoint at the end of each evaluation interval (epoch).

    Args:
        checkpoints: `Checkpoints`.
        batches_per_interval: micro-batches read in one interval.
        settings: the run's resume settings, recorded in each checkpoint.
    """

    def __init__(self, checkpoints, batches_per_interval, settings):
        super().__init__()
        self.checkpoints = checkpoints
        self.batches_per_interval = batches_per_interval
        self.settings = settings

    def on_train_batch_begin(self, batch, logs=None):
        if self.checkpoints.random_state is not None:
            _set_global_random_state(self.checkpoints.random_state)
            self.checkpoints.random_state = None

    def on_epoch_end(self, epoch, logs=None):
        if not self.checkpoints.writer:
            return
        interval = epoch + 1
        self.checkpoints.save(
            interval,
            self.model,
            interval * self.batches_per_interval,
            self.settings,
        )

    def on_train_end(self, logs=None):
        self.checkpoints.close()
        processes.barrier("keras_xlnet: checkpoints written")

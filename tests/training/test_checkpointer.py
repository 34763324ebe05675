"""Checkpoints: atomic at every stage of writing, checked when read."""

import builtins
import json
import os
import shutil

import keras
import numpy as np
import pytest

from keras_xlnet.training import runner
from keras_xlnet.training.checkpointer import Checkpoints
from keras_xlnet.training.settings import RunConfig
from keras_xlnet.training.settings import RunError

SETTINGS = {"batch_size": 4, "seed": 0}
BATCHES = 5  # Micro-batches per interval, recorded as the data position.


def tiny_model(units=3):
    """A compiled model with dropout (an RNG state) and Adam's moments."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(units),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def train_step(model, seed):
    rng = np.random.default_rng(seed)
    model.train_on_batch(rng.normal(size=(8, 4)), rng.normal(size=(8, 2)))


def state(model):
    """Every variable of the model and its optimizer, as arrays."""
    return [
        keras.ops.convert_to_numpy(v)
        for v in [*model.variables, *model.optimizer.variables]
    ]


def assert_state(model, expected):
    for actual, wanted in zip(state(model), expected, strict=True):
        np.testing.assert_array_equal(actual, wanted)


class Crash(BaseException):
    """A simulated crash: no `except Exception` of the writer catches it."""


OPERATIONS = ("rename", "replace", "mkdir", "makedirs", "remove", "unlink")
OPERATIONS += ("rmdir",)


def crashing_at(monkeypatch, index, when):
    """Counts the file and folder operations of this process from here on
    and crashes `when` ("before" or "after") operation `index`; returns the
    list of operations seen."""
    seen = []

    def counted(name, function):
        def operation(*args, **kwargs):
            seen.append(f"{name} {args[0]}")
            if len(seen) - 1 == index and when == "before":
                raise Crash(seen[-1])
            result = function(*args, **kwargs)
            if len(seen) - 1 == index and when == "after":
                raise Crash(seen[-1])
            return result

        return operation

    for name in OPERATIONS:
        monkeypatch.setattr(os, name, counted(name, getattr(os, name)))
    monkeypatch.setattr(shutil, "rmtree", counted("rmtree", shutil.rmtree))
    real_open = builtins.open

    def open_for_writing(file, mode="r", *args, **kwargs):
        return real_open(file, mode, *args, **kwargs)

    writing = counted("write", open_for_writing)
    monkeypatch.setattr(
        builtins,
        "open",
        lambda file, mode="r", *a, **k: (
            writing(file, mode, *a, **k)
            if set(mode) & set("wax+")
            else real_open(file, mode, *a, **k)
        ),
    )
    return seen


@pytest.fixture(scope="module")
def intervals(tmp_path_factory):
    """A run folder with the checkpoints of intervals 1 and 2, and the
    states of intervals 1, 2 and 3 (the one to be written)."""
    folder = tmp_path_factory.mktemp("run")
    model = tiny_model()
    states = {}
    for interval in (1, 2, 3):
        train_step(model, interval)
        states[interval] = state(model)
        if interval < 3:
            Checkpoints(str(folder)).save(
                interval, model, interval * BATCHES, SETTINGS
            )
    return folder, states


def write_third(folder, states, monkeypatch=None, index=None, when=None):
    """Writes the checkpoint of interval 3 into `folder` (a copy of the
    two-interval run), crashing at operation `index` if given; returns the
    operations seen."""
    model = tiny_model()
    for variable, value in zip(
        [*model.variables, *model.optimizer.variables], states[3]
    ):
        variable.assign(value)
    seen = crashing_at(monkeypatch, index, when) if monkeypatch else []
    try:
        Checkpoints(str(folder)).save(3, model, 3 * BATCHES, SETTINGS)
    except Crash:
        pass
    finally:
        if monkeypatch:
            monkeypatch.undo()
    return seen


def operation_count(intervals, tmp_path):
    folder, states = intervals
    shutil.copytree(folder, tmp_path / "count")
    with pytest.MonkeyPatch.context() as monkeypatch:
        return len(write_third(tmp_path / "count", states, monkeypatch, -1))


@pytest.mark.backend_independent
def test_a_crash_at_any_stage_leaves_a_complete_checkpoint(intervals, tmp_path):
    """Before and after each file and folder operation of a save (making
    the temporary folders, writing each file, renaming, deleting the oldest
    checkpoint): the newest complete checkpoint restores the model, the
    optimizer, the RNG states and the record of one interval, never a mix;
    and the run goes on writing checkpoints."""
    folder, states = intervals
    count = operation_count(intervals, tmp_path)
    assert count >= 20  # Folders, files, renames, deletions.
    resumed_from = []
    for index in range(count):
        for when in ("before", "after"):
            copy = tmp_path / f"{index}_{when}"
            shutil.copytree(folder, copy)
            with pytest.MonkeyPatch.context() as monkeypatch:
                write_third(copy, states, monkeypatch, index, when)
            checkpoints = Checkpoints(str(copy))
            latest = checkpoints.latest()
            assert latest in (2, 3), (index, when)
            model = tiny_model()
            record = checkpoints.restore(latest, model)
            assert record["interval"] == latest
            assert record["batches_read"] == latest * BATCHES
            assert_state(model, states[latest])
            resumed_from.append(latest)
            # The run continues: its next checkpoint is written and read.
            train_step(model, 4)
            checkpoints.save(latest + 1, model, 0, SETTINGS)
            assert Checkpoints(str(copy)).latest() == latest + 1
            shutil.rmtree(copy)
    # The crashes span the moment the new checkpoint becomes complete.
    assert 2 in resumed_from and 3 in resumed_from


def test_a_crash_without_an_earlier_checkpoint_starts_over(tmp_path):
    model = tiny_model()
    with pytest.MonkeyPatch.context() as monkeypatch:
        crashing_at(monkeypatch, 3, "after")
        with pytest.raises(Crash):
            Checkpoints(str(tmp_path)).save(1, model, BATCHES, SETTINGS)
    assert Checkpoints(str(tmp_path)).latest() == 0


def config(folder, **changes):
    return RunConfig(**{"model_dir": str(folder), "resume": True, **changes})


def prepare(folder, **changes):
    run_config = config(folder, **changes)
    return runner._prepare_model_dir(
        run_config,
        Checkpoints(str(folder)),
        run_config.resume_settings("float32"),
    )


@pytest.fixture
def one_interval(tmp_path):
    """A run folder with the checkpoint of interval 1 of `RunConfig()`'s
    settings, batch 4."""
    model = tiny_model()
    settings = config(tmp_path, batch_size=4).resume_settings("float32")
    Checkpoints(str(tmp_path)).save(1, model, BATCHES, settings)
    return tmp_path


def test_resume_reads_the_position_and_refuses_changed_settings(one_interval):
    assert prepare(one_interval, batch_size=4) == (1, BATCHES)
    # Not a setting of the schedule or the data order.
    assert prepare(one_interval, batch_size=4, eval_batch_size=64)[0] == 1
    with pytest.raises(RunError) as error:
        prepare(one_interval, batch_size=8, seed=3, learning_rate=1e-4)
    message = str(error.value)
    for setting in ("batch_size=8 (checkpoint: 4)", "seed=3 (checkpoint: 0)"):
        assert setting in message
    assert "learning_rate=0.0001 (checkpoint: 2e-05)" in message
    assert "train_steps" not in message


def test_the_resolved_dtype_is_a_resume_setting(one_interval):
    run_config = config(one_interval, batch_size=4)
    with pytest.raises(RunError, match="dtype='mixed_bfloat16'"):
        runner._prepare_model_dir(
            run_config,
            Checkpoints(str(one_interval)),
            run_config.resume_settings("mixed_bfloat16"),
        )


def test_a_checkpoint_without_resume_is_not_overwritten(one_interval):
    with pytest.raises(RunError, match="pass --resume"):
        prepare(one_interval, batch_size=4, resume=False)


@pytest.mark.parametrize(
    "record, problem",
    [
        ("[1, 2]", "is not a checkpoint record"),
        ("null", "is not a checkpoint record"),
        ('{"interval": 1}', "is not a checkpoint record"),
        ('{"interval": ', "is unreadable"),
        (None, "is unreadable"),
    ],
    ids=["list", "null", "keys missing", "truncated", "deleted"],
)
def test_a_damaged_record_is_named(one_interval, record, problem):
    path = one_interval / "checkpoints" / "1" / "run" / "metadata"
    if record is None:
        path.unlink()
    else:
        path.write_text(record)
    with pytest.raises(RunError, match=problem) as error:
        prepare(one_interval, batch_size=4)
    assert str(path) in str(error.value)


def test_a_checkpoint_of_another_model_size_is_named(one_interval):
    checkpoints = Checkpoints(str(one_interval))
    with pytest.raises(RunError, match="of a model of another size") as error:
        checkpoints.restore(1, tiny_model(units=5))
    assert "has shape [4, 3], this model's [4, 5]" in str(error.value)


def test_the_record_holds_the_settings_and_the_variables(one_interval):
    record = json.loads(
        (one_interval / "checkpoints" / "1" / "run" / "metadata").read_text()
    )
    assert record["settings"]["batch_size"] == 4
    assert record["batches_read"] == BATCHES
    model = tiny_model()
    variables = [*model.variables, *model.optimizer.variables]
    assert [shape for _, shape in record["variables"]] == [
        list(v.shape) for v in variables
    ]

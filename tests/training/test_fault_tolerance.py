"""A killed run, resumed, ends where a straight run ends."""

import dataclasses
import io
import json
import os
import signal
import sys

import keras
import numpy as np
import pytest
from child_processes import finish
from child_processes import start

import keras_xlnet
from keras_xlnet.training import finetune

SCRIPT = os.path.join(os.path.dirname(__file__), "killable_run.py")


def run(model_dir, mode, batches="plain"):
    """A started run of `killable_run.py`."""
    # 8 steps of batch 8, evaluated every 4: each interval reads 32 of the
    # 27 training reviews, so it spans more than one pass.
    return start(
        [sys.executable, SCRIPT, str(model_dir), mode, "8", "4", "8", batches]
    )


def weights(model_dir):
    classifier = keras_xlnet.XLNetClassifier.from_preset(
        str(model_dir / "preset")
    )
    return classifier.get_weights()


@pytest.mark.parametrize("batches", ["plain", "grouped"])
def test_sigkill_then_resume_equals_a_straight_run(tmp_path, batches):
    if keras.config.backend() == "torch":
        pytest.skip("checked on JAX and TensorFlow")
    # The straight run and the run to be killed side by side.
    straight, killed = finish(
        [
            run(tmp_path / "straight", "straight", batches),
            run(tmp_path / "killed", "kill", batches),
        ]
    )
    assert straight[0] == 0, straight[2][-2000:]
    assert killed[0] == -signal.SIGKILL, killed[2][-2000:]
    assert (tmp_path / "killed" / "backup" / "latest.weights.h5").exists()
    ((resumed, _, error),) = finish(
        [run(tmp_path / "killed", "resume", batches)]
    )
    assert resumed == 0, error[-2000:]

    # Bit-identical on the CPU: weights, training loss, evaluation.
    for a, b in zip(
        weights(tmp_path / "straight"), weights(tmp_path / "killed")
    ):
        np.testing.assert_array_equal(a, b)
    summaries = [
        json.loads((tmp_path / name / "metrics.json").read_text())
        for name in ("straight", "killed")
    ]
    for key in ("train_loss", "eval_metrics", "total_training_steps"):
        assert summaries[0][key] == summaries[1][key]


def write_checkpoint(backup, epoch, suffix=""):
    """A readable checkpoint set of `epoch` (weights, metadata, RNG state)."""
    import h5py

    with h5py.File(backup / f"latest.weights.h5{suffix}", "w"):
        pass
    (backup / f"training_metadata.json{suffix}").write_text(
        json.dumps({"epoch": epoch, "batch": 0})
    )
    buffer = io.BytesIO()
    np.savez(buffer, epoch=epoch, **{"dropout/seed_generator_state": [1, 2]})
    (backup / f"random_state.npz{suffix}").write_bytes(buffer.getvalue())


@pytest.mark.parametrize(
    "damage, problem",
    [
        ("latest.weights.h5", "latest.weights.h5 is unreadable"),
        ("training_metadata.json", "training_metadata.json is unreadable"),
        ("random_state.npz", "random_state.npz is unreadable"),
        ("missing random_state.npz", "random_state.npz is missing"),
        ("stale random_state.npz", "random_state.npz is of interval 1"),
    ],
)
def test_damaged_latest_checkpoint_falls_back_or_stops(
    tmp_path, damage, problem
):
    backup = tmp_path / "backup"
    backup.mkdir()
    write_checkpoint(backup, 2)
    name = damage.split()[-1]
    if damage.startswith("missing"):
        (backup / name).unlink()
    elif damage.startswith("stale"):
        write_checkpoint(tmp_path, 1)  # Another folder: only its RNG file.
        (backup / name).write_bytes((tmp_path / name).read_bytes())
    else:
        data = (backup / name).read_bytes()
        (backup / name).write_bytes(data[: len(data) // 2] or b"{")
    # Without a previous checkpoint: a clear stop.
    with pytest.raises(finetune.RecipeError, match=problem):
        finetune.restorable_epoch(str(backup))
    # With one: back to it, with a warning naming the problem.
    write_checkpoint(backup, 1, suffix=".bkp")
    with pytest.warns(UserWarning, match=problem):
        assert finetune.restorable_epoch(str(backup)) == 1
    assert finetune.restorable_epoch(str(backup)) == 1  # Now consistent.


def test_resume_with_changed_settings_is_refused(tmp_path):
    config = finetune.FinetuneConfig(
        model_dir=str(tmp_path / "run"), batch_size=4, train_steps=6
    )
    finetune.prepare_model_dir(config)
    same = dataclasses.replace(config, resume=True, eval_batch_size=64)
    assert finetune.prepare_model_dir(same)[1] == 0  # Not a schedule change.
    changed = dataclasses.replace(
        config, resume=True, batch_size=8, seed=3, learning_rate=1e-4
    )
    with pytest.raises(finetune.RecipeError) as error:
        finetune.prepare_model_dir(changed)
    message = str(error.value)
    for setting in ("batch_size=8 (checkpoint: 4)", "seed=3 (checkpoint: 0)"):
        assert setting in message
    assert "learning_rate=0.0001 (checkpoint: 2e-05)" in message
    assert "train_steps" not in message


@pytest.mark.parametrize("group_by_length", [False, True])
def test_bucket_width_binds_a_resume_only_with_grouping(
    tmp_path, group_by_length
):
    config = finetune.FinetuneConfig(
        model_dir=str(tmp_path / "run"), group_by_length=group_by_length
    )
    finetune.prepare_model_dir(config)
    wider = dataclasses.replace(config, resume=True, bucket_width=128)
    if not group_by_length:  # The width only batches the evaluation.
        assert finetune.prepare_model_dir(wider)[1] == 0
        return
    with pytest.raises(finetune.RecipeError, match="bucket_width=128"):
        finetune.prepare_model_dir(wider)


def test_a_run_stopped_before_its_first_checkpoint_starts_again(tmp_path):
    config = finetune.FinetuneConfig(model_dir=str(tmp_path / "run"))
    assert finetune.prepare_model_dir(config)[1] == 0
    # Only the settings record exists: a plain rerun may start over ...
    changed = dataclasses.replace(config, batch_size=8)
    assert finetune.prepare_model_dir(changed)[1] == 0
    # ... but not once a checkpoint is there.
    write_checkpoint(tmp_path / "run" / "backup", 1)
    with pytest.raises(finetune.RecipeError, match="pass --resume"):
        finetune.prepare_model_dir(config)

"""A killed run, resumed, ends where a straight run ends."""

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


# Each backend's resumption is proven once: JAX with length-grouped batches
# and XLNet's memory here (plain batches by the two JAX processes of
# `test_multiprocess.py`), TensorFlow by its two killed workers there, and
# PyTorch, which runs one process only and keeps its own random generator,
# with plain batches here.
ONE_RUN_PER_BACKEND = {"jax": "grouped", "torch": "plain"}


@pytest.mark.parametrize("batches", ["plain", "grouped"])
def test_sigkill_then_resume_equals_a_straight_run(tmp_path, batches):
    if ONE_RUN_PER_BACKEND.get(keras.config.backend()) != batches:
        pytest.skip("this backend's resumption is proven by another run")
    # The straight run and the run to be killed side by side.
    straight, killed = finish(
        [
            run(tmp_path / "straight", "straight", batches),
            run(tmp_path / "killed", "kill", batches),
        ]
    )
    assert straight[0] == 0, straight[2][-2000:]
    assert killed[0] == -signal.SIGKILL, killed[2][-2000:]
    # Killed after writing the checkpoint of interval 1 of 2.
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert sorted(os.listdir(checkpoints)) == ["1"]
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

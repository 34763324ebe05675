"""Continued pretraining on the runner: a killed run resumes to the very
same end, memory included; two JAX processes train as one."""

import os
import signal
import sys

import keras
import numpy as np
import pytest
from child_processes import DEADLINE
from child_processes import finish
from child_processes import results
from child_processes import start
from child_processes import start_all

import keras_xlnet

SCRIPT = os.path.join(os.path.dirname(__file__), "pretrain_run.py")

pytestmark = pytest.mark.skipif(
    keras.config.backend() != "jax",
    reason="the pretraining runs are proven on JAX",
)


def command(model_dir, mode, layout="none", devices=1):
    return [sys.executable, SCRIPT, str(model_dir), mode, layout, str(devices)]


def preset_weights(model_dir):
    model = keras_xlnet.XLNetPermutationLM.from_preset(
        str(model_dir / "preset")
    )
    return model.get_weights()


def test_sigkill_then_resume_equals_a_straight_run(tmp_path):
    """Killed after the checkpoint of step 4 of 8, resumed: the losses of
    every step, the carried memory and the weights equal a straight run's
    bit for bit."""
    straight, killed = finish(
        [
            start(command(tmp_path / "straight", "straight")),
            start(command(tmp_path / "killed", "kill")),
        ]
    )
    assert killed[0] == -signal.SIGKILL, killed[2][-2000:]
    assert os.listdir(tmp_path / "killed" / "checkpoints") == ["1"]
    (straight,) = results([straight])
    (resumed,) = results(
        finish([start(command(tmp_path / "killed", "resume"))])
    )
    assert resumed["losses"] == straight["losses"][4:]
    assert resumed["memory"] == straight["memory"]
    assert straight["memory"]["abs_sum"] > 0
    for a, b in zip(
        preset_weights(tmp_path / "straight"),
        preset_weights(tmp_path / "killed"),
    ):
        np.testing.assert_array_equal(a, b)


def test_two_processes_equal_one_process(tmp_path):
    """Two processes of 2 CPU devices each against one process of 4, data
    parallel: the same losses, carried memory and weights."""
    (one,) = results(
        finish(
            start_all(
                command(tmp_path / "one", "straight", "data_parallel", 4), 1
            ),
            deadline=DEADLINE,
        )
    )
    two = results(
        finish(
            start_all(
                command(tmp_path / "two", "straight", "data_parallel", 2),
                2,
            ),
            deadline=DEADLINE,
        )
    )
    for other in two:
        np.testing.assert_allclose(other["losses"], one["losses"], atol=1e-5)
        np.testing.assert_allclose(
            other["memory"]["abs_sum"], one["memory"]["abs_sum"], rtol=1e-5
        )
    for a, b in zip(
        preset_weights(tmp_path / "one"), preset_weights(tmp_path / "two")
    ):
        np.testing.assert_allclose(a, b, atol=1e-5)

"""Continued pretraining on the runner and through `tools/pretrain.py`: a
killed run resumes to the very same end, memory included; two JAX
processes train as one."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from child_processes import DEADLINE
from child_processes import finish
from child_processes import results
from child_processes import start
from child_processes import start_all
from conftest import REPO_ROOT

import keras_xlnet
from keras_xlnet.recipes import pretraining
from keras_xlnet.recipes import pretraining_demo

SCRIPT = os.path.join(os.path.dirname(__file__), "pretrain_run.py")

jax_only = pytest.mark.skipif(
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


@jax_only
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


@jax_only
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


def tool_flags(model_dir, preset, data_dir):
    return [
        sys.executable,
        str(REPO_ROOT / "tools" / "pretrain.py"),
        "--model-dir", str(model_dir),
        "--preset", str(preset),
        "--data-dir", str(data_dir),
        "--sequence-length", "32",
        "--reuse-length", "16",
        "--memory-length", "24",
        "--perm-size", "8",
        "--num-predict", "6",
        "--batch-size", "8",
        "--train-steps", "40",
        "--eval-every", "4",
        "--warmup-steps", "1",
        "--learning-rate", "1e-3",
        "--eval-batch-size", "4",
        "--dtype", "float32",
        "--distribution", "none",
    ]  # fmt: skip


@jax_only
def test_the_tool_killed_at_any_moment_resumes_to_the_same_end(tmp_path):
    """`tools/pretrain.py` SIGKILLed from outside once its first checkpoint
    is complete (wherever it is then), then `--resume`d: the trained
    preset and the evaluation equal an uninterrupted run's bit for bit
    (the weights after the resume depend on the restored memory)."""
    config = pretraining.PretrainConfig(
        sequence_length=32, reuse_length=16, perm_size=8, num_predict=6
    )
    documents = pretraining_demo.demo_documents()
    pretraining_demo.demo_language_model(config, documents).save_to_preset(
        str(tmp_path / "tiny")
    )
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "reviews.txt").write_text("\n\n".join(documents))
    flags = [tmp_path / "tiny", tmp_path / "texts"]
    straight = start(tool_flags(tmp_path / "straight", *flags))
    killed_dir = tmp_path / "killed"
    with open(tmp_path / "killed.log", "w") as log:
        killed = subprocess.Popen(
            tool_flags(killed_dir, *flags), stdout=log, stderr=log
        )
        end = time.monotonic() + DEADLINE
        while not (killed_dir / "checkpoints" / "1").is_dir():
            assert killed.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < end
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert not (killed_dir / "metrics.json").exists()  # Killed mid-run.
    resumed = start(tool_flags(killed_dir, *flags) + ["--resume"])
    for code, out, err in finish([straight, resumed]):
        assert code == 0, err[-2000:]
    metrics = [
        json.loads((folder / "metrics.json").read_text())
        for folder in (tmp_path / "straight", killed_dir)
    ]
    assert metrics[0]["eval_metrics"] == metrics[1]["eval_metrics"]
    for a, b in zip(
        preset_weights(tmp_path / "straight"), preset_weights(killed_dir)
    ):
        np.testing.assert_array_equal(a, b)
    # `--mode eval` takes the run's preset from its checkpoint.
    ((code, out, err),) = finish(
        [
            start(
                tool_flags(killed_dir, tmp_path / "absent", *flags[1:])
                + ["--mode", "eval"]
            )
        ]
    )
    assert code == 0, err[-2000:]
    again = json.loads((killed_dir / "eval" / "metrics.json").read_text())
    assert again["eval_metrics"] == metrics[1]["eval_metrics"]


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="tf.distribute runs on the TensorFlow backend",
)
def test_tensorflow_mirrored_strategy_refuses_bi_data_and_evaluates(
    tmp_path,
):
    """Two replicas split each batch: `bi_data` (and memory) are refused;
    without them a run trains and `--mode eval` reproduces its
    evaluation."""
    script = os.path.join(os.path.dirname(__file__), "pretrain_mirrored_run.py")
    (result,) = results(
        finish([start([sys.executable, script, str(tmp_path / "run")])])
    )
    assert "splits each batch over 2 replicas" in result["refused"]
    evaluated = result["evaluated"]
    assert evaluated["evaluated"] == "checkpoint 1"
    assert evaluated["eval_metrics"] == result["trained"]["eval_metrics"]

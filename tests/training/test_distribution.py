"""Distributed training gives the single-device losses (CPU devices)."""

import json
import os
import subprocess
import sys

import keras
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_run.py")


def run(mode, backend):
    env = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run(
        [sys.executable, SCRIPT, mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(
        line
        for line in result.stdout.splitlines()
        if line.startswith("RESULT ")
    )
    return json.loads(line.removeprefix("RESULT "))


def test_jax_data_and_model_parallel_on_8_devices():
    if keras.config.backend() != "jax":
        pytest.skip("keras.distribution runs on the JAX backend")
    single = run("single", "jax")
    data_parallel = run("data_parallel", "jax")
    model_parallel = run("model_parallel", "jax")
    assert data_parallel["devices"] == model_parallel["devices"] == 8
    for other in (data_parallel, model_parallel):
        assert other["losses"] == pytest.approx(single["losses"], abs=1e-5)
    assert single["losses"][-1] != pytest.approx(single["losses"][0], abs=1e-3)
    shardings = model_parallel["shardings"]
    assert shardings["encoder_block_0/attention/query/kernel"] == [
        "batch",
        "model",
        None,
    ]
    assert shardings["encoder_block_1/ffn_inner/kernel"] == ["batch", "model"]
    assert shardings["token_embedding/embeddings"] == ["model", "batch"]


def test_tensorflow_mirrored_strategy_on_2_cpus():
    if keras.config.backend() != "tensorflow":
        pytest.skip("tf.distribute runs on the TensorFlow backend")
    single = run("single", "tensorflow")
    mirrored = run("mirrored", "tensorflow")
    assert mirrored["replicas"] == 2
    assert mirrored["running_mean_losses"] == pytest.approx(
        single["running_mean_losses"], abs=1e-5
    )

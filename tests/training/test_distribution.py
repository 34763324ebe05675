"""Distributed training gives the single-device losses (CPU devices)."""

import os
import sys

import keras
import pytest
from child_processes import finish
from child_processes import results
from child_processes import start

SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_run.py")


def run(modes, backend):
    """The results of `modes`, each run in its own process, side by side."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    procs = [start([sys.executable, SCRIPT, mode], env) for mode in modes]
    return results(finish(procs))


def test_jax_data_and_model_parallel_on_8_devices():
    if keras.config.backend() != "jax":
        pytest.skip("keras.distribution runs on the JAX backend")
    single, data_parallel, model_parallel = run(
        ["single", "data_parallel", "model_parallel"], "jax"
    )
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
    single, mirrored = run(["single", "mirrored"], "tensorflow")
    assert mirrored["replicas"] == 2
    assert mirrored["running_mean_losses"] == pytest.approx(
        single["running_mean_losses"], abs=1e-5
    )

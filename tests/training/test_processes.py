"""The pieces of a multi-process run that one process can check."""

import json
import socket
import sys
import time
import types

import keras
import pytest
import tensorflow as tf

from keras_xlnet.training import distribution
from keras_xlnet.training import processes

sys.path.insert(0, str(__import__("conftest").REPO_ROOT / "tools"))

VARIABLES = {
    "KERAS_DISTRIBUTION_JOB_ADDRESSES": "127.0.0.1:1234",
    "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
    "KERAS_DISTRIBUTION_PROCESS_ID": "1",
}


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            {"KERAS_DISTRIBUTION_PROCESS_ID": ""},
            "KERAS_DISTRIBUTION_PROCESS_ID not set",
        ),
        (
            {"KERAS_DISTRIBUTION_NUM_PROCESSES": "two"},
            "must be a non-negative integer; received 'two'",
        ),
        ({"KERAS_DISTRIBUTION_PROCESS_ID": "2"}, "outside 0..1"),
        (
            {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1,b:2,c:3"},
            "lists 3 addresses for 2 processes",
        ),
    ],
)
def test_bad_process_variables_are_named(monkeypatch, changes, expected):
    for name, value in {**VARIABLES, **changes}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(processes.ProcessError, match=expected):
        processes._environment()


def test_the_variables_give_the_coordinator_count_and_index(monkeypatch):
    for name, value in VARIABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.2:8476,10.0.0.3:8476"
    )
    assert processes._environment() == ("10.0.0.2:8476", 2, 1)


def tf_config(cluster, task_type, index):
    return json.dumps(
        {"cluster": cluster, "task": {"type": task_type, "index": index}}
    )


WORKERS = {"worker": ["127.0.0.1:1000", "127.0.0.1:1001"]}
WITH_CHIEF = {"chief": ["127.0.0.1:999"], **WORKERS}


@pytest.mark.parametrize(
    "config, expected",
    [
        ("{not json", "must be JSON"),
        (json.dumps({"cluster": WORKERS}), "must be JSON.*'task'"),
        (tf_config(WORKERS, "worker", 2), r"task \('worker', 2\) is not"),
        (tf_config(WORKERS, "ps", 0), r"task \('ps', 0\) is not"),
    ],
)
def test_a_bad_tf_config_is_named(monkeypatch, config, expected):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(processes.ProcessError, match=expected):
        processes.tf_cluster()


@pytest.mark.parametrize(
    "cluster, task, chief",
    [
        (WORKERS, ("worker", 0), True),
        (WORKERS, ("worker", 1), False),
        (WITH_CHIEF, ("chief", 0), True),
        (WITH_CHIEF, ("worker", 0), False),
    ],
)
def test_the_tf_coordinator_is_the_chief_else_worker_0(
    monkeypatch, cluster, task, chief
):
    monkeypatch.setenv("TF_CONFIG", tf_config(cluster, *task))
    tasks, this = processes.tf_cluster()
    assert this == task
    assert (next(iter(tasks)) == task) == chief
    assert tasks[("worker", 1)] == "127.0.0.1:1001"
    if keras.config.backend() == "tensorflow":
        assert processes.requested()
        assert processes.is_chief() == chief


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow", reason="TF_CONFIG is TensorFlow's"
)
def test_one_tf_task_is_not_a_multi_process_run(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config({"worker": ["a:1"]}, "worker", 0))
    assert not processes.requested()
    assert processes.is_chief()
    monkeypatch.delenv("TF_CONFIG")
    assert not processes.requested()


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow", reason="tf.distribute"
)
def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(distribution.DistributionError, match="TF_CONFIG"):
        distribution.configure("multi_worker")


@pytest.mark.parametrize("name", ["none", "mirrored"])
def test_a_one_process_distribution_is_refused_for_several(monkeypatch, name):
    backend = keras.config.backend()
    if backend == "torch":
        pytest.skip("several processes run on JAX or TensorFlow")
    if backend == "jax":
        for variable, value in VARIABLES.items():
            monkeypatch.setenv(variable, value)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config(WORKERS, "worker", 1))
    with pytest.raises(
        distribution.DistributionError, match=f"{name} would train each"
    ):
        distribution.configure(name)


def test_an_unreachable_coordinator_fails_after_the_timeout():
    with socket.socket() as probe:  # A port nobody listens on.
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    began = time.monotonic()
    with pytest.raises(
        processes.ProcessError, match=f"at {address} within 1 s"
    ):
        processes.wait_for_coordinator(address, 1, timeout=1)
    assert 1 <= time.monotonic() - began < 10


def test_a_listening_coordinator_is_reached():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        processes.wait_for_coordinator(address, 1, timeout=1)


def fake_distribution(monkeypatch, count, replicas, shard):
    monkeypatch.setattr(
        keras.distribution,
        "distribution",
        lambda: types.SimpleNamespace(
            num_processes=count,
            num_model_replicas=replicas,
            data_shard_id=shard,
        ),
    )


def batches(dataset):
    return [batch.numpy().tolist() for batch in dataset]


def test_each_process_keeps_its_rows_of_every_global_batch(monkeypatch):
    dataset = tf.data.Dataset.range(16).batch(8)
    # Two processes, four data-parallel replicas: process 1 keeps rows 4-7.
    fake_distribution(monkeypatch, count=2, replicas=4, shard=1)
    assert batches(processes.process_batches(dataset, 8)) == [
        [4, 5, 6, 7],
        [12, 13, 14, 15],
    ]
    # Four processes, two replicas (each spans two processes): the data
    # shard of processes 2 and 3 is the second half.
    fake_distribution(monkeypatch, count=4, replicas=2, shard=1)
    assert batches(processes.process_batches(dataset, 8)) == [
        [4, 5, 6, 7],
        [12, 13, 14, 15],
    ]
    # One replica over every process (model parallel): all rows.
    fake_distribution(monkeypatch, count=2, replicas=1, shard=0)
    assert batches(processes.process_batches(dataset, 8)) == batches(dataset)


def test_a_batch_that_does_not_split_is_refused(monkeypatch):
    fake_distribution(monkeypatch, count=2, replicas=2, shard=0)
    dataset = tf.data.Dataset.range(14).batch(7)
    with pytest.raises(processes.ProcessError, match="7 examples"):
        processes.process_batches(dataset, 7)


def test_one_process_feeds_everything():
    dataset = tf.data.Dataset.range(8).batch(4)
    assert processes.process_batches(dataset, 4) is dataset


BACKEND = keras.config.backend()
# What a description of JAX processes gets on the other backends.
NOT_JAX = {
    "tensorflow": "describe the processes of a JAX run; on tensorflow "
    "describe them with TF_CONFIG",
    "torch": "need the JAX or TensorFlow backend",
}
NOT_TF = {
    "jax": "describes the workers of a TensorFlow run; on jax describe them "
    "with KERAS_DISTRIBUTION_*",
    "torch": "need the JAX or TensorFlow backend",
}


def jax_variables(**changes):
    return {
        **VARIABLES,
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": "127.0.0.1:1234",
        **changes,
    }


@pytest.mark.parametrize(
    "environment, on_jax",
    [
        (
            {"KERAS_DISTRIBUTION_NUM_PROCESSES": "2"},
            "KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_PROCESS_ID "
            "not set",
        ),
        (
            jax_variables(KERAS_DISTRIBUTION_JOB_ADDRESSES="127.0.0.1"),
            "holds '127.0.0.1'; expected host:port",
        ),
        (
            jax_variables(KERAS_DISTRIBUTION_JOB_ADDRESSES="127.0.0.1:99999"),
            "holds '127.0.0.1:99999'; expected host:port with a port from 1",
        ),
        (
            jax_variables(KERAS_DISTRIBUTION_PROCESS_ID="one"),
            "KERAS_DISTRIBUTION_PROCESS_ID must be a non-negative integer; "
            "received 'one'",
        ),
    ],
    ids=["partial", "no port", "port out of range", "id not an integer"],
)
def test_bad_process_variables_end_in_one_error_line(
    environment, on_jax, tmp_path, monkeypatch, capsys
):
    expected = on_jax if BACKEND == "jax" else NOT_JAX[BACKEND]
    assert_one_error_line(environment, expected, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize(
    "config, on_tensorflow",
    [
        ("{not json", "TF_CONFIG must be JSON"),
        ("[1, 2]", "TF_CONFIG must be JSON"),
        (
            tf_config({"worker": ["127.0.0.1", "127.0.0.1:1"]}, "worker", 1),
            "TF_CONFIG's worker 0 holds '127.0.0.1'; expected host:port",
        ),
        (
            tf_config(["127.0.0.1:1", "127.0.0.1:2"], "worker", 1),
            "TF_CONFIG must be JSON",
        ),
    ],
    ids=["malformed", "a list", "no port", "cluster a list"],
)
def test_a_bad_tf_config_ends_in_one_error_line(
    config, on_tensorflow, tmp_path, monkeypatch, capsys
):
    # TF_CONFIG is read, and checked, on every backend.
    assert_one_error_line(
        {"TF_CONFIG": config}, on_tensorflow, tmp_path, monkeypatch, capsys
    )


def test_a_tf_cluster_on_another_backend_is_named(
    tmp_path, monkeypatch, capsys
):
    if BACKEND == "tensorflow":
        pytest.skip("TF_CONFIG is TensorFlow's own")
    config = tf_config(WORKERS, "worker", 1)
    assert_one_error_line(
        {"TF_CONFIG": config}, NOT_TF[BACKEND], tmp_path, monkeypatch, capsys
    )


def assert_one_error_line(environment, expected, tmp_path, monkeypatch, capsys):
    """The tool, run with `environment`, stops at once with one `error:`
    line holding `expected`, having written nothing."""
    import finetune_imdb

    for name in [*VARIABLES, "TF_CONFIG"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code = finetune_imdb.main(
        [
            "--demo",
            "--model-dir",
            str(tmp_path / "run"),
            "--connect-timeout",
            "5",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: "), err
    assert expected in err, err
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()

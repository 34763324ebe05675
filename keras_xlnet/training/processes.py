"""Runs of several processes (hosts): joining them, the chief, data shards.

Every process runs the same command. On JAX, the processes are described by
`KERAS_DISTRIBUTION_JOB_ADDRESSES` (the coordinator, process 0, first),
`KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID`, as
for `keras.distribution.initialize`; `keras.distribution` then spans all
processes' devices. On TensorFlow, `TF_CONFIG` describes the workers of a
`MultiWorkerMirroredStrategy` (`join_workers`). Each process reads the
whole (identically shuffled) data stream and keeps its own slice of every
global batch (`process_batches`), so a run of several processes trains on
the batches of a one-process run. Only the chief (JAX process 0; the
TensorFlow `chief`, or worker 0 without one) writes files.
"""

import contextlib
import json
import os
import socket
import time

import keras

CONNECT_TIMEOUT = 300
ENVIRONMENT = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


class ProcessError(RuntimeError):
    """The processes of a multi-process run cannot form the run."""


def requested():
    """Whether the environment describes a run of several processes: any
    `KERAS_DISTRIBUTION_*` variable (JAX), or a `TF_CONFIG` listing two or
    more tasks (TensorFlow). A description that is incomplete, malformed
    or for another backend is a `ProcessError` naming it."""
    backend = keras.config.backend()
    variables = [name for name in ENVIRONMENT if os.environ.get(name)]
    cluster = tf_cluster()
    if variables:
        if backend != "jax":
            raise ProcessError(
                f"{', '.join(variables)} describe the processes of a JAX run; "
                + _other_backend(backend)
            )
        _environment()
        return True
    if cluster is not None and len(cluster[0]) > 1:
        if backend != "tensorflow":
            raise ProcessError(
                "TF_CONFIG describes the workers of a TensorFlow run; "
                + _other_backend(backend)
            )
        return True
    return False


def _other_backend(backend):
    if backend == "torch":
        return (
            "runs of several processes need the JAX or TensorFlow backend "
            "(KERAS_BACKEND=jax with KERAS_DISTRIBUTION_*, or tensorflow "
            "with TF_CONFIG); unset it to train in one process on torch."
        )
    own = "TF_CONFIG" if backend == "tensorflow" else "KERAS_DISTRIBUTION_*"
    return f"on {backend} describe them with {own}, or unset it."


def tf_cluster():
    """`(tasks, this task)` from `TF_CONFIG`, tasks as `(type, index)`
    with their addresses, the coordinator (the `chief`, else worker 0)
    first; None without `TF_CONFIG`."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        cluster = config["cluster"]
        task = (config["task"]["type"], int(config["task"]["index"]))
        tasks = {
            (kind, index): address
            for kind in ("chief", "worker")
            for index, address in enumerate(cluster.get(kind, []))
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ProcessError(
            "TF_CONFIG must be JSON with 'cluster' (an object of task type: "
            "list of host:port) and 'task' ('type' and 'index'); reading it "
            f"failed with {error!r}."
        ) from None
    for (kind, index), address in tasks.items():
        _check_address(address, f"TF_CONFIG's {kind} {index}")
    if task not in tasks:
        raise ProcessError(
            f"TF_CONFIG's task {task} is not one of its cluster's chief "
            "or worker tasks."
        )
    return tasks, task


def join_workers(connect_timeout=CONNECT_TIMEOUT):
    """The `MultiWorkerMirroredStrategy` of the workers in `TF_CONFIG`.

    Call before anything else runs TensorFlow operations. A worker that
    cannot reach the coordinator within `connect_timeout` seconds raises
    `ProcessError`.
    """
    import tensorflow as tf

    tasks, task = tf_cluster()
    coordinator = next(iter(tasks))
    if task != coordinator:
        name = f"{task[0]} {task[1]}"
        wait_for_coordinator(tasks[coordinator], name, connect_timeout)
    return tf.distribute.MultiWorkerMirroredStrategy()


def _environment():
    """`(coordinator address, process count, process index)`."""
    missing = [name for name in ENVIRONMENT if not os.environ.get(name)]
    if missing:
        raise ProcessError(
            f"A multi-process run needs {', '.join(ENVIRONMENT)}; "
            f"{', '.join(missing)} not set."
        )
    addresses = os.environ[ENVIRONMENT[0]].split(",")
    values = {name: os.environ[name] for name in ENVIRONMENT[1:]}
    for name, value in values.items():
        if not value.strip().isdigit():
            raise ProcessError(
                f"{name} must be a non-negative integer; received {value!r}."
            )
    count, index = (int(value) for value in values.values())
    if not 0 <= index < count:
        raise ProcessError(
            f"{ENVIRONMENT[2]}={index} is outside 0..{count - 1} "
            f"({ENVIRONMENT[1]}={count})."
        )
    if len(addresses) not in (1, count):
        raise ProcessError(
            f"{ENVIRONMENT[0]} lists {len(addresses)} addresses for "
            f"{count} processes (give the coordinator's, or one each)."
        )
    for address in addresses:
        _check_address(address, ENVIRONMENT[0])
    return addresses[0], count, index


def _check_address(address, where):
    """`ProcessError` unless `address` is `host:port`, port 1-65535."""
    host, _, port = str(address).strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ProcessError(
            f"{where} holds {address!r}; expected host:port with a port "
            "from 1 to 65535."
        )


def wait_for_coordinator(address, process, timeout):
    """Returns once `address` accepts connections; `ProcessError` naming
    `process` (an index or a TensorFlow task) after `timeout` seconds."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise ProcessError(
                    f"Process {process} cannot reach the coordinator at "
                    f"{address} within {timeout} s ({error}). Start the "
                    "coordinator with the same KERAS_DISTRIBUTION_* "
                    "variables (TF_CONFIG) and check that its address and "
                    "port are reachable."
                ) from None
            time.sleep(0.5)


def initialize(connect_timeout=CONNECT_TIMEOUT):
    """Joins the multi-process JAX run the environment describes.

    Call before anything else touches JAX. A process other than the
    coordinator that cannot reach it within `connect_timeout` seconds
    raises `ProcessError`; JAX ends a run whose processes do not all
    register within that time.
    """
    import jax

    if jax.distributed.is_initialized():
        return
    coordinator, count, index = _environment()
    if index:
        wait_for_coordinator(coordinator, index, connect_timeout)
    # CPU hosts (and the local rehearsal) exchange values over Gloo.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator,
        num_processes=count,
        process_id=index,
        initialization_timeout=connect_timeout,
    )


def is_chief():
    """Whether this process writes the run's files (process 0, or the
    chief / worker 0 of a TensorFlow multi-worker strategy)."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        return jax.process_index() == 0
    if backend == "tensorflow" and requested():
        tasks, task = tf_cluster()
        return task == next(iter(tasks))
    return True


def barrier(name, timeout=CONNECT_TIMEOUT):
    """Waits until every process of a multi-process run gets here (on
    TensorFlow, within `timeout` seconds)."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(name)
    elif backend == "tensorflow" and requested():
        from tensorflow.python.eager import context

        context.context().wait_at_barrier(name, timeout * 1000)


def process_batches(dataset, batch_size):
    """This process's slice of each batch of `batch_size` examples.

    With `keras.distribution` over several processes, each process feeds
    the rows of the global batch that its devices hold: the process of
    data shard `i` of `n` keeps rows `[i * batch_size / n, (i + 1) *
    batch_size / n)`. One process (or none distributed) keeps everything.
    TensorFlow's multi-worker strategy splits each batch over the replicas
    of all workers itself; it is told to split examples (not files).
    """
    if keras.config.backend() == "tensorflow" and requested():
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return dataset.with_options(options)
    distribution = keras.distribution.distribution()
    if distribution is None or distribution.num_processes == 1:
        return dataset
    shards = min(distribution.num_model_replicas, distribution.num_processes)
    if shards == 1:
        return dataset
    if batch_size % shards:
        raise ProcessError(
            f"A batch of {batch_size} examples does not split into {shards} "
            "equal process shards; choose a batch size divisible by it."
        )
    return dataset.rebatch(batch_size // shards).shard(
        shards, distribution.data_shard_id
    )


@contextlib.contextmanager
def readable_variables(model):
    """Lets this process read every variable of `model` (and its optimizer).

    A layout that shards a variable over several processes' devices leaves
    each process only its part, and saving (which reads whole values)
    fails. Within this context such variables hold a copy replicated on
    every device; the sharded values come back at the end. Replicating is
    a collective: every process enters with the same model.
    """
    sharded = [
        variable
        for variable in model_variables(model)
        if keras.config.backend() == "jax"
        and not variable.value.is_fully_addressable
        and not variable.value.is_fully_replicated
    ]
    if not sharded:
        yield
        return
    import jax

    originals = [variable.value for variable in sharded]
    everywhere = [
        jax.sharding.NamedSharding(
            value.sharding.mesh, jax.sharding.PartitionSpec()
        )
        for value in originals
    ]
    copies = jax.jit(lambda values: values, out_shardings=everywhere)(originals)
    for variable, copy in zip(sharded, copies):
        variable._value = copy
    try:
        yield
    finally:
        for variable, value in zip(sharded, originals):
            variable._value = value


def model_variables(model):
    """The model's variables, then its optimizer's, in a fixed order."""
    optimizer = getattr(model, "optimizer", None)
    extra = optimizer.variables if optimizer is not None else []
    return [*model.variables, *extra]


def agree(what, value):
    """`value` (an integer), after checking that every process of a
    multi-process run holds the same; else `ProcessError` naming each
    process's value of `what`."""
    values = _gather(int(value))
    if len(set(values)) > 1:
        found = ", ".join(f"process {i}: {v}" for i, v in enumerate(values))
        raise ProcessError(
            f"The processes disagree on {what} ({found}). Every process "
            "must see the same --model-dir: use shared storage (gs://...)."
        )
    return value


def _gather(value):
    """`value` of every process, in process order."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        if jax.process_count() > 1:
            import numpy as np
            from jax.experimental import multihost_utils

            gathered = multihost_utils.process_allgather(np.int64(value))
            return [int(v) for v in np.ravel(gathered)]
    elif backend == "tensorflow" and requested():
        from tensorflow.python.eager import context

        tasks, task = tf_cluster()
        names = [f"{kind}{index}" for kind, index in tasks]
        _gather.calls = getattr(_gather, "calls", 0) + 1
        key = f"keras_xlnet/agree/{_gather.calls}/{{}}"
        ctx = context.context()
        ctx.set_config_key_value(key.format(f"{task[0]}{task[1]}"), str(value))
        return [int(ctx.get_config_key_value(key.format(n))) for n in names]
    return [value]

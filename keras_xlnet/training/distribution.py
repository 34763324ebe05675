"""Distribution of the fine-tuning run over the backend's devices."""

import contextlib

import keras

from keras_xlnet.training import processes
from keras_xlnet.training import tf_distributed_fit


class DistributionError(ValueError):
    """A distribution that this backend or machine cannot run."""


def configure(
    name="auto",
    tpu=None,
    model_axis_size=None,
    connect_timeout=processes.CONNECT_TIMEOUT,
):
    """Sets up `name` and returns the scope to build and train the model in.

    JAX uses `keras.distribution` (`data_parallel`; `model_parallel` with
    `XLNetBackbone.get_layout_map` on a `(batch, model)` mesh), TensorFlow
    uses `tf.distribute` (`mirrored`, `multi_worker` for
    `MultiWorkerMirroredStrategy`, `tpu` with `tpu=` a TPU name or
    address). `auto` picks data parallelism (JAX) or mirroring (TF) when
    more than one accelerator is visible or several processes run, else
    one device. On several JAX hosts, set
    `KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`
    and `KERAS_DISTRIBUTION_PROCESS_ID`; on several TensorFlow workers,
    `TF_CONFIG` (see `processes`; a process that cannot reach the
    coordinator within `connect_timeout` seconds fails).
    `processes.process_batches` gives each process its slice of the
    global batches.
    """
    backend = keras.config.backend()
    several = processes.requested()
    if several and name in ("none", "mirrored"):
        raise DistributionError(
            f"--distribution {name} would train each process alone, but "
            "the environment (KERAS_DISTRIBUTION_* or TF_CONFIG) describes "
            "several processes: use 'auto'."
        )
    if several and backend == "jax":
        processes.initialize(connect_timeout)
    if name == "auto":
        if not several and (accelerator_count() < 2 or backend == "torch"):
            return contextlib.nullcontext()
        name = {
            "jax": "data_parallel",
            "tensorflow": "multi_worker" if several else "mirrored",
        }[backend]
    if name == "none":
        return contextlib.nullcontext()
    if name in ("data_parallel", "model_parallel"):
        if backend != "jax":
            raise DistributionError(
                f"--distribution {name} uses keras.distribution (JAX); on "
                f"{backend} use 'mirrored', 'multi_worker' or 'tpu'."
            )
        if name == "data_parallel":
            keras.distribution.set_distribution(
                keras.distribution.DataParallel(auto_shard_dataset=False)
            )
        else:
            from keras_xlnet.models.xlnet_backbone import XLNetBackbone

            devices = keras.distribution.list_devices()
            model = model_axis_size or min(len(devices), 8)
            mesh = keras.distribution.DeviceMesh(
                (len(devices) // model, model), ["batch", "model"], devices
            )
            keras.distribution.set_distribution(
                keras.distribution.ModelParallel(
                    layout_map=XLNetBackbone.get_layout_map(mesh),
                    batch_dim_name="batch",
                    auto_shard_dataset=False,
                )
            )
        return contextlib.nullcontext()
    if backend != "tensorflow":
        raise DistributionError(
            f"--distribution {name} uses tf.distribute: run with "
            "KERAS_BACKEND=tensorflow."
        )
    import tensorflow as tf

    if name == "mirrored":
        # GPUs, else the CPU (or its logical devices, if configured).
        devices = tf.config.list_logical_devices("GPU") or (
            tf.config.list_logical_devices("CPU")
        )
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
    elif name == "multi_worker":
        if not several:
            raise DistributionError(
                "--distribution multi_worker needs TF_CONFIG listing the "
                "run's workers (two or more)."
            )
        strategy = processes.join_workers(connect_timeout)
    if name in ("mirrored", "multi_worker"):
        return tf_distributed_fit.scope(strategy)
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver).scope()
    raise DistributionError(f"Unknown distribution {name!r}.")


def accelerator_count():
    """GPUs or TPU cores the current backend sees (0 on a CPU machine)."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        return sum(d.platform != "cpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU")) + len(
        tf.config.list_logical_devices("TPU")
    )

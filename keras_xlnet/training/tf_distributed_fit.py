"""Keras 3 `fit` under TensorFlow strategies of several replicas.

Keras 3 (up to at least 3.15) fails in two places under
`MirroredStrategy` and `MultiWorkerMirroredStrategy` (upstream:
keras-team/keras#20585, tensorflow/tensorflow#72388); `fixed_keras()`
corrects them while a run lasts:

1. Before the first step, `fit` builds the model's state from one batch,
   which it gets by averaging the replicas' parts with `strategy.reduce`.
   That fails on boolean inputs (the padding mask) and, across workers, on
   any structure of per-replica values. Any one replica's part has the
   right shapes: the first local one is used instead.
2. Across workers, the logs of each step (the loss, the metrics) are
   averaged with `strategy.reduce("MEAN", value, axis=0)`, which fails on
   scalars. They are averaged over the replicas instead (`axis=None`).

Both corrections replace private Keras functions. They were written and
tested for the Keras versions in `TESTED_KERAS`; on entry the functions'
signatures are checked, and another Keras version or signature stops the
run with `KerasVersionError` (rather than a `TypeError` in the middle of
`fit`, or an upstream fix silently overridden).
"""

import contextlib
import inspect

import keras
from keras.src import tree
from keras.src.backend.tensorflow import trainer

TESTED_KERAS = ("3.15",)
# The parameters of the functions replaced, as in `TESTED_KERAS`.
REPLACED = {
    "TensorFlowTrainer._maybe_symbolic_build": (
        lambda: trainer.TensorFlowTrainer._maybe_symbolic_build,
        ["self", "iterator", "data_batch"],
    ),
    "reduce_per_replica": (
        lambda: trainer.reduce_per_replica,
        ["values", "strategy", "reduction"],
    ),
}


class KerasVersionError(RuntimeError):
    """A Keras whose `fit` under TensorFlow strategies we cannot vouch for."""


def check_keras(version=None):
    """Raises `KerasVersionError` unless Keras is of `TESTED_KERAS` with
    the replaced functions' signatures."""
    version = version or keras.__version__
    problem = None
    if not version.startswith(tuple(v + "." for v in TESTED_KERAS)):
        problem = f"Keras {version} is not one of {TESTED_KERAS}"
    else:
        for name, (function, parameters) in REPLACED.items():
            found = list(inspect.signature(function()).parameters)
            if found != parameters:
                problem = (
                    f"keras.src.backend.tensorflow.trainer.{name} takes "
                    f"{found}, not {parameters}"
                )
                break
    if problem:
        raise KerasVersionError(
            f"Training under tf.distribute mirrored strategies needs a "
            f"correction of Keras' fit (keras-team/keras#20585), written for "
            f"Keras {', '.join(TESTED_KERAS)}; {problem}. Install keras "
            f"{TESTED_KERAS[-1]}.*, or check whether #20585 is fixed in "
            "your Keras and remove the correction."
        )


@contextlib.contextmanager
def scope(strategy):
    """`strategy.scope()`, with Keras corrected for it."""
    with strategy.scope(), fixed_keras():
        yield


@contextlib.contextmanager
def fixed_keras():
    """Lets Keras `fit`, `evaluate` and `predict` run on several replicas
    and workers."""
    check_keras()
    build, reduce = (
        trainer.TensorFlowTrainer._maybe_symbolic_build,
        trainer.reduce_per_replica,
    )

    def build_from_one_replica(model, iterator=None, data_batch=None):
        if iterator is not None and data_batch is None:
            strategy = model.distribute_strategy
            for _, _, distributed in iterator:
                data_batch = tree.map_structure(
                    lambda x: strategy.experimental_local_results(x)[0],
                    next(distributed),
                )
                break
        return build(model, data_batch=data_batch)

    def mean_over_replicas(values, strategy, reduction):
        if reduction in ("auto", "mean") and _several_workers(strategy):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values
            )
        return reduce(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = build_from_one_replica
    trainer.reduce_per_replica = mean_over_replicas
    try:
        yield
    finally:
        trainer.TensorFlowTrainer._maybe_symbolic_build = build
        trainer.reduce_per_replica = reduce


def _several_workers(strategy):
    import tensorflow as tf

    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )

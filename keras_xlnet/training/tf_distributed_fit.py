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
"""

import contextlib

from keras.src import tree
from keras.src.backend.tensorflow import trainer


@contextlib.contextmanager
def scope(strategy):
    """`strategy.scope()`, with Keras corrected for it."""
    with strategy.scope(), fixed_keras():
        yield


@contextlib.contextmanager
def fixed_keras():
    """Lets Keras `fit`, `evaluate` and `predict` run on several replicas
    and workers."""
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

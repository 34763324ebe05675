"""Measuring the activation memory a training step keeps (JAX backend)."""

import numpy as np


def saved_activation_bytes(model, inputs):
    """Bytes of the residuals `jax.vjp` keeps for the backward pass.

    That is the activation memory of a training step of `model` on
    `inputs`, whatever XLA's scheduler does with it; weights (the function's
    arguments) are not counted. Needs the JAX backend.
    """
    from jax._src.ad_checkpoint import saved_residuals

    non_trainable = [v.value for v in model.non_trainable_variables]

    def output_sum(trainable):
        outputs, _ = model.stateless_call(
            trainable, non_trainable, inputs, training=True
        )
        return outputs.astype("float32").sum()

    residuals = saved_residuals(
        output_sum, [v.value for v in model.trainable_variables]
    )
    return sum(
        int(np.prod(aval.shape)) * aval.dtype.itemsize
        for aval, source in residuals
        if "argument" not in source
    )

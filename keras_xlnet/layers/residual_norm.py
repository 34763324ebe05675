"""Precision of XLNet's residual stream under mixed precision."""

import keras


def residual_stream_dtype(dtype_policy):
    """The dtype policy of layers that produce the residual stream.

    Under a mixed policy (16-bit compute, float32 variables) the token
    embedding and the post-LN normalisations run and output in float32, so
    that the residual stream keeps float32 precision; the projections and
    the FFN still compute in the 16-bit dtype. Other policies are returned
    unchanged.
    """
    policy = keras.dtype_policies.get(dtype_policy)
    if policy.compute_dtype != policy.variable_dtype:
        return keras.dtype_policies.get(policy.variable_dtype)
    return policy


def residual_layer_norm(epsilon, dtype_policy, name):
    """The `LayerNormalization` of `LayerNorm(x + sublayer(x))`."""
    return keras.layers.LayerNormalization(
        epsilon=epsilon, dtype=residual_stream_dtype(dtype_policy), name=name
    )

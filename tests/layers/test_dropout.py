"""XLNetDropout: Keras's dropout semantics, a cheaper JAX mask."""

import keras
import numpy as np
import pytest
from conftest import jax_only

from keras_xlnet.layers.dropout import XLNetDropout
from keras_xlnet.layers.dropout import draw_seeds
from keras_xlnet.layers.dropout import replay_seeds


def lowbias32(x):
    """Reference: the finaliser written with Python integers."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_hash_matches_the_reference_finaliser():
    jax_only()
    import jax.numpy as jnp

    from keras_xlnet.layers.dropout import _mix

    values = [0, 1, 2, 12345, 0x9E3779B9, 0xFFFFFFFF]
    hashed = np.asarray(_mix(jnp.asarray(values, jnp.uint32)))
    assert hashed.tolist() == [lowbias32(v) for v in values]
    assert lowbias32(1) != 1  # the reference is not the identity


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_keep_rate_and_scaling(rate):
    keras.utils.set_random_seed(0)
    layer = XLNetDropout(rate)
    x = np.ones((64, 128, 64), "float32")  # 524288 elements
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    kept = y != 0
    # Binomial standard deviation is below 7e-4 here: 5 sigma.
    assert abs(kept.mean() - (1 - rate)) < 3.5e-3
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_successive_calls_draw_independent_masks():
    keras.utils.set_random_seed(0)
    layer = XLNetDropout(0.5)
    x = np.ones((256, 1024), "float32")
    first = keras.ops.convert_to_numpy(layer(x, training=True)) != 0
    second = keras.ops.convert_to_numpy(layer(x, training=True)) != 0
    assert abs(np.corrcoef(first.ravel(), second.ravel())[0, 1]) < 0.01
    # Neighbouring elements are uncorrelated too.
    assert (
        abs(np.corrcoef(first[:, 1:].ravel(), first[:, :-1].ravel())[0, 1])
        < 0.01
    )


def test_replayed_seeds_give_the_same_masks():
    keras.utils.set_random_seed(0)
    layer = XLNetDropout(0.5)
    x = np.ones((8, 32), "float32")
    seeds = draw_seeds([layer], calls=2)
    if not seeds:
        pytest.skip("PyTorch replays its global RNG instead")
    with replay_seeds(seeds):
        first = [
            keras.ops.convert_to_numpy(layer(x, training=True)) for _ in "ab"
        ]
    with replay_seeds(seeds):
        again = [
            keras.ops.convert_to_numpy(layer(x, training=True)) for _ in "ab"
        ]
    np.testing.assert_array_equal(first, again)
    assert (first[0] != first[1]).any()


def test_bfloat16_stays_bfloat16():
    layer = XLNetDropout(0.1, dtype="mixed_bfloat16")
    x = keras.ops.ones((4, 8), "bfloat16")
    assert (
        keras.backend.standardize_dtype(layer(x, training=True).dtype)
        == "bfloat16"
    )

"""Dropout with a cheap random stream on JAX and replayable seeds."""

import contextlib
import math

import keras

_GOLDEN_RATIO = 0x9E3779B9


def _mix(x):
    """A bijective hash of `uint32` JAX arrays (the "lowbias32" finaliser)."""
    import jax.numpy as jnp

    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def hashed_keep_mask(shape, rate, seed):
    """A JAX boolean mask, `True` with probability `1 - rate`.

    Each element's 32 random bits hash its flat index with a key derived
    from the two `uint32` words of `seed`. That is a few integer operations
    per element, where JAX's threefry needs a hundred: on a CPU the mask of
    an attention-probability tensor costs a sixth of what
    `jax.random.bernoulli` costs. The keep probability is exact to 2^-32.
    """
    import jax
    import jax.numpy as jnp

    size = math.prod(shape)
    if size >= 2**32:
        raise ValueError(
            f"Dropout on {size} elements: the hashed mask indexes elements "
            "with 32 bits; split the tensor."
        )
    seed = jnp.asarray(seed, jnp.uint32)
    key = _mix(seed[0] ^ _mix(seed[1] + jnp.uint32(_GOLDEN_RATIO)))
    second_key = _mix(key + jnp.uint32(_GOLDEN_RATIO))
    index = jax.lax.iota(jnp.uint32, size).reshape(shape)
    bits = _mix(_mix(index + key) ^ second_key)
    threshold = min(round(rate * 2**32), 2**32 - 1)
    return bits >= jnp.uint32(threshold)


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` with a faster mask on JAX and replayable seeds.

    Same arguments and scaling as `keras.layers.Dropout`. On JAX the mask
    comes from `hashed_keep_mask`; on TensorFlow from the stateless dropout
    Keras uses; on PyTorch from Keras's dropout (the global torch RNG).
    Every call takes the next seed of the layer's seed generator, or one
    queued by `replay_seeds` (so a rematerialised block recomputes the very
    same masks).

    Example:
    >>> layer = XLNetDropout(0.5)
    >>> x = np.ones((2, 4), "float32")
    >>> y = ops.convert_to_numpy(layer(x, training=True))
    >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    """

    def __init__(self, rate, **kwargs):
        super().__init__(rate, **kwargs)
        self._queued_seeds = None

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        backend = keras.config.backend()
        if backend == "jax" and self.noise_shape is None:
            import jax

            keep = hashed_keep_mask(inputs.shape, self.rate, self._next_seed())
            scaled = inputs / (1.0 - self.rate)
            return jax.lax.select(keep, scaled, keras.ops.zeros_like(scaled))
        if backend == "tensorflow" and self.noise_shape is None:
            import tensorflow as tf

            seed = tf.cast(self._next_seed() % (2**31 - 1), "int32")
            return tf.nn.experimental.stateless_dropout(
                inputs, rate=self.rate, seed=seed
            )
        # PyTorch: its checkpointing replays the global RNG by itself.
        return super().call(inputs, training=training)

    def _next_seed(self):
        if self._queued_seeds:
            return self._queued_seeds.pop(0)
        return self.seed_generator.next()


def draw_seeds(dropouts, calls):
    """Draws now the seeds of the next `calls` calls of each dropout layer.

    Returns a dict for `replay_seeds`. Empty on PyTorch, whose dropout
    draws from the global torch RNG that `torch.utils.checkpoint` replays.
    """
    if keras.config.backend() == "torch":
        return {}
    return {
        layer: [layer.seed_generator.next() for _ in range(calls)]
        for layer in dropouts
        if layer.rate > 0
    }


@contextlib.contextmanager
def replay_seeds(seeds):
    """Within the block, the layers of `seeds` use those seeds in order."""
    for layer, layer_seeds in seeds.items():
        layer._queued_seeds = list(layer_seeds)
    try:
        yield
    finally:
        for layer in seeds:
            layer._queued_seeds = None

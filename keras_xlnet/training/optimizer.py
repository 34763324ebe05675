"""Adam as XLNet's fine-tuning recipe uses it."""

import keras
from keras import ops


def clip_by_global_norm(gradients, clip_norm):
    """Scales `gradients` so that their joint L2 norm is at most `clip_norm`."""
    squares = [ops.sum(ops.square(g)) for g in gradients if g is not None]
    norm = ops.sqrt(ops.sum(ops.stack(squares)))
    scale = clip_norm / ops.maximum(norm, clip_norm)
    return [
        None if g is None else g * ops.cast(scale, g.dtype) for g in gradients
    ]


def _dense(gradient):
    """A dense gradient (TensorFlow's `IndexedSlices` densified)."""
    if type(gradient).__name__ == "IndexedSlices":
        import tensorflow as tf

        return tf.convert_to_tensor(gradient)
    return gradient


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetAdam(keras.optimizers.Adam):
    """Adam with the recipe's clipping, accumulation and schedule semantics.

    XLNet's IMDB recipe trains on 8 TPU replicas of 4 examples; each replica
    clips the gradient of its loss share (`loss / 8`) to a global norm of
    1.0 before the cross-replica sum. Here, with `gradient_accumulation_steps
    = k`, every micro-batch gradient is clipped to `micro_batch_clipnorm`
    before it is accumulated, and the average of the `k` clipped gradients is
    applied: `micro_batch_clipnorm = k * 1.0` reproduces the reference's
    per-replica clipping exactly. A plain `global_clipnorm` instead clips the
    averaged gradient once, which clips harder than the reference.

    Learning-rate schedules are evaluated at the optimizer step (one per
    applied update), not at the micro-batch count.

    Args:
        learning_rate: float or schedule.
        micro_batch_clipnorm: optional float, see above.
        epsilon: float, 1e-8 in the recipe (Keras' default is 1e-7).
        **kwargs: other `keras.optimizers.Adam` arguments, for example
            `gradient_accumulation_steps` or `global_clipnorm`.
    """

    def __init__(
        self,
        learning_rate=2e-5,
        micro_batch_clipnorm=None,
        epsilon=1e-8,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, epsilon=epsilon, **kwargs)
        self.micro_batch_clipnorm = micro_batch_clipnorm

    def apply(self, grads, trainable_variables=None):
        # TensorFlow hands the embedding gradient over as `IndexedSlices`,
        # which Keras' Adam then updates lazily (only the rows in the batch).
        # The reference (and PyTorch) update every row: densify.
        grads = [_dense(g) for g in grads]
        if self.micro_batch_clipnorm is not None:
            grads = clip_by_global_norm(list(grads), self.micro_batch_clipnorm)
        return super().apply(grads, trainable_variables)

    def _get_current_learning_rate(self):
        schedule = self._learning_rate
        if isinstance(
            schedule, keras.optimizers.schedules.LearningRateSchedule
        ):
            return schedule(self.iterations)
        return super()._get_current_learning_rate()

    def get_config(self):
        config = super().get_config()
        config["micro_batch_clipnorm"] = self.micro_batch_clipnorm
        return config

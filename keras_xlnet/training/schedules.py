"""XLNet's learning-rate schedule."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_xlnet")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0, then linear decay to 0, as in XLNet's recipe.

    `lr(step) = peak * step / warmup_steps` for `step < warmup_steps`, then
    `peak * (train_steps - step) / (train_steps - warmup_steps)`, and 0 from
    `train_steps` on. Step 0 therefore trains with a learning rate of 0.

    Args:
        peak_learning_rate: float.
        train_steps: int, where the rate reaches 0.
        warmup_steps: int.

    Example:
    >>> schedule = WarmupLinearDecay(2e-5, train_steps=4000, warmup_steps=500)
    >>> [float(schedule(s)) for s in (0, 250, 500, 2250, 4000)]
    [0.0, 1e-05, 2e-05, 1e-05, 0.0]
    """

    def __init__(self, peak_learning_rate, train_steps, warmup_steps):
        if not 0 <= warmup_steps < train_steps:
            raise ValueError(
                "Need 0 <= warmup_steps < train_steps. Received "
                f"warmup_steps={warmup_steps}, train_steps={train_steps}."
            )
        self.peak_learning_rate = peak_learning_rate
        self.train_steps = train_steps
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = step / max(self.warmup_steps, 1)
        decay = (self.train_steps - step) / (
            self.train_steps - self.warmup_steps
        )
        fraction = ops.where(step < self.warmup_steps, warmup, decay)
        return self.peak_learning_rate * ops.clip(fraction, 0.0, 1.0)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "train_steps": self.train_steps,
            "warmup_steps": self.warmup_steps,
        }

"""A second task for the runner, written from scratch in the tests:
regression of a noisy linear function of random inputs, a small MLP."""

import os

import keras
import numpy as np
import tensorflow as tf

from keras_xlnet.training import data_stream
from keras_xlnet.training import runner
from keras_xlnet.training.settings import RunConfig

FEATURES = 4


def examples(count, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, FEATURES)).astype("float32")
    y = x @ np.arange(1, FEATURES + 1, dtype="float32") / FEATURES
    return x, (y + 0.1 * rng.normal(size=count)).astype("float32")


class RegressionTask(runner.Task):
    def __init__(self, config):
        super().__init__(config)
        self.train = examples(50, seed=1)  # Odd: passes straddle batches.
        self.test = examples(13, seed=2)

    def build_model(self, dtype):
        return keras.Sequential(
            [
                keras.Input((FEATURES,)),
                keras.layers.Dense(16, activation="relu", dtype=dtype),
                keras.layers.Dropout(0.3),  # An RNG state to resume.
                keras.layers.Dense(1, dtype=dtype),
            ]
        )

    def loss(self):
        return keras.losses.MeanSquaredError()

    def metrics(self):
        return [keras.metrics.MeanAbsoluteError(name="mae")]

    def training_batches(self, model, skip_batches):
        config = self.config
        return data_stream.training_batches(
            data_stream.InMemoryExamples(*self.train),
            lambda x: x,
            config.micro_batch_size,
            config.train_steps * config.batch_size,
            config.seed,
            skip_batches,
        )

    def evaluation_batches(self, model):
        x, y = self.test
        size = self.config.eval_batch_size
        examples = tf.data.Dataset.from_tensor_slices(
            (x, y, np.ones(len(y), "float32"))
        )
        filler = (np.zeros(FEATURES, "float32"), np.float32(0), np.float32(0))
        return data_stream.padded_to_whole_batches(
            examples, len(y), size, filler
        ).batch(size)

    def export(self, model, folder):
        os.makedirs(folder, exist_ok=True)
        model.save(os.path.join(folder, "model.keras"))


def config(model_dir, resume=False, mode="train_and_eval"):
    return RunConfig(
        model_dir=model_dir,
        mode=mode,
        batch_size=8,
        train_steps=12,
        warmup_steps=2,
        learning_rate=1e-2,
        eval_every=4,
        eval_batch_size=4,
        dtype="float32",
        distribution="none",
        resume=resume,
        verbose=0,
    )

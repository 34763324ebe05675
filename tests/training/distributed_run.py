"""Runs 5 recipe steps of a tiny classifier on one or several devices.

Started by `test_distribution.py` in a fresh process (the device count is
fixed when the backend starts). Prints a JSON object with the losses.
Usage: python distributed_run.py {single,data_parallel,model_parallel,mirrored}
"""

import json
import os
import sys

MODE = sys.argv[1]
if os.environ["KERAS_BACKEND"] == "jax":
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_force_host_platform_device_count=8"
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from conftest import TINY_CONFIG  # noqa: E402
from conftest import packed_batch  # noqa: E402

import keras_xlnet  # noqa: E402
from keras_xlnet.training import WarmupLinearDecay  # noqa: E402
from keras_xlnet.training import XLNetAdam  # noqa: E402


def build():
    keras.utils.set_random_seed(0)
    # 100 tokens: the vocabulary axis is split 4 ways by model parallelism.
    config = {**TINY_CONFIG, "vocabulary_size": 100}
    backbone = keras_xlnet.XLNetBackbone(
        **config, dropout=0.0, attention_dropout=0.0
    )
    classifier = keras_xlnet.XLNetClassifier(
        backbone, num_classes=2, dropout=0.0
    )
    classifier.compile(
        optimizer=XLNetAdam(
            WarmupLinearDecay(1e-3, 10, 2), global_clipnorm=1.0
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[],
    )
    return classifier


def batches():
    rng = np.random.default_rng(0)
    for step in range(5):
        lengths = tuple(int(n) for n in rng.integers(2, 10, size=8))
        # Two batch widths, as length-grouped batches have.
        width = 9 + 3 * (step % 2)
        x = packed_batch(lengths=lengths, total=width, seed=step)
        yield x, rng.integers(0, 2, 8)


result = {}
if MODE == "mirrored":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result["replicas"] = strategy.num_replicas_in_sync
    with strategy.scope():
        classifier = build()
    data = list(batches())
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(data),
        output_signature=(
            {k: tf.TensorSpec((8, None), tf.int32) for k in data[0][0]},
            tf.TensorSpec((8,), tf.int64),
        ),
    )
    history = classifier.fit(
        dataset,
        epochs=1,
        verbose=0,
        callbacks=[
            keras.callbacks.LambdaCallback(
                on_train_batch_end=lambda b, logs: result.setdefault(
                    "running_mean_losses", []
                ).append(float(logs["loss"]))
            )
        ],
    )
else:
    if MODE == "data_parallel":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    elif MODE == "model_parallel":
        devices = keras.distribution.list_devices()
        mesh = keras.distribution.DeviceMesh(
            (2, 4), ["batch", "model"], devices
        )
        keras.distribution.set_distribution(
            keras.distribution.ModelParallel(
                layout_map=keras_xlnet.XLNetBackbone.get_layout_map(mesh),
                batch_dim_name="batch",
            )
        )
    classifier = build()
    result["losses"] = [
        float(classifier.train_on_batch(x, y)) for x, y in batches()
    ]
    if MODE == "model_parallel":
        shardings = {}
        for v in classifier.weights:
            spec = v.value.sharding.spec
            shardings[v.path] = [None if s is None else str(s) for s in spec]
        result["shardings"] = shardings
    result["devices"] = len(keras.distribution.list_devices())
if MODE == "single" and os.environ["KERAS_BACKEND"] == "tensorflow":
    # The running means Keras' fit reports, for comparing with `mirrored`.
    means = np.cumsum(result["losses"]) / np.arange(1, 6)
    result["running_mean_losses"] = means.tolist()
print("RESULT " + json.dumps(result))

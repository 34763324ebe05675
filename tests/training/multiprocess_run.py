"""One process of a small multi-process fine-tuning run (CPU devices).

Started by `test_multiprocess.py`, once per process, with the
`KERAS_DISTRIBUTION_*` variables (JAX) or `TF_CONFIG` (TensorFlow) set, or
neither for the one-process reference. Usage:
    python multiprocess_run.py MODEL_DIR VOCABULARY MODE DISTRIBUTION DEVICES
        [EVAL_TFRECORD]
with MODE one of straight, kill, resume; DISTRIBUTION a `--distribution`
(model_parallel splits the 4 heads over 4 devices), DEVICES the number
of CPU devices of this process and EVAL_TFRECORD the test reviews as
TFRecords (else their texts).

10 steps of batch 8, evaluated every 5 steps on 11 test reviews (an odd
count) in batches of 4. With `kill`, process 1 SIGKILLs itself once every
process has written its checkpoint of step 5. Prints `RESULT {...}` with
the process index, the training loss of each step, the number of
variables split over several processes and (TensorFlow) the rows of each
batch that each replica of the process trained or evaluated on.
"""

import json
import os
import signal
import sys

# MODEL_DIR may name each process's own folder with `{index}`.
model_dir, vocabulary, mode, layout, devices = sys.argv[1:6]
eval_tfrecord = sys.argv[6] if len(sys.argv) > 6 else None
devices = int(devices)
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + f" --xla_force_host_platform_device_count={devices}"
)

import keras  # noqa: E402

if keras.config.backend() == "tensorflow":
    import tensorflow as tf

if keras.config.backend() == "tensorflow" and devices > 1:
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * devices,
    )

import keras_xlnet  # noqa: E402
from keras_xlnet.recipes import imdb  # noqa: E402
from keras_xlnet.recipes import imdb_demo  # noqa: E402
from keras_xlnet.training import processes  # noqa: E402

if keras.config.backend() == "tensorflow" and processes.requested():
    index = processes.tf_cluster()[1][1]
else:
    index = int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", 0))
config = imdb.ImdbConfig(
    model_dir=model_dir.format(index=index),
    sequence_length=16,
    batch_size=8,
    train_steps=10,
    warmup_steps=1,
    learning_rate=1e-3,
    eval_every=5,
    eval_batch_size=4,
    eval_tfrecord=eval_tfrecord,
    dtype="float32",
    distribution=layout,
    resume=mode == "resume",
    connect_timeout=120,
    verbose=0,
)
train, test = imdb_demo.demo_data()
test = test[0][:11], test[1][:11]


built = {}


def build(dtype):
    tokenizer = keras_xlnet.XLNetTokenizer(proto=vocabulary)
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=4,
        hidden_dim=32,
        intermediate_dim=64,
        dtype=dtype,
    )
    built["classifier"] = keras_xlnet.XLNetClassifier(
        backbone,
        num_classes=2,
        preprocessor=keras_xlnet.XLNetTextClassifierPreprocessor(tokenizer),
    )
    if keras.config.backend() == "tensorflow":
        count_rows(built["classifier"])
    return built["classifier"]


rows = {"train": [], "test": []}


def count_rows(classifier):
    """Appends to `rows` the size of each batch a replica of this process
    trains or evaluates on (TensorFlow: the strategy splits the batches)."""
    for split, found in rows.items():
        step = getattr(classifier, f"{split}_step")

        def counted_step(data, step=step, found=found):
            size = tf.shape(data[1])[0]
            tf.py_function(lambda n: found.append(int(n)), [size], [])
            return step(data)

        setattr(classifier, f"{split}_step", counted_step)


def after_interval(epoch, logs):
    if mode != "kill":
        return
    processes.barrier("every checkpoint of the interval written")
    if index == 1:
        os.kill(os.getpid(), signal.SIGKILL)


losses = []
callbacks = [
    keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(
            float(logs["loss"])
        ),
        on_epoch_end=after_interval,
    )
]
imdb.run(config, build, train, test, callbacks=callbacks)
# Variables split over several processes' devices (model parallel).
split = keras.config.backend() == "jax" and sum(
    not (value.is_fully_addressable or value.is_fully_replicated)
    for value in (v.value for v in built["classifier"].variables)
)
result = {"process": index, "losses": losses, "split": split, "rows": rows}
print("RESULT " + json.dumps(result))

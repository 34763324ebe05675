"""One process of a small multi-process fine-tuning run (JAX, CPU devices).

Started by `test_multiprocess.py`, once per process, with the
`KERAS_DISTRIBUTION_*` variables set (or none, for the one-process
reference) and the device count in `XLA_FLAGS`. Usage:
    python multiprocess_run.py MODEL_DIR VOCABULARY MODE [DISTRIBUTION]
with MODE one of straight, kill, resume and DISTRIBUTION data_parallel
(the default) or model_parallel (4 heads split over the 4 devices).

10 steps of batch 8, evaluated every 5 steps on 11 test reviews (an odd
count) in batches of 4. With `kill`, process 1 SIGKILLs itself once every
process has written its checkpoint of step 5. Prints `RESULT {...}` with
the process index, the training loss of each step and the number of
variables split over several processes.
"""

import json
import os
import signal
import sys

import keras

import keras_xlnet
from keras_xlnet.training import finetune
from keras_xlnet.training import processes

model_dir, vocabulary, mode = sys.argv[1:4]
layout = sys.argv[4] if len(sys.argv) > 4 else "data_parallel"
config = finetune.FinetuneConfig(
    model_dir=model_dir,
    sequence_length=16,
    batch_size=8,
    train_steps=10,
    warmup_steps=1,
    learning_rate=1e-3,
    eval_every=5,
    eval_batch_size=4,
    dtype="float32",
    distribution=layout,
    resume=mode == "resume",
    connect_timeout=120,
    verbose=0,
)
train, test = finetune.demo_data()
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
    return built["classifier"]


def after_interval(epoch, logs):
    if mode != "kill":
        return
    processes.barrier("every checkpoint of the interval written")
    if index == 1:
        os.kill(os.getpid(), signal.SIGKILL)


index = int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", 0))
losses = []
callbacks = [
    keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(
            float(logs["loss"])
        ),
        on_epoch_end=after_interval,
    )
]
finetune.run(config, build, train, test, callbacks=callbacks)
# Variables split over several processes' devices (model parallel).
split = sum(
    not (value.is_fully_addressable or value.is_fully_replicated)
    for value in (v.value for v in built["classifier"].variables)
)
print(
    "RESULT " + json.dumps({"process": index, "losses": losses, "split": split})
)

"""A tiny pretraining run (the demo's model and reviews) for the resume
and multi-process tests of `test_pretraining_runs.py`.

Usage:
    python pretrain_run.py MODEL_DIR MODE DISTRIBUTION DEVICES

MODE: straight, kill (SIGKILLs itself after the checkpoint of step 4 of
8) or resume; DISTRIBUTION a `--distribution`, DEVICES the CPU devices of
this process. Prints `RESULT {...}` with the process index, the training
loss after each step, and the carried memory at the end: its SHA-256
and its sum of absolute values.
"""

import hashlib
import json
import os
import sys

model_dir, mode, layout, devices = sys.argv[1:5]
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + f" --xla_force_host_platform_device_count={devices}"
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import sigkill  # noqa: E402

from keras_xlnet.recipes import pretraining  # noqa: E402
from keras_xlnet.recipes import pretraining_demo  # noqa: E402
from keras_xlnet.training import runner  # noqa: E402

index = int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", 0))
config = pretraining.PretrainConfig(
    model_dir=model_dir,
    sequence_length=32,
    reuse_length=16,
    memory_length=24,
    perm_size=8,
    num_predict=6,
    batch_size=8,
    train_steps=8,
    warmup_steps=1,
    learning_rate=1e-3,
    eval_every=4,
    eval_batch_size=4,
    dtype="float32",
    distribution=layout,
    resume=mode == "resume",
    connect_timeout=120,
    verbose=0,
)
losses, memory = [], {}


def record_memory(logs):
    value = keras.ops.convert_to_numpy(recorder.model.carried_memory.memory)
    memory["sha256"] = hashlib.sha256(np.ascontiguousarray(value)).hexdigest()
    memory["abs_sum"] = float(np.abs(value).sum())


recorder = keras.callbacks.LambdaCallback(
    on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"])),
    on_train_end=record_memory,
)
callbacks = [recorder] + (
    [sigkill.at_first_checkpoint()] if mode == "kill" else []
)
runner.run(pretraining_demo.demo_task(config), callbacks=callbacks)
print(
    "RESULT " + json.dumps({"index": index, "losses": losses, "memory": memory})
)

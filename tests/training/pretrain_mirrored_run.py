"""Pretraining under TensorFlow's MirroredStrategy on 2 CPU devices, for
`test_pretraining_runs.py`: training with `bi_data` is refused; a run
without memory or `bi_data` trains, and `--mode eval` on its folder
reproduces its evaluation.

Usage: python pretrain_mirrored_run.py MODEL_DIR
Prints `RESULT {...}`.
"""

import dataclasses
import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

from keras_xlnet.recipes import pretraining_demo  # noqa: E402
from keras_xlnet.recipes.pretraining import PretrainConfig  # noqa: E402
from keras_xlnet.training import runner  # noqa: E402
from keras_xlnet.training.settings import RunError  # noqa: E402

config = PretrainConfig(
    **{
        **pretraining_demo.SETTINGS,
        "model_dir": sys.argv[1],
        "train_steps": 2,
        "warmup_steps": 1,
        "eval_every": 2,
        "distribution": "mirrored",
        "verbose": 0,
    }
)
result = {}
try:
    runner.run(pretraining_demo.demo_task(config))
except RunError as error:
    result["refused"] = str(error)
plain = dataclasses.replace(config, bi_data=False, memory_length=0)
result["trained"] = runner.run(pretraining_demo.demo_task(plain))
evaluation = dataclasses.replace(plain, mode="eval")
result["evaluated"] = runner.run(pretraining_demo.demo_task(evaluation))
print("RESULT " + json.dumps(result))

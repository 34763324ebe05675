"""Runs `regression_task` through the runner; `kill` SIGKILLs the run after
its first checkpoint. Usage: python regression_run.py MODEL_DIR MODE."""

import os
import signal
import sys

import keras
from regression_task import RegressionTask
from regression_task import config

from keras_xlnet.training import runner

model_dir, mode = sys.argv[1:3]
callbacks = []
if mode == "kill":
    callbacks.append(
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: os.kill(
                os.getpid(), signal.SIGKILL
            )
        )
    )
runner.run(RegressionTask(config(model_dir, mode == "resume")), callbacks)

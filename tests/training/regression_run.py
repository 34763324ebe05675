"""Runs `regression_task` through the runner; `kill` SIGKILLs the run after
its first checkpoint. Usage: python regression_run.py MODEL_DIR MODE."""

import sys

import sigkill
from regression_task import RegressionTask
from regression_task import config

from keras_xlnet.training import runner

model_dir, mode = sys.argv[1:3]
callbacks = [sigkill.at_first_checkpoint()] if mode == "kill" else []
runner.run(RegressionTask(config(model_dir, mode == "resume")), callbacks)

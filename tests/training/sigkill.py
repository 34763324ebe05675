"""The callback that ends a child run as a crash would, for resume tests."""

import os
import signal

import keras


def at_first_checkpoint():
    """SIGKILLs this process at the end of its first evaluation interval,
    after the runner's checkpoint of it (the runner's callback runs
    first)."""
    return keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: os.kill(os.getpid(), signal.SIGKILL)
    )

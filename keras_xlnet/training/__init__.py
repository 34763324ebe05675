"""The task-agnostic training runner (settings, data stream, atomic
checkpoints, processes, distribution) and XLNet's optimizer and schedule."""

from keras_xlnet.training.optimizer import XLNetAdam
from keras_xlnet.training.schedules import WarmupLinearDecay

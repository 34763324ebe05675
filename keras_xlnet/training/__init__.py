"""The fine-tuning recipe: schedule, optimizer, distribution helpers."""

from keras_xlnet.training.optimizer import XLNetAdam
from keras_xlnet.training.schedules import WarmupLinearDecay

"""Readers and converters for the XLNet checkpoint layouts."""

from keras_xlnet.checkpoints.convert import convert_checkpoint
from keras_xlnet.checkpoints.convert import load_checkpoint
from keras_xlnet.checkpoints.readers import CheckpointError

"""XLNet for Keras 3 and KerasHub, on JAX, TensorFlow and PyTorch."""

from keras_xlnet.checkpoints import CheckpointError
from keras_xlnet.checkpoints import convert_checkpoint
from keras_xlnet.checkpoints import load_checkpoint
from keras_xlnet.checkpoints.registry import PresetUnavailableError
from keras_xlnet.checkpoints.registry import register_with_keras_hub
from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_classifier import XLNetClassifier
from keras_xlnet.models.xlnet_text_classifier_preprocessor import (
    XLNetTextClassifierPreprocessor,
)
from keras_xlnet.models.xlnet_tokenizer import XLNetTokenizer
from keras_xlnet.version import __version__

XLNetTextClassifier = XLNetClassifier
XLNetPreprocessor = XLNetTextClassifierPreprocessor

register_with_keras_hub(XLNetBackbone)

"""XLNet for Keras 3 and KerasHub, on JAX, TensorFlow and PyTorch."""

import importlib

from keras_xlnet import preset_dispatch
from keras_xlnet.models.input_checks import enable_input_checks
from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_classifier import XLNetClassifier
from keras_xlnet.models.xlnet_permutation_lm import XLNetPermutationLM
from keras_xlnet.models.xlnet_permutation_lm_preprocessor import (
    XLNetPermutationLMPreprocessor,
)
from keras_xlnet.models.xlnet_text_classifier_preprocessor import (
    XLNetTextClassifierPreprocessor,
)
from keras_xlnet.models.xlnet_tokenizer import XLNetTokenizer
from keras_xlnet.version import __version__

XLNetTextClassifier = XLNetClassifier
XLNetPreprocessor = XLNetTextClassifierPreprocessor

preset_dispatch.install(XLNetBackbone)

# The converters and exporters import the models, never the reverse: they
# load on first use, so that importing the models alone does not import
# them.
_LAZY_API = {
    "CheckpointError": "keras_xlnet.checkpoints.readers",
    "convert_checkpoint": "keras_xlnet.checkpoints.convert",
    "load_checkpoint": "keras_xlnet.checkpoints.convert",
    "PresetUnavailableError": "keras_xlnet.checkpoints.registry",
    "export_classifier": "keras_xlnet.serving.export",
}


def __getattr__(name):
    if name in _LAZY_API:
        return getattr(importlib.import_module(_LAZY_API[name]), name)
    raise AttributeError(f"module 'keras_xlnet' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY_API))

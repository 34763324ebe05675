"""XLNet models: the backbone and its tasks."""

from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_classifier import XLNetClassifier
from keras_xlnet.models.xlnet_permutation_lm import XLNetPermutationLM
from keras_xlnet.models.xlnet_permutation_lm_preprocessor import (
    XLNetPermutationLMPreprocessor,
)

"""XLNet models: the backbone and its tasks."""

from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_classifier import XLNetClassifier

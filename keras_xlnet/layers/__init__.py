"""Layers holding XLNet's math."""

from keras_xlnet.layers.attention_masks import XLNetAttentionMask
from keras_xlnet.layers.attention_masks import XLNetSegmentMatrix
from keras_xlnet.layers.dropout import XLNetDropout
from keras_xlnet.layers.encoder_block import XLNetEncoderBlock
from keras_xlnet.layers.lm_head import XLNetLMHead
from keras_xlnet.layers.query_stream_embedding import XLNetQueryStreamEmbedding
from keras_xlnet.layers.relative_attention import XLNetRelativeAttention
from keras_xlnet.layers.relative_position_encoding import (
    XLNetRelativePositionEncoding,
)

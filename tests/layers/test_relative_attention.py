"""XLNetRelativeAttention argument checks."""

import numpy as np
import pytest
from keras import ops

from keras_xlnet.layers.relative_attention import XLNetRelativeAttention


def test_output_positions_and_query_stream_exclude_each_other():
    layer = XLNetRelativeAttention(num_heads=2, head_dim=4)
    masks = ops.ones((1, 3, 3), "bool")
    with pytest.raises(ValueError, match="query stream"):
        layer(
            ops.zeros((1, 3, 8)),
            ops.zeros((1, 6, 8)),
            masks,
            masks,
            query=ops.zeros((1, 1, 8)),
            query_visible=masks,
            target_mapping=ops.ones((1, 1, 3)),
            output_positions=ops.convert_to_tensor(np.array([[2]])),
        )

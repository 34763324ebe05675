"""The position term against an explicit loop over queries and keys."""

import numpy as np
import pytest
from keras import ops

from keras_xlnet.layers.position_scores import position_scores
from keras_xlnet.layers.position_scores import position_scores_at


def reference(query, positions, key_length):
    """scores[n, b, i, j] = query[n, b, i] . positions[b, T - i + j, n]."""
    num_heads, batch, query_length, _ = query.shape
    scores = np.zeros((num_heads, batch, query_length, key_length), "float32")
    for i in range(query_length):
        for j in range(key_length):
            r = query_length - i + j
            if r < positions.shape[1]:
                p = positions[:, r]  # [1 or B, N, H]
                scores[:, :, i, j] = np.einsum(
                    "nbh,bnh->nb",
                    query[:, :, i],
                    np.broadcast_to(p, (batch,) + p.shape[1:]),
                )
    return scores


@pytest.mark.parametrize(
    "query_length,memory_length", [(1, 0), (9, 0), (12, 0), (7, 5), (16, 3)]
)
@pytest.mark.parametrize("per_example", [False, True])
def test_banded_and_per_example_scores(
    query_length, memory_length, per_example
):
    rng = np.random.default_rng(query_length + memory_length)
    key_length = query_length + memory_length
    query = rng.normal(size=(3, 2, query_length, 4)).astype("float32")
    positions = rng.normal(
        size=(2 if per_example else 1, query_length + key_length, 3, 4)
    ).astype("float32")
    actual = ops.convert_to_numpy(position_scores(query, positions, key_length))
    np.testing.assert_allclose(
        actual, reference(query, positions, key_length), atol=1e-5
    )


def test_causal_positions_take_the_unbanded_path():
    # "uni" attention encodes K + 1 distances: only visible (j <= i + M)
    # entries are defined.
    rng = np.random.default_rng(0)
    query_length, key_length = 6, 8
    query = rng.normal(size=(2, 2, query_length, 4)).astype("float32")
    positions = rng.normal(size=(1, key_length + 1, 2, 4)).astype("float32")
    actual = ops.convert_to_numpy(position_scores(query, positions, key_length))
    expected = reference(query, positions, key_length)
    visible = (
        np.arange(key_length)[None] <= np.arange(query_length)[:, None] + 2
    )
    np.testing.assert_allclose(
        actual[..., visible], expected[..., visible], atol=1e-5
    )


@pytest.mark.parametrize("per_example", [False, True])
def test_scores_at_given_positions_are_the_rows_of_the_segment(per_example):
    rng = np.random.default_rng(1)
    query_length, memory_length = 10, 3
    key_length = query_length + memory_length
    query = rng.normal(size=(2, 3, query_length, 4)).astype("float32")
    positions = rng.normal(
        size=(3 if per_example else 1, query_length + key_length, 2, 4)
    ).astype("float32")
    index = np.array([[9, 0], [4, 4], [0, 7]])
    rows = np.take_along_axis(query, index[None, :, :, None], axis=2)
    actual = position_scores_at(
        rows, positions, key_length, index, query_length
    )
    expected = np.take_along_axis(
        reference(query, positions, key_length), index[None, :, :, None], axis=2
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(actual), expected, atol=1e-5
    )

"""The position term of XLNet's attention scores, `rel_shift(q . r)`."""

import math

from keras import ops

# Queries are scored in this many blocks, each against the band of relative
# positions it needs (see `position_scores`).
QUERY_BLOCKS = 4


def rel_shift(scores, key_length):
    """Aligns position scores so that column `j` holds distance `i - j`.

    `scores[..., i, r]` scores query `i` of `T` against relative position
    index `r` (distance `K - r`). The result keeps `[..., i, j] =
    scores[..., i, T - i + j]` for the first `key_length` columns, using
    one reshape, one slice and another reshape.
    """
    shape = ops.shape(scores)
    leading, query_length, num_positions = shape[:-2], shape[-2], shape[-1]
    scores = ops.reshape(scores, (-1, num_positions, query_length))
    scores = scores[:, 1:, :]
    scores = ops.reshape(scores, (-1, query_length, num_positions - 1))
    return ops.reshape(
        scores[:, :, :key_length], (*leading, query_length, key_length)
    )


def position_scores(query, positions, key_length):
    """`rel_shift(query . positions)`: `[N, B, T, K]` position scores.

    Args:
        query: `[N, B, T, H]` queries (plus the position bias).
        positions: `[1 or B, R, N, H]` projected relative encodings,
            distances from `K` down.
        key_length: `K`.

    Query `i` only uses the `K` positions `T - i .. T - i + K`, so with
    static shapes and `R = T + K` (bidirectional attention), the queries are
    scored in `QUERY_BLOCKS` blocks of `T / QUERY_BLOCKS` rows, each against
    its band of `T / QUERY_BLOCKS + K` positions: 5/8 of the multiply-adds
    and memory of scoring every query against all `T + K` positions, with
    the same numbers.
    """
    query_length = query.shape[2]
    banded = (
        positions.shape[0] == 1  # Not bi_data's positions per example.
        and isinstance(query_length, int)
        and isinstance(key_length, int)
        and positions.shape[1] == query_length + key_length
    )
    if not banded:
        return rel_shift(_all_position_scores(query, positions), key_length)
    positions = ops.transpose(positions[0], (1, 0, 2))  # [N, R, H]
    return _banded_scores(query, positions, key_length)


def _all_position_scores(query, positions):
    """`[N, B, T, H]` queries against all `[1 or B, R, N, H]` positions:
    `[N, B, T, R]`."""
    if positions.shape[0] != 1:  # bi_data: positions per example.
        return ops.einsum("nbth,brnh->nbtr", query, positions)
    # One set of positions for the batch: a single [N, B*T, H] x [N, H, R]
    # matmul.
    num_heads, head_dim = query.shape[0], query.shape[3]
    scores = ops.matmul(
        ops.reshape(query, (num_heads, -1, head_dim)),
        ops.transpose(positions[0], (1, 2, 0)),
    )
    shape = ops.shape(query)
    return ops.reshape(scores, (num_heads, shape[1], shape[2], -1))


def _banded_scores(query, positions, key_length):
    num_heads, _, query_length, head_dim = query.shape
    block = math.ceil(query_length / QUERY_BLOCKS)
    padding = block * QUERY_BLOCKS - query_length
    if padding:
        # Extra queries at the end, extra (farthest) positions at the
        # start: query `i` still meets distance `i - j` at the same index.
        query = ops.pad(query, ((0, 0), (0, 0), (0, padding), (0, 0)))
        positions = ops.pad(positions, ((0, 0), (padding, 0), (0, 0)))
    # Block `c` (queries `c * block ..`) needs positions from
    # `(QUERY_BLOCKS - 1 - c) * block`, `block + K` of them.
    bands = ops.stack(
        [
            positions[:, start : start + block + key_length]
            for start in range((QUERY_BLOCKS - 1) * block, -1, -block)
        ],
        axis=1,
    )  # [N, C, block + K, H]
    blocks = ops.reshape(query, (num_heads, -1, QUERY_BLOCKS, block, head_dim))
    blocks = ops.reshape(
        ops.transpose(blocks, (0, 2, 1, 3, 4)),
        (num_heads, QUERY_BLOCKS, -1, head_dim),
    )  # [N, C, B * block, H]
    scores = ops.matmul(blocks, ops.transpose(bands, (0, 1, 3, 2)))
    scores = ops.reshape(
        scores, (num_heads, QUERY_BLOCKS, -1, block, block + key_length)
    )
    scores = rel_shift(scores, key_length)  # [N, C, B, block, K]
    scores = ops.reshape(
        ops.transpose(scores, (0, 2, 1, 3, 4)),
        (num_heads, -1, block * QUERY_BLOCKS, key_length),
    )
    return scores[:, :, :query_length]


def position_scores_at(query, positions, key_length, query_index, query_length):
    """Position scores of queries sitting at given positions of the segment.

    Args:
        query: `[N, B, P, H]` queries.
        positions: `[1 or B, R, N, H]` projected relative encodings.
        key_length: `K`.
        query_index: `[B, P]` int, the position of each query among the
            segment's `query_length` tokens.
        query_length: `T`.

    Returns:
        `[N, B, P, K]`, equal to the rows `query_index` of
        `position_scores` over the whole segment.
    """
    scores = _all_position_scores(query, positions)
    num_positions = ops.shape(scores)[3]
    index = (
        query_length
        - ops.cast(query_index, "int32")[:, :, None]
        + ops.arange(key_length, dtype="int32")[None, None, :]
    )
    # Beyond the encoded distances only for keys "uni" attention hides.
    index = ops.minimum(index, num_positions - 1)
    return ops.take_along_axis(scores, index[None], axis=3)

"""XLNet's pretraining targets and factorization orders, as the original.

The behaviour follows the original `data_utils.py` (`_sample_mask`,
`_local_perm`, the parser that pads the targets to `num_predict`); the
random draws come from a `numpy.random.Generator`, so one seed gives one
example wherever it is made.

Conventions: `perm_mask[i, j] = 1` means position `i` may not attend to
position `j`; `<sep>` and `<cls>` ("functional" tokens) are never
predicted.
"""

import string

import numpy as np

# Pieces that start a word for span sampling besides "▁..." ones: the
# special pieces ("<...>") and single ASCII punctuation marks.
_PUNCTUATION = frozenset(string.punctuation)


def is_word_start(piece):
    """Whether a span may begin at `piece` (the original's rule)."""
    return (
        piece.startswith("\u2581")
        or piece.startswith("<")
        or piece in _PUNCTUATION
    )


def sample_span_targets(
    word_starts,
    goal,
    rng,
    mask_alpha=6,
    mask_beta=1,
    max_gram=5,
    reverse=False,
):
    """Which positions of a segment are prediction targets.

    Spans of `n` pieces (`n` in `1..max_gram`, probability ∝ `1/n`) start
    at a word start chosen at a random offset inside a context of
    `n * mask_alpha // mask_beta` pieces; the next span's context begins
    after this one's. Sampling stops at `goal` targets or at the end of
    the segment; single random positions then make up the goal.

    Args:
        word_starts: bool `[n]`, `is_word_start` of each piece.
        goal: int, how many targets (at most `n`).
        rng: a `numpy.random.Generator`.
        mask_alpha, mask_beta: ints, about `mask_beta` targets per
            `mask_alpha` pieces.
        max_gram: int, the longest span.
        reverse: bool, sample over the reversed segment (the backward
            half of `bi_data`).

    Returns:
        bool `[n]`, exactly `goal` of them true.
    """
    word_starts = np.asarray(word_starts, bool)
    length = len(word_starts)
    if goal > length:
        raise ValueError(
            f"Cannot sample {goal} targets in a segment of {length} pieces."
        )
    if reverse:
        word_starts = word_starts[::-1]
    grams = np.arange(1, max_gram + 1)
    probabilities = 1.0 / grams
    probabilities /= probabilities.sum()
    targets = np.zeros(length, bool)
    count = cursor = 0
    while cursor < length and count < goal:
        gram = min(int(rng.choice(grams, p=probabilities)), goal - count)
        context = gram * mask_alpha // mask_beta
        left = int(rng.integers(context))
        begin = cursor + left
        while begin < length and not word_starts[begin]:
            begin += 1
        # A span must end before the segment does (the original's rule).
        if begin + gram >= length:
            break
        targets[begin : begin + gram] = True
        count += gram
        cursor = begin + gram + context - left
    while count < goal:
        position = int(rng.integers(length))
        if not targets[position]:
            targets[position] = True
            count += 1
    return targets[::-1] if reverse else targets


def local_permutation(is_target, is_functional, perm_size, rng):
    """The attention of one random factorization order (`_local_perm`).

    Positions are ordered block by block (`perm_size` each), within every
    block by one random permutation. Context tokens (neither targets nor
    functional) come before all others: everyone sees them and they see
    no target or functional token. A target sees the targets and
    functional tokens ordered before it, not itself; a functional token
    sees itself too.

    Args:
        is_target: bool `[n]` (functional positions are ignored).
        is_functional: bool `[n]`, `<sep>` and `<cls>`.
        perm_size: int dividing `n`.
        rng: a `numpy.random.Generator`.

    Returns:
        `(perm_mask, targets)`: float32 `[n, n]` (1 = may not attend) and
        bool `[n]`, the targets that are not functional.
    """
    length = len(is_target)
    if perm_size < 1 or length % perm_size:
        raise ValueError(
            f"`perm_size` ({perm_size}) must divide the length ({length})."
        )
    within = rng.permutation(perm_size)
    order = (
        np.arange(0, length, perm_size)[:, None] + within[None, :]
    ).reshape(-1)
    targets = np.logical_and(is_target, np.logical_not(is_functional))
    context = np.logical_not(np.logical_or(is_target, is_functional))
    rank = np.where(context, -1, order)
    own_rank = np.where(targets, rank, rank + 1)
    hidden = np.logical_and(
        own_rank[:, None] <= rank[None, :], np.logical_not(context)[None, :]
    )
    return hidden.astype("float32"), targets


def two_stream_inputs(
    token_ids,
    is_target,
    is_functional,
    reuse_length,
    perm_size,
    num_predict,
    rng,
):
    """`perm_mask`, `target_mapping`, target ids and `target_mask` of one
    example whose first `reuse_length` positions are the reuse part.

    Each part has its own factorization order; the reuse part sees none of
    the rest, the rest sees the whole reuse part (the original's layout,
    so that the reuse part's states can serve as the next step's memory).
    Targets are listed in position order and padded to `num_predict`.
    """
    length = len(token_ids)
    parts = [slice(0, reuse_length), slice(reuse_length, length)]
    perm_mask = np.zeros((length, length), "float32")
    perm_mask[:reuse_length, reuse_length:] = 1
    targets = np.zeros(length, bool)
    for part in parts:
        part_mask, targets[part] = local_permutation(
            is_target[part], is_functional[part], perm_size, rng
        )
        perm_mask[part, part] = part_mask
    positions = np.flatnonzero(targets)
    if len(positions) > num_predict:
        raise ValueError(
            f"{len(positions)} targets exceed num_predict={num_predict}."
        )
    target_mapping = np.zeros((num_predict, length), "float32")
    target_mapping[np.arange(len(positions)), positions] = 1
    target_ids = np.zeros(num_predict, "int32")
    target_ids[: len(positions)] = np.asarray(token_ids)[positions]
    target_mask = np.zeros(num_predict, "float32")
    target_mask[: len(positions)] = 1
    return {
        "perm_mask": perm_mask,
        "target_mapping": target_mapping,
        "target_ids": target_ids,
        "target_mask": target_mask,
    }

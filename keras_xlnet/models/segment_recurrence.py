"""Reading a long document segment by segment with XLNet's memory.

A document of `n * segment_length` positions is read as `n` segments. Each
layer keeps its inputs of the earlier segments as memory (Transformer-XL,
as `XLNetBackbone.encode` does) and the next segment attends to them with
relative positions, so the last segment's `<cls>` sees the whole document
through the memory. As in the reference, every memory position of a
segment holding text stays visible, its padding included; a segment of
padding only (a short document behind whole segments of padding) is
hidden, so such a document gets exactly the logits of one segment.
"""

import dataclasses

from keras import ops

from keras_xlnet.layers.last_token_pooler import last_real_position
from keras_xlnet.models.input_checks import segment_layout_problem
from keras_xlnet.models.xlnet_backbone import next_memory

# "stop": gradients flow through the last segment only, the memory being a
# constant (Transformer-XL's truncated back-propagation); "full": through
# every segment.
MEMORY_GRADIENTS = ("stop", "full")


def _is_count(value, minimum):
    return isinstance(value, int) and value >= minimum


@dataclasses.dataclass(frozen=True)
class SegmentSettings:
    """How `XLNetClassifier` reads an input: as `segment_length` segments
    (at most `max_segments`), each layer keeping `memory_length` earlier
    positions (`None`: all, `0`: none), back-propagating through the last
    segment (`memory_gradient="stop"`) or all of them (`"full"`).
    `segment_length=None` reads the whole input as one segment."""

    segment_length: int = None
    max_segments: int = 1
    memory_length: int = None
    memory_gradient: str = "stop"

    def __post_init__(self):
        if self.segment_length is not None and not _is_count(
            self.segment_length, 1
        ):
            raise ValueError(
                "`segment_length` must be a positive integer or None (the "
                "whole input is one segment). "
                f"Received: segment_length={self.segment_length!r}"
            )
        if not _is_count(self.max_segments, 1):
            raise ValueError(
                "`max_segments` must be a positive integer. "
                f"Received: max_segments={self.max_segments!r}"
            )
        if self.max_segments > 1 and self.segment_length is None:
            raise ValueError(
                f"max_segments={self.max_segments} needs a `segment_length`."
            )
        if self.memory_length is not None and not _is_count(
            self.memory_length, 0
        ):
            raise ValueError(
                "`memory_length` must be a non-negative integer, or None to "
                "keep every earlier segment. "
                f"Received: memory_length={self.memory_length!r}"
            )
        if self.memory_gradient not in MEMORY_GRADIENTS:
            raise ValueError(
                f"`memory_gradient` must be one of {MEMORY_GRADIENTS}. "
                f"Received: memory_gradient={self.memory_gradient!r}"
            )

    def segment_count(self, length):
        """How many segments an input of `length` positions holds (`None`:
        unknown, read as `max_segments` after padding on the left)."""
        if self.segment_length is None:
            return 1
        if length is None:
            return self.max_segments
        problem = segment_layout_problem(
            length, self.segment_length, self.max_segments
        )
        if problem:
            raise ValueError(problem)
        return max(1, length // self.segment_length)


def _pad_left(inputs, length):
    """`inputs` padded on the left to `length` positions (id 0, segment 3,
    `padding_mask` 0)."""
    missing = length - ops.shape(inputs["token_ids"])[1]
    fill = {"token_ids": 0, "padding_mask": 0, "segment_ids": 3}
    return {
        key: ops.pad(value, [[0, 0], [missing, 0]], constant_values=fill[key])
        for key, value in inputs.items()
    }


def encode_last_segment(
    backbone, inputs, settings, training=None, cls_only=False
):
    """The last layer's states on the last segment, `[batch, L, D]`, or
    only at its `<cls>` (its last real token), `[batch, D]`.

    Args:
        backbone: an `XLNetBackbone`.
        inputs: dict of `token_ids`, `padding_mask`, `segment_ids`, each
            `[batch, n * segment_length]` (`n <= max_segments`) or at most
            `[batch, segment_length]`.
        settings: the `SegmentSettings`.
        training: bool, enables dropout.
        cls_only: bool, run the last block at `<cls>` alone.
    """
    length = inputs["token_ids"].shape[1]
    count = settings.segment_count(length)
    segment_length = settings.segment_length
    if length is None and count > 1:
        # A traced length (TensorFlow relaxes shapes): leading segments of
        # padding only are hidden, so padding to the most segments is exact.
        inputs = _pad_left(inputs, count * segment_length)
    token_ids = inputs["token_ids"]
    padding_mask = inputs["padding_mask"]
    segment_ids = inputs["segment_ids"]
    memory_length = settings.memory_length
    keep = 0 if memory_length is None else memory_length
    memory = memory_mask = None
    first = 0 if memory_length != 0 else count - 1
    for index in range(first, count):
        start = index * segment_length if count > 1 else 0
        window = slice(start, start + segment_length if count > 1 else None)
        segment_mask = padding_mask[:, window]
        last = index == count - 1
        outputs = backbone._encode(
            token_ids[:, window],
            segment_mask,
            segment_ids[:, window],
            memory=memory,
            memory_mask=memory_mask,
            training=training,
            layer_inputs_only=not last,
            output_positions=last_real_position(segment_mask)[:, None]
            if last and cls_only
            else None,
        )
        if last:
            output = outputs["sequence_output"]
            return output[:, 0] if cls_only else output
        memory = [
            next_memory(
                layer_input,
                None if memory is None else memory[i],
                memory_length=keep,
                stop=settings.memory_gradient == "stop",
            )
            for i, layer_input in enumerate(outputs["layer_inputs"])
        ]
        has_text = ops.any(ops.cast(segment_mask, "bool"), axis=1)
        visible = ops.repeat(has_text[:, None], segment_length, axis=1)
        memory_mask = next_memory(
            visible, memory_mask, memory_length=keep, stop=False
        )

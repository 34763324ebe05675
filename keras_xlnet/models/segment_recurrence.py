"""Reading a long document segment by segment with XLNet's memory.

A document of `n * segment_length` positions is read as `n` segments. Each
layer keeps its inputs of the earlier segments as memory (Transformer-XL,
as `XLNetBackbone.encode` does) and the next segment attends to them with
relative positions, so the last segment's `<cls>` sees the whole document
through the memory. Padding is never attended, in the current segment or in
memory: each memory position keeps the padding mask of the position it came
from. The padding of a packed document precedes its text, so hiding it
changes no distance between real positions: a document gets the logits of
its text alone, and a document of one segment behind whole segments of
padding exactly those of one segment.
"""

import contextlib
import dataclasses
import threading

import keras
from keras import ops

from keras_xlnet.models.input_checks import MAX_SEQUENCE_LENGTH
from keras_xlnet.models.input_checks import check_segment_layout
from keras_xlnet.models.input_checks import is_count
from keras_xlnet.models.input_checks import segment_layout_problem
from keras_xlnet.models.xlnet_backbone import next_memory

# Batches of a length known only when they run (TensorFlow) run the branch
# of their own segment count up to this many segments; the branches hold
# n (n + 1) / 2 segment passes, so beyond it (and with remat, whose
# gradient TensorFlow cannot take inside a branch) they are padded to
# `max_segments` instead.
MAX_BRANCHES = 8
# Per thread: how many `padded_to_max_segments` blocks are open.
_tracing = threading.local()

# "stop": gradients flow through the last segment only, the memory being a
# constant (Transformer-XL's truncated back-propagation); "full": through
# every segment.
MEMORY_GRADIENTS = ("stop", "full")


def last_real_position(padding_mask):
    """`[batch]` index of each row's last real token (the last position for
    a row without any)."""
    length = ops.shape(padding_mask)[1]
    reversed_mask = ops.cast(ops.flip(padding_mask, axis=1), "int32")
    return length - 1 - ops.argmax(reversed_mask, axis=1)


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
        if self.segment_length is not None and not is_count(
            self.segment_length, 1
        ):
            raise ValueError(
                "`segment_length` must be a positive integer or None (the "
                "whole input is one segment). "
                f"Received: segment_length={self.segment_length!r}"
            )
        if not is_count(self.max_segments, 1):
            raise ValueError(
                "`max_segments` must be a positive integer. "
                f"Received: max_segments={self.max_segments!r}"
            )
        if (
            self.segment_length is not None
            and self.segment_length * self.max_segments > MAX_SEQUENCE_LENGTH
        ):
            raise ValueError(
                f"max_segments={self.max_segments} segments of "
                f"{self.segment_length} exceed {MAX_SEQUENCE_LENGTH} "
                "positions."
            )
        if self.max_segments > 1 and self.segment_length is None:
            raise ValueError(
                f"max_segments={self.max_segments} needs a `segment_length`."
            )
        if self.memory_length is not None and not is_count(
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
        unknown, at most `max_segments`)."""
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
    `padding_mask` 0), the length then static."""
    missing = length - ops.shape(inputs["token_ids"])[1]
    fill = {"token_ids": 0, "padding_mask": 0, "segment_ids": 3}
    return {
        key: ops.reshape(
            ops.pad(value, [[0, 0], [missing, 0]], constant_values=fill[key]),
            (-1, length),
        )
        for key, value in inputs.items()
    }


@contextlib.contextmanager
def padded_to_max_segments():
    """Within it, graphs traced at an unknown length pad every batch to
    `max_segments` segments instead of branching on its segment count
    (same outputs; for converters without TensorFlow's `switch_case`,
    such as `tf2onnx`). In this thread; blocks may nest."""
    _tracing.padded = getattr(_tracing, "padded", 0) + 1
    try:
        yield
    finally:
        _tracing.padded -= 1


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
    if length is None and count > 1:
        token_ids = check_segment_layout(
            inputs["token_ids"], settings.segment_length, count
        )
        inputs = {**inputs, "token_ids": token_ids}
        branching = not getattr(_tracing, "padded", 0)
        if branching and count <= MAX_BRANCHES and not backbone.remat:
            return _encode_traced_length(
                backbone, inputs, settings, training, cls_only
            )
        # Leading segments of padding only are hidden: exact, not cheaper.
        inputs = _pad_left(inputs, count * settings.segment_length)
    return _encode_segments(
        backbone, inputs, count, settings, training, cls_only
    )


def _encode_traced_length(backbone, inputs, settings, training, cls_only):
    """`encode_last_segment` on a length known only when it runs
    (TensorFlow relaxes the shapes of a function traced at several
    lengths): one branch per segment count, of which each batch runs its
    own, so a batch of fewer segments costs only those. A batch of a
    partial segment beyond the first is padded to whole segments on the
    left; leading padding is never attended, so the outputs are the same.
    """
    segment_length = settings.segment_length
    length = ops.shape(inputs["token_ids"])[1]
    count = ops.clip(
        (length + segment_length - 1) // segment_length,
        1,
        settings.max_segments,
    )

    def branch(count):
        def run(inputs):
            if count > 1:
                inputs = _pad_left(inputs, count * segment_length)
            return _encode_segments(
                backbone, inputs, count, settings, training, cls_only
            )

        return run

    branches = [branch(c) for c in range(1, settings.max_segments + 1)]
    return ops.switch(count - 1, branches, inputs)


def _encode_segments(backbone, inputs, count, settings, training, cls_only):
    """`encode_last_segment` on `count` segments (one: the whole input)."""
    segment_length = settings.segment_length
    token_ids = inputs["token_ids"]
    padding_mask = inputs["padding_mask"]
    segment_ids = inputs["segment_ids"]
    memory_length = settings.memory_length
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
                memory_length=memory_length,
                stop=settings.memory_gradient == "stop",
            )
            for i, layer_input in enumerate(outputs["layer_inputs"])
        ]
        memory_mask = next_memory(
            segment_mask, memory_mask, memory_length=memory_length, stop=False
        )


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetSegmentReader(keras.layers.Layer):
    """Reads packed inputs segment by segment with XLNet's memory and
    returns the last layer's state at the last segment's `<cls>` (its last
    real token), `[batch, hidden_dim]`, with the last encoder block run at
    that position alone.

    The layer of `XLNetClassifier`'s functional graph, so that the graph
    (and Keras' tools built on it: sub-models, `clone_model`, export)
    computes exactly what the classifier computes.

    Args:
        backbone: an `XLNetBackbone`.
        settings: the `SegmentSettings`; settable.
    """

    def __init__(self, backbone, settings, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.settings = settings
        self.built = True

    def call(self, inputs, training=None):
        return encode_last_segment(
            self.backbone,
            inputs,
            self.settings,
            training=training,
            cls_only=True,
        )

    def compute_output_spec(self, inputs, training=None):
        batch = inputs["token_ids"].shape[0]
        return keras.KerasTensor(
            (batch, self.backbone.hidden_dim), dtype=self.compute_dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "settings": dataclasses.asdict(self.settings),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"))
        settings = SegmentSettings(**config.pop("settings"))
        return cls(backbone, settings, **config)

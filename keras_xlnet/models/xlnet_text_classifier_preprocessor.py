"""XLNet's packing of one or two texts into backbone inputs."""

import keras
import numpy as np
from keras_hub.layers import MultiSegmentPacker
from keras_hub.models import TextClassifierPreprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

from keras_xlnet.models.input_checks import MAX_SEQUENCE_LENGTH
from keras_xlnet.models.input_checks import is_count
from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_tokenizer import XLNetTokenizer

try:
    import tensorflow as tf
    import tensorflow.experimental.numpy as tnp
except ImportError:  # pragma: no cover - TF is a dependency.
    tf = tnp = None

CLS_SEGMENT_ID = 2
PAD_SEGMENT_ID = 3
# Marks padding inside the packer, so that a `<pad>` id in the text itself
# can never be mistaken for padding.
_PADDING = -1
# KerasHub's rules for a pair longer than the output: "round_robin" (XLNet's:
# pieces leave the end of the longer text first) or "waterfall" (the first
# text keeps all it can).
TRUNCATIONS = ("round_robin", "waterfall")
# Which pieces of a single text longer than the output are kept.
KEEPS = ("head", "tail", "head_tail")
# Sun et al. (2019) kept the first 128 and the last 382 pieces of 510.
DEFAULT_HEAD_LENGTH = 128
MIN_SEQUENCE_LENGTH = 3
SPECIAL_TOKENS = 2  # `<sep> <cls>` after a single text.


def segmentation_problem(sequence_length, max_segments):
    """Why `sequence_length` positions cannot be read as `max_segments`
    segments (not whole ones, or shorter than a piece, `<sep>` and
    `<cls>`); None if they can."""
    if sequence_length % max_segments:
        return (
            f"sequence_length={sequence_length} is not "
            f"max_segments={max_segments} whole segments."
        )
    if sequence_length // max_segments < MIN_SEQUENCE_LENGTH:
        return (
            f"Segments of {sequence_length // max_segments} positions are "
            f"too short (sequence_length={sequence_length}, "
            f"max_segments={max_segments})."
        )
    return None


def _batch_size(token_ids):
    """The number of texts in tokenized input; None if unknown or single."""
    if isinstance(token_ids, list):
        return len(token_ids)
    shape = getattr(token_ids, "shape", None)
    if shape is None or len(shape) < 2:
        return None
    return shape[0]


def head_and_tail_lengths(keep, budget, head_length=DEFAULT_HEAD_LENGTH):
    """How many pieces `keep` keeps from the beginning and from the end of
    a text longer than `budget` pieces."""
    if keep == "tail":
        return 0, budget
    if keep == "head_tail":
        head = min(head_length, budget // 2)
        return head, budget - head
    return budget, 0


def keep_pieces(pieces, keep, budget, head_length=DEFAULT_HEAD_LENGTH):
    """The pieces of one text, or of a batch of texts, that `keep` keeps
    within `budget`: the first `head`, then the last `tail` of the rest.
    Takes a list (of lists), a numpy vector, a dense `tf` vector or a
    `tf.RaggedTensor` batch, and returns the same kind."""
    head, tail = head_and_tail_lengths(keep, budget, head_length)

    def cut(text, concatenate):
        if not tail:
            return text[:head]
        return concatenate(text[:head], text[head:][-tail:])

    if tf is not None and isinstance(pieces, tf.RaggedTensor):
        if not tail:
            return pieces[:, :head]
        return tf.concat([pieces[:, :head], pieces[:, head:][:, -tail:]], 1)
    if tf is not None and isinstance(pieces, tf.Tensor):
        return cut(pieces, lambda a, b: tf.concat([a, b], 0))
    if isinstance(pieces, np.ndarray):
        return cut(pieces, lambda a, b: np.concatenate([a, b]))
    if pieces and isinstance(pieces[0], (list, np.ndarray)):
        return [keep_pieces(text, keep, budget, head_length) for text in pieces]
    return cut(list(pieces), lambda a, b: a + b)


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetTextClassifierPreprocessor(TextClassifierPreprocessor):
    """Tokenizes and packs texts or text pairs the way XLNet expects.

    A single text becomes `A <sep> <cls>`, a pair `A <sep> B <sep> <cls>`,
    with segment ids `0 ... 0 (1 ... 1) 2` and padding (id `<pad>`, segment
    3, `padding_mask` 0) on the left, so that `<cls>` is the last position,
    as in the original code and Hugging Face. Outputs are
    `{"token_ids", "padding_mask", "segment_ids"}` of `sequence_length`
    positions. Every setting may be changed after construction.

    Args:
        tokenizer: an `XLNetTokenizer`.
        sequence_length: int, the packed length (KerasHub's meaning), at
            most 65,536.
        max_segments: int, how many segments the packed length is read as
            by `XLNetClassifier` (with XLNet's memory), each of
            `segment_length = sequence_length // max_segments` positions.
            A text's pieces run through the segments in order, the last
            segment ends with `<sep> <cls>` and padding fills the first
            ones; a text that fits one segment is packed exactly as with
            `max_segments=1`, behind whole segments of padding.
        truncate: KerasHub's rule for a pair longer than the output:
            `"round_robin"` (default, XLNet's: pieces leave the end of the
            longer text first) or `"waterfall"` (the first text keeps all it
            can).
        keep: which pieces of a single text longer than the output are
            kept: `"head"` (default, the reference's) the first ones,
            `"tail"` the last ones, `"head_tail"` the first `head_length`
            (at most half) and then the last ones, which Sun et al. (2019)
            found best for IMDB reviews. Pairs keep the head.
        head_length: int, the beginning `keep="head_tail"` keeps (128).
        padding_side: `"left"` (XLNet's) or `"right"`; `XLNetClassifier`
            pools the `<cls>` token either way. Several segments need
            `"left"`.

    A pair of texts is passed as `x=(first, second)` (or as one tuple
    inside `(x, y)`): by KerasHub's convention a bare 2-tuple is `(x, y)`,
    so `preprocessor((first, second))` would take `second` as the label.

    Example:
    ```python
    preprocessor = keras_xlnet.XLNetTextClassifierPreprocessor(
        keras_xlnet.XLNetTokenizer(proto="spiece.model"), sequence_length=10
    )
    # `<pad> A <sep> <cls>`: padding on the left, `<cls>` last.
    preprocessor("Hello, my dog is cute")["token_ids"]
    # [5, 17, 11368, 19, 94, 2288, 27, 10920, 4, 3]
    preprocessor("Hello, my dog is cute")["segment_ids"]
    # [3, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    # A pair, `A <sep> B <sep> <cls>`, truncated to 10 ids.
    pair = ("Hello, my dog is cute", "An input text string.")
    preprocessor(x=pair)["token_ids"]
    # [17, 11368, 19, 94, 4, 460, 5272, 1758, 4, 3]
    # (text, label) pairs in tf.data.
    ds = tf.data.Dataset.from_tensor_slices((["A great film."], [1]))
    ds = ds.batch(1).map(preprocessor)
    ```
    """

    backbone_cls = XLNetBackbone
    tokenizer_cls = XLNetTokenizer

    def __init__(
        self,
        tokenizer,
        sequence_length=512,
        truncate="round_robin",
        max_segments=1,
        keep="head",
        head_length=DEFAULT_HEAD_LENGTH,
        padding_side="left",
        **kwargs,
    ):
        self.padding_side = padding_side
        self.max_segments = max_segments
        self.keep = keep
        self.head_length = head_length
        super().__init__(
            tokenizer=tokenizer,
            sequence_length=sequence_length,
            truncate=truncate,
            **kwargs,
        )
        self._check_settings()

    def _setting(self, name, value, valid, expected):
        """Sets a packing setting after checking it; the packer, once
        built, takes it at once."""
        if not valid(value):
            raise ValueError(
                f"`{name}` must be {expected}. Received: {name}={value!r}"
            )
        setattr(self, f"_{name}", value)
        if getattr(self, "packer", None) is not None:
            self._configure_packer()

    @property
    def sequence_length(self):
        """The packed length."""
        return self._sequence_length

    @sequence_length.setter
    def sequence_length(self, value):
        self._setting(
            "sequence_length",
            value,
            lambda v: (
                is_count(v, MIN_SEQUENCE_LENGTH) and v <= MAX_SEQUENCE_LENGTH
            ),
            f"an integer from {MIN_SEQUENCE_LENGTH} (a piece, `<sep>` and "
            f"`<cls>`) to {MAX_SEQUENCE_LENGTH}",
        )

    @property
    def max_segments(self):
        """How many segments the packed length is read as."""
        return self._max_segments

    @max_segments.setter
    def max_segments(self, value):
        self._setting(
            "max_segments",
            value,
            lambda v: is_count(v, 1),
            "a positive integer",
        )

    @property
    def segment_length(self):
        """The length of one segment: `sequence_length // max_segments`."""
        return self.sequence_length // self.max_segments

    @property
    def truncate(self):
        """KerasHub's rule for a pair longer than the output."""
        return self._truncate

    @truncate.setter
    def truncate(self, value):
        self._setting(
            "truncate",
            value,
            lambda v: v in TRUNCATIONS,
            f"one of {TRUNCATIONS}",
        )

    @property
    def keep(self):
        """Which pieces of a single text longer than the output are kept."""
        return self._keep

    @keep.setter
    def keep(self, value):
        self._setting("keep", value, lambda v: v in KEEPS, f"one of {KEEPS}")

    @property
    def head_length(self):
        """The beginning of a text that `keep="head_tail"` keeps."""
        return self._head_length

    @head_length.setter
    def head_length(self, value):
        self._setting(
            "head_length",
            value,
            is_count,
            "a non-negative integer",
        )

    @property
    def padding_side(self):
        """`"left"` (XLNet's) or `"right"`."""
        return self._padding_side

    @padding_side.setter
    def padding_side(self, value):
        self._setting(
            "padding_side",
            value,
            lambda v: v in ("left", "right"),
            "'left' or 'right'",
        )

    def _check_settings(self):
        """Refuses settings that are valid alone but not together."""
        problem = segmentation_problem(self.sequence_length, self.max_segments)
        if problem:
            raise ValueError(problem)
        if self.max_segments > 1 and self.padding_side != "left":
            raise ValueError(
                "Several segments need padding_side='left' (the padding "
                "fills the first segments and `<cls>` ends the last one). "
                f"Received: padding_side={self.padding_side!r}, "
                f"max_segments={self.max_segments}"
            )

    def build(self, input_shape):
        # Skip the parent's packer (BERT-style `[CLS] A [SEP]`).
        keras.layers.Layer.build(self, input_shape)
        self.packer = MultiSegmentPacker(
            start_value=[],
            sep_value=[self.tokenizer.sep_token_id],
            end_value=[
                self.tokenizer.sep_token_id,
                self.tokenizer.cls_token_id,
            ],
            pad_value=_PADDING,
            truncate=self.truncate,
            sequence_length=self.sequence_length,
            padding_side=self.padding_side,
        )

    def _configure_packer(self):
        self.packer.truncate = self.truncate
        self.packer.sequence_length = self.sequence_length
        self.packer.padding_side = self.padding_side

    def _pack(self, x, y, sample_weight, xp):
        self._check_settings()
        x = x if isinstance(x, tuple) else (x,)
        if len(x) > 2:
            raise ValueError(
                f"XLNet packs one or two texts per example; received {len(x)}."
            )
        segments = tuple(self.tokenizer(segment) for segment in x)
        if self.keep != "head" and len(segments) > 1:
            raise ValueError(
                f"keep={self.keep!r} applies to single texts; pairs keep "
                "their heads (cut by `truncate`)."
            )
        sizes = {_batch_size(segment) for segment in segments}
        if len(sizes - {None}) > 1:
            raise ValueError(
                "Both texts of a pair need the same batch size; received "
                f"batches of {[_batch_size(s) for s in segments]}."
            )
        if xp is np:
            # keras-hub < 0.32 packs only lists on the Python path.
            segments = tuple(
                s.tolist() if isinstance(s, np.ndarray) else s for s in segments
            )
        if self.keep != "head":
            budget = self.sequence_length - SPECIAL_TOKENS
            segments = (
                keep_pieces(segments[0], self.keep, budget, self.head_length),
            )
        packed = self.packer(segments, add_start_value=False)
        token_ids, segment_ids = (xp.asarray(t) for t in packed)
        real = token_ids != _PADDING
        # `<cls>` is the last real token, on either padding side.
        after = xp.concatenate(
            [real[..., 1:], xp.zeros_like(real[..., :1])], axis=-1
        )
        is_cls = xp.logical_and(real, xp.logical_not(after))
        segment_ids = xp.where(is_cls, CLS_SEGMENT_ID, segment_ids)
        x = {
            "token_ids": xp.where(real, token_ids, self.tokenizer.pad_token_id),
            "padding_mask": real,
            "segment_ids": xp.where(real, segment_ids, PAD_SEGMENT_ID),
        }
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    @preprocessing_function
    def _call_tf(self, x, y=None, sample_weight=None):
        return self._pack(x, y, sample_weight, tnp)

    def _call_python(self, x, y=None, sample_weight=None):
        return self._pack(x, y, sample_weight, np)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_segments": self.max_segments,
                "keep": self.keep,
                "head_length": self.head_length,
                "padding_side": self.padding_side,
            }
        )
        return config

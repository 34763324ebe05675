"""XLNet's packing of one or two texts into backbone inputs."""

import keras
import numpy as np
from keras_hub.layers import MultiSegmentPacker
from keras_hub.models import TextClassifierPreprocessor
from keras_hub.src.utils.tensor_utils import preprocessing_function

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
# "head" keeps the beginning of each text (for a pair, pieces leave the end
# of the longer text first: XLNet's rule, also called "round_robin" or
# "longest_first"); "waterfall" fills the first text first; "tail" and
# "head_tail" apply to single texts.
TRUNCATIONS = (
    "head",
    "tail",
    "head_tail",
    "round_robin",
    "longest_first",
    "waterfall",
)
SINGLE_TEXT_TRUNCATIONS = ("tail", "head_tail")
# Sun et al. (2019) kept the first 128 and the last 382 pieces of 510.
HEAD_TAIL_HEAD_LENGTH = 128
MIN_SEQUENCE_LENGTH = 3
SPECIAL_TOKENS = 2  # `<sep> <cls>` after a single text.


def _batch_size(token_ids):
    """The number of texts in tokenized input; None if unknown or single."""
    if isinstance(token_ids, list):
        return len(token_ids)
    shape = getattr(token_ids, "shape", None)
    if shape is None or len(shape) < 2:
        return None
    return shape[0]


def _packer_truncation(truncate):
    """The packer's rule: "waterfall", or "round_robin" (XLNet's, and the
    one a text cut beforehand to fit never reaches)."""
    return "waterfall" if truncate == "waterfall" else "round_robin"


def head_and_tail_lengths(truncate, budget):
    """How many pieces `truncate` keeps from the beginning and from the end
    of a text longer than `budget` pieces."""
    if truncate == "tail":
        return 0, budget
    if truncate == "head_tail":
        head = min(HEAD_TAIL_HEAD_LENGTH, budget // 2)
        return head, budget - head
    return budget, 0


def keep_pieces(pieces, truncate, budget):
    """The pieces of one text, or of a batch of texts, that `truncate`
    keeps within `budget`: the first `head`, then the last `tail` of the
    rest. Takes a list (of lists), a numpy vector, a dense `tf` vector or a
    `tf.RaggedTensor` batch, and returns the same kind."""
    head, tail = head_and_tail_lengths(truncate, budget)

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
        return [keep_pieces(text, truncate, budget) for text in pieces]
    return cut(list(pieces), lambda a, b: a + b)


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetTextClassifierPreprocessor(TextClassifierPreprocessor):
    """Tokenizes and packs texts or text pairs the way XLNet expects.

    A single text becomes `A <sep> <cls>`, a pair `A <sep> B <sep> <cls>`,
    with segment ids `0 ... 0 (1 ... 1) 2` and padding (id `<pad>`, segment
    3, `padding_mask` 0) on the left, so that `<cls>` is the last position,
    as in the original code and Hugging Face. Outputs are
    `{"token_ids", "padding_mask", "segment_ids"}`.

    Args:
        tokenizer: an `XLNetTokenizer`.
        sequence_length: int, the padded length of one segment; settable
            later.
        max_segments: int, how many segments of `sequence_length` a text
            may fill (settable later). With more than one, the output has
            `max_segments * sequence_length` positions: the text's pieces
            run through the segments in order, the last segment ends with
            `<sep> <cls>` and padding fills the first ones. A text that fits
            one segment is packed exactly as with `max_segments=1`, behind
            whole segments of padding. `XLNetClassifier` reads such inputs
            segment by segment with XLNet's memory (its `segment_length`).
        truncate: which pieces of a text longer than the output are kept.
            `"head"` (default, the reference's): the first ones; for a pair,
            pieces leave the end of the longer text first (`"round_robin"`
            and `"longest_first"` are other names for this rule).
            `"waterfall"`: a pair's first text keeps all it can. For single
            texts only: `"tail"` keeps the last pieces, `"head_tail"` the
            first 128 (at most half) and then the last ones, which Sun et
            al. (2019) found best for IMDB reviews.
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
        truncate="head",
        padding_side="left",
        max_segments=1,
        **kwargs,
    ):
        if padding_side not in ("left", "right"):
            raise ValueError(
                "`padding_side` must be 'left' or 'right'. "
                f"Received: padding_side={padding_side!r}"
            )
        self.padding_side = padding_side
        self.max_segments = max_segments
        super().__init__(
            tokenizer=tokenizer,
            sequence_length=sequence_length,
            truncate=truncate,
            **kwargs,
        )

    @property
    def sequence_length(self):
        """The padded length; at least 3 (`<sep>`, `<cls>` and a piece)."""
        return self._sequence_length

    @sequence_length.setter
    def sequence_length(self, value):
        if not isinstance(value, int) or value < MIN_SEQUENCE_LENGTH:
            raise ValueError(
                f"`sequence_length` must be an integer of at least "
                f"{MIN_SEQUENCE_LENGTH} (a piece, `<sep>` and `<cls>`). "
                f"Received: sequence_length={value!r}"
            )
        self._sequence_length = value
        self._resize_packer()

    @property
    def truncate(self):
        """Which pieces of a text longer than the output are kept."""
        return self._truncate

    @truncate.setter
    def truncate(self, value):
        if value not in TRUNCATIONS:
            raise ValueError(
                f"`truncate` must be one of {TRUNCATIONS}. "
                f"Received: truncate={value!r}"
            )
        self._truncate = value
        if getattr(self, "packer", None) is not None:
            self.packer.truncate = _packer_truncation(value)

    @property
    def max_segments(self):
        """How many segments of `sequence_length` a text may fill."""
        return self._max_segments

    @max_segments.setter
    def max_segments(self, value):
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                "`max_segments` must be a positive integer. "
                f"Received: max_segments={value!r}"
            )
        if value > 1 and self.padding_side != "left":
            raise ValueError(
                "Several segments need padding_side='left' (the padding "
                "fills the first segments and `<cls>` ends the last one). "
                f"Received: padding_side={self.padding_side!r}, "
                f"max_segments={value}"
            )
        self._max_segments = value
        self._resize_packer()

    @property
    def output_length(self):
        """The number of positions of each packed text."""
        return self.sequence_length * self.max_segments

    def _resize_packer(self):
        if getattr(self, "packer", None) is not None:
            self.packer.sequence_length = self.output_length

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
            truncate=_packer_truncation(self.truncate),
            sequence_length=self.output_length,
            padding_side=self.padding_side,
        )

    def _pack(self, x, y, sample_weight, xp):
        x = x if isinstance(x, tuple) else (x,)
        if len(x) > 2:
            raise ValueError(
                f"XLNet packs one or two texts per example; received {len(x)}."
            )
        segments = tuple(self.tokenizer(segment) for segment in x)
        if self.truncate in SINGLE_TEXT_TRUNCATIONS and len(segments) > 1:
            raise ValueError(
                f"truncate={self.truncate!r} applies to single texts; pairs "
                "are cut with 'head' or 'waterfall'."
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
        if self.truncate in SINGLE_TEXT_TRUNCATIONS:
            budget = self.output_length - SPECIAL_TOKENS
            segments = (keep_pieces(segments[0], self.truncate, budget),)
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
                "padding_side": self.padding_side,
                "max_segments": self.max_segments,
            }
        )
        return config

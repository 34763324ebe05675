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
TRUNCATIONS = ("round_robin", "waterfall", "longest_first")
MIN_SEQUENCE_LENGTH = 3


def _batch_size(token_ids):
    """The number of texts in tokenized input; None if unknown or single."""
    if isinstance(token_ids, list):
        return len(token_ids)
    shape = getattr(token_ids, "shape", None)
    if shape is None or len(shape) < 2:
        return None
    return shape[0]


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
        sequence_length: int, the padded length; settable later.
        truncate: how texts longer than `sequence_length` are cut:
            `"round_robin"` (default) gives each segment a token in turn,
            which for one or two texts keeps exactly what the original's
            longest-first truncation keeps (`"longest_first"` is accepted
            as a name for it); `"waterfall"` fills the first segment first.
        padding_side: `"left"` (XLNet's) or `"right"`; `XLNetClassifier`
            pools the `<cls>` token either way.

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
        padding_side="left",
        **kwargs,
    ):
        if truncate not in TRUNCATIONS:
            raise ValueError(
                f"`truncate` must be one of {TRUNCATIONS}. "
                f"Received: truncate={truncate!r}"
            )
        if padding_side not in ("left", "right"):
            raise ValueError(
                "`padding_side` must be 'left' or 'right'. "
                f"Received: padding_side={padding_side!r}"
            )
        super().__init__(
            tokenizer=tokenizer,
            sequence_length=sequence_length,
            truncate=truncate,
            **kwargs,
        )
        self.padding_side = padding_side

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
        if getattr(self, "packer", None) is not None:
            self.packer.sequence_length = value

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
            truncate="waterfall"
            if self.truncate == "waterfall"
            else "round_robin",
            sequence_length=self.sequence_length,
            padding_side=self.padding_side,
        )

    def _pack(self, x, y, sample_weight, xp):
        x = x if isinstance(x, tuple) else (x,)
        if len(x) > 2:
            raise ValueError(
                f"XLNet packs one or two texts per example; received {len(x)}."
            )
        segments = tuple(self.tokenizer(segment) for segment in x)
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
        config.update({"padding_side": self.padding_side})
        return config

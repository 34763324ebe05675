"""XLNet's SentencePiece tokenizer with the original normalisation."""

import contextlib

import keras
import numpy as np
from keras_hub.src.utils.tensor_utils import preprocessing_function
from keras_hub.tokenizers import SentencePieceTokenizer

from keras_xlnet.models import sentencepiece_graph
from keras_xlnet.models import xlnet_text_normalization as text
from keras_xlnet.models.xlnet_backbone import XLNetBackbone

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - TF is a dependency.
    tf = None

SPECIAL_TOKENS = {
    "unk_token": "<unk>",
    "start_token": "<s>",
    "end_token": "</s>",
    "cls_token": "<cls>",
    "sep_token": "<sep>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
    "eod_token": "<eod>",
    "eop_token": "<eop>",
}


def train_vocabulary(texts, model_prefix, vocabulary_size, **trainer_options):
    """Trains a small SentencePiece model with XLNet's special pieces.

    The pieces `<unk> <s> </s> <cls> <sep> <pad> <mask> <eod> <eop>` get
    ids 0-8 as in the released vocabulary. Meant for demos and tests; the
    released models come with their own `spiece.model`.

    Args:
        texts: iterable of strings.
        model_prefix: path prefix of the `.model` and `.vocab` files.
        vocabulary_size: int, at most (the limit is soft).
        **trainer_options: other `SentencePieceTrainer.train` options, or
            overrides of these (`model_type="bpe"`, say).

    Returns:
        The path of the `.model` file.
    """
    import sentencepiece

    options = dict(
        hard_vocab_limit=False,
        model_type="unigram",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        control_symbols=["<cls>", "<sep>", "<pad>", "<mask>", "<eod>"],
        user_defined_symbols=["<eop>"],
        minloglevel=2,
    )
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(model_prefix),
        vocab_size=vocabulary_size,
        **{**options, **trainer_options},
    )
    return f"{model_prefix}.model"


def _as_text(value, where):
    """Validates one input string; returns it as `str`."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{where} is not valid UTF-8: {value[:40]!r} ({error})"
            ) from None
    if isinstance(value, str):
        return value
    raise TypeError(
        f"XLNetTokenizer takes strings; {where} is {type(value).__name__}: "
        f"{value!r}"
    )


def _texts_and_batching(inputs):
    """Python inputs as `(list of str, batched)`, with clear errors."""
    if inputs is None:
        raise TypeError("XLNetTokenizer takes strings; received None.")
    if isinstance(inputs, (str, bytes)):
        return [_as_text(inputs, "the input")], False
    if keras.ops.is_tensor(inputs) or (tf is not None and tf.is_tensor(inputs)):
        inputs = np.asarray(keras.ops.convert_to_numpy(inputs))
    if isinstance(inputs, np.ndarray):
        if inputs.ndim == 0:
            return [_as_text(inputs.item(), "the input")], False
        if inputs.ndim != 1:
            raise ValueError(
                f"XLNetTokenizer takes a string or a 1-D batch of strings; "
                f"received an array of shape {inputs.shape}."
            )
        inputs = inputs.tolist()
    if isinstance(inputs, (list, tuple)):
        return [_as_text(x, f"item {i}") for i, x in enumerate(inputs)], True
    raise TypeError(
        "XLNetTokenizer takes a string or a list of strings; received "
        f"{type(inputs).__name__}: {inputs!r}"
    )


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetTokenizer(SentencePieceTokenizer):
    """XLNet's SentencePiece tokenizer, identical to the original's ids.

    Before SentencePiece, text is normalised as in XLNet's `preprocess_text`
    (whitespace runs collapsed, ``` `` ``` and `''` turned into `"`, NFKD
    with combining characters removed, optional lower-casing); after it,
    pieces like `▁2000,` are split into `▁2000` and `,` (the original's
    digit-comma rule). The same ids come out of the eager Python path (the
    Python SentencePiece library) and of the TensorFlow path used inside
    `tf.data`, `tf.function` and SavedModels, which is written in
    TensorFlow ops (`sentencepiece_graph`: no Python callback; TensorFlow
    Text's own SentencePiece breaks ties such as `????` differently).

    Special tokens and their ids are attributes: `cls_token_id`,
    `sep_token_id`, `pad_token_id`, `mask_token_id`, `unk_token_id`, ...

    Args:
        proto: the SentencePiece model: a file path or its bytes.
        lowercase: bool, lower-case the text (uncased vocabularies only).

    Example:
    ```python
    tokenizer = keras_xlnet.XLNetTokenizer(proto="spiece.model")
    tokenizer("Hello, my dog is cute")
    # [17, 11368, 19, 94, 2288, 27, 10920]
    tokenizer.detokenize([17, 11368, 19, 94, 2288, 27, 10920])
    # "Hello, my dog is cute"
    ```
    """

    backbone_cls = XLNetBackbone

    def __init__(self, proto=None, lowercase=False, **kwargs):
        for name, token in SPECIAL_TOKENS.items():
            self._add_special_token(token, name)
        self.lowercase = lowercase
        # Set with the vocabulary.
        self._segmenter = self._graph_problem = None
        super().__init__(proto=proto, **kwargs)

    # === Python path ===
    def _pieces_python(self, normalized):
        return self._sentence_piece_spm.encode(normalized, out_type=str)

    def _encode_python(self, value):
        pieces = self._pieces_python(
            text.normalize_python(value, lowercase=self.lowercase)
        )
        pieces = text.split_digit_commas_python(pieces, self._pieces_python)
        return [self._sentence_piece_spm.piece_to_id(p) for p in pieces]

    def _tokenize_spm(self, inputs):
        self._maybe_initialized_spm()
        texts, batched = _texts_and_batching(inputs)
        ids = [self._encode_python(t) for t in texts]
        if self.sequence_length:
            ids = [
                row[: self.sequence_length]
                + [self.pad_token_id] * (self.sequence_length - len(row))
                for row in ids
            ]
            ids = np.array(ids, dtype=self.compute_dtype)
            return ids if batched else ids[0]
        if not batched:
            return np.array(ids[0], dtype=self.compute_dtype)
        return ids

    # === TensorFlow path (tf.data, tf.function, SavedModel) ===
    def _set_proto_tf(self, proto):
        super()._set_proto_tf(proto)
        # KerasHub's TensorFlow Text tokenizer (detokenize, id lookups)
        # takes the named model resource too, which outlives a new seed.
        self._sentence_piece._model_resource = (
            sentencepiece_graph.sentencepiece_model_resource(proto)
        )
        try:
            self._segmenter = sentencepiece_graph.UnigramSegmenter(
                proto, jit_compile=True
            )
            self._graph_problem = None
        except ValueError as problem:
            self._segmenter, self._graph_problem = None, str(problem)

    @contextlib.contextmanager
    def search_without_xla(self):
        """Within it (in this thread), graphs traced through the TensorFlow
        path run the segmentation's search as plain TensorFlow ops rather
        than compiled by XLA (same ids, slower): for a SavedModel, since
        TensorFlow Serving compiles XLA on CPU only when started with
        `--xla_cpu_compilation_enabled`."""
        with sentencepiece_graph.plain_search():
            yield

    @preprocessing_function
    def _tokenize_tf(self, inputs):
        self._maybe_initialized_tf()
        if self._segmenter is None:
            raise ValueError(
                "XLNetTokenizer's TensorFlow path (tf.data, tf.function, "
                "SavedModel) cannot tokenize with this vocabulary: "
                f"{self._graph_problem}. Its Python path can."
            )
        inputs = tf.convert_to_tensor(inputs)
        if inputs.dtype != tf.string:
            raise TypeError(
                f"XLNetTokenizer takes strings; received a {inputs.dtype} "
                "tensor."
            )
        unbatched = inputs.shape.rank == 0
        if unbatched:
            inputs = inputs[tf.newaxis]
        # Refuses invalid UTF-8, as the Python path does: valid text is
        # its own UTF-8 transcoding.
        repaired = tf.strings.unicode_transcode(
            inputs, "UTF-8", "UTF-8", errors="replace"
        )
        valid = tf.debugging.Assert(
            tf.reduce_all(tf.equal(repaired, inputs)),
            ["XLNetTokenizer: a text is not valid UTF-8."],
        )
        with tf.control_dependencies([valid]):
            inputs = tf.identity(inputs)
        normalized = sentencepiece_graph.normalize(inputs, self.lowercase)
        ids = tf.cast(self._segmenter.encode(normalized), self.compute_dtype)
        if self.sequence_length:
            ids = ids.to_tensor(
                shape=[None, self.sequence_length],
                default_value=self.pad_token_id,
            )
        return ids[0] if unbatched else ids

    def get_config(self):
        config = super().get_config()
        config.update({"lowercase": self.lowercase})
        return config

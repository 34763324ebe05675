"""Raw text into XLNet's permutation language modelling examples."""

import hashlib

import keras
import numpy as np
from keras_hub.models import Preprocessor

from keras_xlnet.data import permutation_sampling as sampling
from keras_xlnet.models.input_checks import is_count
from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_text_classifier_preprocessor import CLS_SEGMENT_ID
from keras_xlnet.models.xlnet_text_classifier_preprocessor import PAD_SEGMENT_ID
from keras_xlnet.models.xlnet_tokenizer import XLNetTokenizer

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - TF is a dependency.
    tf = None

SPECIAL_TOKENS = 3  # `<sep>` after each of A and B, then `<cls>`.


class PretrainingSettings:
    """The sampling settings of XLNet's pretraining, checked together.

    Defaults are the paper's Large setting.
    """

    NAMES = (
        "sequence_length",
        "reuse_length",
        "perm_size",
        "mask_alpha",
        "mask_beta",
        "num_predict",
        "max_gram",
    )

    def __init__(
        self,
        sequence_length=512,
        reuse_length=256,
        perm_size=256,
        mask_alpha=6,
        mask_beta=1,
        num_predict=85,
        max_gram=5,
    ):
        values = dict(locals())
        del values["self"]
        for name, value in values.items():
            if not is_count(value, 1):
                raise ValueError(
                    f"`{name}` must be a positive integer. Received: "
                    f"{name}={value!r}"
                )
        rest = sequence_length - reuse_length
        problems = [
            (
                rest < SPECIAL_TOKENS + 2,
                f"sequence_length={sequence_length} leaves no room for A "
                f"<sep> B <sep> <cls> after reuse_length={reuse_length}",
            ),
            (
                reuse_length % perm_size or rest % perm_size,
                f"perm_size={perm_size} must divide reuse_length="
                f"{reuse_length} and sequence_length - reuse_length={rest}",
            ),
            (
                num_predict - num_predict // 2 > reuse_length
                or num_predict // 2 > rest,
                f"num_predict={num_predict} asks for more targets than "
                f"there are positions: {num_predict - num_predict // 2} in "
                f"the reuse part of {reuse_length}, {num_predict // 2} in "
                f"the rest of {rest}",
            ),
            (
                mask_beta > mask_alpha,
                f"mask_beta={mask_beta} exceeds mask_alpha={mask_alpha}: "
                "a span of one piece would have no context",
            ),
        ]
        for failed, problem in problems:
            if failed:
                raise ValueError(f"{problem}.")
        self.__dict__.update(values)

    def config(self):
        return {name: getattr(self, name) for name in self.NAMES}

    def goals(self):
        """Targets sampled in the reuse part and in the rest."""
        rest = self.num_predict // 2
        return self.num_predict - rest, rest


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetPermutationLMPreprocessor(Preprocessor):
    """Texts into XLNet's pretraining examples, one example per text.

    Each text becomes `A <sep> B <sep> <cls>` over `sequence_length`
    positions, B continuing A after a random cut past its first
    `reuse_length` pieces (a text no longer than that has an empty B); the
    first `reuse_length` positions are the part whose states a next step
    could keep as memory. A shorter text is padded on the left (its reuse
    part then holds padding first), a longer one keeps its first
    `sequence_length - 3` pieces (KerasHub's convention). Targets are
    sampled as the original pretraining data: spans of whole-word starts
    (`mask_alpha`, `mask_beta`, up to `max_gram` pieces), `num_predict -
    num_predict // 2` of them in the reuse part and `num_predict // 2` in
    the rest (of a part partly padded, the share of its real pieces: a
    short text keeps the density of targets), never `<sep>`, `<cls>` or
    padding; the factorization order is drawn per block of `perm_size`
    (`data.permutation_sampling`).

    An example's random draws depend on the seed and the text's pieces
    alone, so that the same text gives the same example eagerly, in
    `tf.data` and in any order (the original also fixes targets when it
    writes its records); change `seed` for other draws.

    Returns `(x, y, sample_weight)`: `x` the model's inputs
    (`token_ids`, `padding_mask`, `segment_ids`, `perm_mask`,
    `target_mapping`), `y` the target ids `[batch, num_predict]` and
    `sample_weight` the `target_mask`.

    Args:
        tokenizer: an `XLNetTokenizer`.
        sequence_length, reuse_length, perm_size, mask_alpha, mask_beta,
            num_predict, max_gram: the sampling settings; the defaults are
            the paper's Large setting (512, 256, 256, 6, 1, 85, 5).
        seed: int, the seed of the draws.

    Example:
    ```python
    tokenizer = keras_xlnet.XLNetTokenizer(proto="spiece.model")
    preprocessor = keras_xlnet.XLNetPermutationLMPreprocessor(
        tokenizer, sequence_length=64, reuse_length=32, perm_size=32,
        num_predict=10,
    )
    x, y, target_mask = preprocessor(["The quick brown fox jumped."])
    x["perm_mask"].shape
    # (1, 64, 64)
    y.shape  # The target ids.
    # (1, 10)
    ```
    """

    backbone_cls = XLNetBackbone
    tokenizer_cls = XLNetTokenizer

    def __init__(
        self,
        tokenizer,
        sequence_length=512,
        reuse_length=256,
        perm_size=256,
        mask_alpha=6,
        mask_beta=1,
        num_predict=85,
        max_gram=5,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.settings = PretrainingSettings(
            sequence_length,
            reuse_length,
            perm_size,
            mask_alpha,
            mask_beta,
            num_predict,
            max_gram,
        )
        if not is_count(seed):
            raise ValueError(
                f"`seed` must be a non-negative integer. Received: {seed!r}"
            )
        self.seed = seed
        self._word_starts = None

    @property
    def sequence_length(self):
        return self.settings.sequence_length

    def word_starts(self):
        """bool `[vocabulary_size]`: the pieces a span may start at."""
        if self._word_starts is None:
            tokenizer = self.tokenizer
            self._word_starts = np.array(
                [
                    sampling.is_word_start(tokenizer.id_to_token(i))
                    for i in range(tokenizer.vocabulary_size())
                ]
            )
        return self._word_starts

    def _rng(self, pieces):
        digest = hashlib.sha256(np.asarray(pieces, "int64").tobytes())
        return np.random.default_rng(
            [self.seed, int.from_bytes(digest.digest()[:8], "little")]
        )

    def example(self, pieces):
        """One example (a dict of numpy arrays) from a text's piece ids."""
        settings = self.settings
        length, reuse = settings.sequence_length, settings.reuse_length
        tokenizer = self.tokenizer
        pieces = np.asarray(pieces, "int32")[: length - SPECIAL_TOKENS]
        rng = self._rng(pieces)
        # A and B share what follows the reuse part, cut at random.
        body = len(pieces) - reuse
        cut = reuse + (int(rng.integers(1, body)) if body > 1 else body)
        cut = max(cut, 0)
        token_ids = np.concatenate(
            [
                pieces[:cut],
                [tokenizer.sep_token_id],
                pieces[cut:],
                [tokenizer.sep_token_id, tokenizer.cls_token_id],
            ]
        ).astype("int32")
        segment_ids = np.concatenate(
            [
                np.zeros(cut + 1, "int32"),
                np.ones(len(pieces) - cut + 1, "int32"),
                [CLS_SEGMENT_ID],
            ]
        )
        padding = length - len(token_ids)
        token_ids = np.pad(
            token_ids, (padding, 0), constant_values=tokenizer.pad_token_id
        )
        segment_ids = np.pad(
            segment_ids, (padding, 0), constant_values=PAD_SEGMENT_ID
        )
        return self.sampled_example(token_ids, segment_ids, padding, rng)

    def sampled_example(
        self, token_ids, segment_ids, padding, rng, reverse=False
    ):
        """The example of a laid-out sequence (`padding` pad pieces on the
        left): its targets sampled in the reuse part and in the rest,
        then its factorization order (`data.permutation_sampling`).
        `reverse`: spans sampled from the end, as the original samples the
        backward rows of `bi_data`."""
        settings = self.settings
        length, reuse = settings.sequence_length, settings.reuse_length
        tokenizer = self.tokenizer
        real = np.arange(length) >= padding
        functional = real & np.isin(
            token_ids, [tokenizer.sep_token_id, tokenizer.cls_token_id]
        )
        word_starts = self.word_starts()[token_ids] & real
        is_target = np.zeros(length, bool)
        for part, goal in zip(
            (slice(0, reuse), slice(reuse, length)), settings.goals()
        ):
            first_real = max(padding - part.start, 0)
            span = slice(part.start + first_real, part.stop)
            size = span.stop - span.start
            # A part partly padded gets targets at the same density.
            goal = round(goal * size / (part.stop - part.start))
            is_target[span] = sampling.sample_span_targets(
                word_starts[span],
                goal,
                rng,
                settings.mask_alpha,
                settings.mask_beta,
                settings.max_gram,
                reverse=reverse,
            )
        example = sampling.two_stream_inputs(
            token_ids,
            is_target,
            functional,
            reuse,
            settings.perm_size,
            settings.num_predict,
            rng,
        )
        example.update(
            token_ids=token_ids,
            padding_mask=real.astype("int32"),
            segment_ids=segment_ids,
        )
        return example

    def stack_examples(self, examples):
        """Examples (dicts of arrays) as one batch of `_SHAPES` arrays."""
        examples = list(examples)
        return {
            name: np.stack([e[name] for e in examples]).astype(dtype)
            for name, (dtype, _) in _SHAPES.items()
        }

    def _finish(self, arrays):
        x = {name: arrays[name] for name in _INPUTS}
        return keras.utils.pack_x_y_sample_weight(
            x, arrays["target_ids"], arrays["target_mask"]
        )

    def _in_graph(self, make, inputs, batch_size):
        """`make(*inputs)` (NumPy, returning a `stack_examples` dict) as
        TensorFlow ops with static shapes; `(x, y, target_mask)`."""
        outputs = tf.numpy_function(
            lambda *args: [make(*args)[name] for name in _SHAPES],
            inputs,
            [tf.as_dtype(dtype) for dtype, _ in _SHAPES.values()],
            stateful=False,
        )
        arrays = {}
        for (name, (_, shape)), output in zip(_SHAPES.items(), outputs):
            sizes = [getattr(self.settings, size) for size in shape]
            output.set_shape([batch_size] + sizes)
            arrays[name] = output
        return self._finish(arrays)

    def batches_from_indices(self, indices, make_batch, batch_size):
        """`indices` (a `tf.data.Dataset` of int64) mapped through
        `make_batch` (index -> `stack_examples` dict) into `(x, y,
        target_mask)` batches of `batch_size`."""
        return indices.map(
            lambda index: self._in_graph(make_batch, [index], batch_size)
        )

    def call(self, x, y=None, sample_weight=None):
        if self._use_tf_workflow():
            return self._call_tf(x, y, sample_weight)
        return self._call_python(x, y, sample_weight)

    def _call_python(self, x, y=None, sample_weight=None):
        _refuse_labels(y, sample_weight)
        pieces = self.tokenizer(_as_batch(x))
        return self._finish(self.stack_examples(map(self.example, pieces)))

    def _call_tf(self, x, y=None, sample_weight=None):
        _refuse_labels(y, sample_weight)
        texts = tf.convert_to_tensor(x)
        unbatched = texts.shape.rank == 0
        pieces = self.tokenizer(texts[tf.newaxis] if unbatched else texts)

        def make(values, row_splits):
            rows = np.split(values, row_splits[1:-1])
            return self.stack_examples(map(self.example, rows))

        outputs = self._in_graph(
            make, [pieces.flat_values, pieces.row_splits], pieces.shape[0]
        )
        if unbatched:
            return tf.nest.map_structure(lambda t: t[0], outputs)
        return outputs

    # === Generation ===

    def generate_preprocess(self, x, sequence_length=None):
        """Prompts into `{"token_ids", "padding_mask"}`, right-padded to
        `sequence_length` (default: the preprocessor's), for
        `XLNetPermutationLM.generate`; prompts are not given `<sep>` or
        `<cls>`."""
        length = sequence_length or self.sequence_length
        pieces = self.tokenizer(_as_batch(x))
        rows = [list(np.asarray(p, "int32")) for p in pieces]
        longest = max(len(r) for r in rows)
        if longest >= length:
            raise ValueError(
                f"A prompt of {longest} pieces leaves nothing to generate "
                f"within max_length={length}."
            )
        if min(len(r) for r in rows) == 0:
            raise ValueError("Every prompt needs at least one piece.")
        token_ids = np.full((len(rows), length), self.tokenizer.pad_token_id)
        padding_mask = np.zeros((len(rows), length), bool)
        for i, row in enumerate(rows):
            token_ids[i, : len(row)] = row
            padding_mask[i, : len(row)] = True
        return {
            "token_ids": token_ids.astype("int32"),
            "padding_mask": padding_mask,
        }

    def generate_postprocess(self, x):
        """Generated `{"token_ids", "padding_mask"}` into strings."""
        token_ids = keras.ops.convert_to_numpy(x["token_ids"])
        padding_mask = keras.ops.convert_to_numpy(x["padding_mask"])
        stops = {self.tokenizer.end_token_id, self.tokenizer.pad_token_id}
        rows = [
            [int(t) for t, m in zip(ids, mask) if m and int(t) not in stops]
            for ids, mask in zip(token_ids, padding_mask)
        ]
        return [self.tokenizer.detokenize(row) for row in rows]

    def get_config(self):
        config = super().get_config()
        config.update(self.settings.config())
        config["seed"] = self.seed
        return config


# name: (dtype, shape after the batch; setting names are their sizes).
_SHAPES = {
    "token_ids": ("int32", ("sequence_length",)),
    "padding_mask": ("int32", ("sequence_length",)),
    "segment_ids": ("int32", ("sequence_length",)),
    "perm_mask": ("float32", ("sequence_length", "sequence_length")),
    "target_mapping": ("float32", ("num_predict", "sequence_length")),
    "target_ids": ("int32", ("num_predict",)),
    "target_mask": ("float32", ("num_predict",)),
}
_INPUTS = (
    "token_ids",
    "padding_mask",
    "segment_ids",
    "perm_mask",
    "target_mapping",
)


def _as_batch(x):
    return [x] if isinstance(x, (str, bytes)) else x


def _refuse_labels(y, sample_weight):
    if y is not None or sample_weight is not None:
        raise ValueError(
            "XLNetPermutationLMPreprocessor makes its own targets from the "
            "text; pass texts alone."
        )

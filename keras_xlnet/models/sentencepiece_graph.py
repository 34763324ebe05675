"""XLNet's tokenization in TensorFlow ops, with the Python library's ids.

TensorFlow Text's bundled SentencePiece breaks ties between equally scored
segmentations differently from the Python SentencePiece library that the
reference (and Hugging Face's slow tokenizer) uses, so its ids differ on
inputs such as `????`. Here TensorFlow Text only normalises (the model's
own character map: the concatenated pieces it returns are the normalised
text, unknown characters included); the segmentation is the Python
library's unigram search, run in TensorFlow ops over every text of a batch
at once, as measured against the library (SentencePiece 0.2):

- one step per character, left to right; at each end position every
  piece ending there (at most `max_piece_length` characters back) adds its
  score from the model file (0 for user-defined pieces) to the best path
  before it, in float32; the best candidate wins, a tie goes to the piece
  that starts first;
- a character that starts no piece of its own length is `<unk>` (the
  lowest score minus 10), and runs of `<unk>` become one `<unk>`;
- the path is read back from the end.

The path's running score is the library's own float32 sum from the start
of the text, so that near ties fall as they fall there. XLNet's text
normalisation and digit-comma rule (`xlnet_text_normalization`) are
written in TensorFlow ops too. The whole graph has no Python callback: it
runs in `tf.data` on any host (there the per-character search is compiled
by XLA) and is saved in a SavedModel (there it runs as plain ops).
"""

import contextlib
import functools
import hashlib
import sys
import threading
import unicodedata

import numpy as np
import tensorflow as tf

from keras_xlnet.models.xlnet_text_normalization import SPIECE_UNDERLINE

# SentencePiece's piece types.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNKNOWN_PENALTY = 10.0
# Substrings are looked up by a polynomial hash of their code points.
HASH_FACTOR = 1099511628211
# The library rebases its running score when it passes this size.
SCORE_RESET = 100000.0
# With XLA, the search runs over lengths padded to a power of two, at
# least this (one compiled program per length).
MIN_SEARCH_LENGTH = 256


@functools.cache
def character_class(name):
    """A regular-expression class of the code points for which the running
    Python's `str.isspace` (`"space"`), `unicodedata.combining`
    (`"combining"`) or `str.isdigit` (`"digit"`) holds."""
    predicate = {
        "space": str.isspace,
        "combining": unicodedata.combining,
        "digit": str.isdigit,
    }[name]
    runs = []  # [first, last] code points of consecutive runs.
    for code in range(sys.maxunicode + 1):
        if not predicate(chr(code)):
            continue
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    parts = [
        f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}"
        for a, b in runs
    ]
    return "[" + "".join(parts) + "]"


def normalize(texts, lowercase=False):
    """XLNet's `preprocess_text` on a string tensor: whitespace runs
    collapsed and stripped, ``` `` ``` and `''` turned into `"`, NFKD with
    combining characters dropped, optionally lower-cased."""
    import tensorflow_text

    texts = tf.strings.regex_replace(texts, character_class("space") + "+", " ")
    texts = tf.strings.regex_replace(texts, "^ | $", "")
    texts = tf.strings.regex_replace(texts, "``|''", '"')
    texts = tensorflow_text.normalize_utf8(texts, "NFKD")
    texts = tf.strings.regex_replace(texts, character_class("combining"), "")
    if lowercase:
        texts = _lower(texts)
    return texts


# Per thread: how many `plain_search` blocks are open.
_tracing = threading.local()


@contextlib.contextmanager
def plain_search():
    """Within it (in this thread), graphs traced through any segmenter run
    the search as plain TensorFlow ops, not compiled by XLA."""
    _tracing.plain_search = getattr(_tracing, "plain_search", 0) + 1
    try:
        yield
    finally:
        _tracing.plain_search -= 1


def unsupported_model(model):
    """Why this graph cannot segment with `model` (a parsed
    `ModelProto`), or `None`: it reproduces unigram models without byte
    fallback (XLNet's)."""
    spec = model.trainer_spec
    if spec.model_type != spec.UNIGRAM:
        kind = spec.ModelType.Name(spec.model_type)
        return f"it segments unigram models; this one is {kind}"
    if spec.byte_fallback:
        return "it does not reproduce byte fallback, which this model uses"
    return None


def _lower(texts):
    """`str.lower` of a `[batch]` string tensor. `tf.strings.lower` (as
    every TensorFlow string op taking C strings) stops at a NUL character,
    so the texts are lowered in parts between NULs (a NUL is no cased
    letter: Python's final-sigma rule sees it as a boundary too)."""
    codes = tf.strings.unicode_decode(texts, "UTF-8")
    flat, rows = codes.flat_values, codes.value_rowids()
    nul = tf.equal(flat, 0)
    first = tf.equal(tf.range(tf.size(rows, out_type=tf.int64)), 0)
    starts = (
        first
        | tf.not_equal(rows, tf.roll(rows, 1, 0))
        | nul
        | tf.roll(nul, 1, 0)
    )
    part_of = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    parts = tf.strings.unicode_encode(
        tf.RaggedTensor.from_value_rowids(flat, part_of), "UTF-8"
    )
    lowered = tf.where(
        tf.equal(parts, "\x00"), parts, tf.strings.lower(parts, "utf-8")
    )
    part_rows = tf.boolean_mask(rows, starts)
    return tf.strings.reduce_join(
        tf.RaggedTensor.from_value_rowids(
            lowered, part_rows, nrows=tf.shape(texts, out_type=tf.int64)[0]
        ),
        axis=-1,
    )


class UnigramSegmenter(tf.Module):
    """The Python SentencePiece library's unigram segmentation as a
    TensorFlow graph.

    Args:
        proto: the serialized SentencePiece model (bytes).
        jit_compile: whether the per-character search runs compiled by
            XLA (about 10x faster on CPU; for `tf.data`). Leave it off for
            a graph to be saved: TensorFlow Serving runs XLA on CPU only
            when started with `--xla_cpu_compilation_enabled`.

    Example:
    ```python
    segmenter = UnigramSegmenter(open("spiece.model", "rb").read())
    segmenter.encode(tf.constant(["Hello ????"]))
    # <tf.RaggedTensor [[17, 11368, 17, 82, 22180]]>
    ```
    """

    def __init__(self, proto, jit_compile=False, name=None):
        from sentencepiece import sentencepiece_model_pb2

        super().__init__(name=name)
        model = sentencepiece_model_pb2.ModelProto()
        model.ParseFromString(proto)
        problem = unsupported_model(model)
        if problem:
            raise ValueError(problem)
        types = np.array([p.type for p in model.pieces])
        scores = np.array([p.score for p in model.pieces], "float32")
        min_score = scores[types == NORMAL].min()
        self.unknown_id = int(np.flatnonzero(types == UNKNOWN)[0])
        self.unknown_score = float(np.float32(min_score - UNKNOWN_PENALTY))
        matched = np.flatnonzero((types == NORMAL) | (types == USER_DEFINED))
        pieces = [model.pieces[i].piece for i in matched]
        self.max_piece_length = max(len(p) for p in pieces)
        # The library scores a user-defined piece 0.1 per byte beyond one.
        for i in np.flatnonzero(types == USER_DEFINED):
            length = len(model.pieces[i].piece.encode("utf-8"))
            scores[i] = np.float32(0.1 * (length - 1))
        self.piece_scores = tf.constant(scores)
        self.piece_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(pieces), tf.constant(matched, tf.int64)
            ),
            default_value=-1,
        )
        # The pieces' code points (padded with -1) and their hashes, for
        # looking substrings up by integers; a hit is checked against the
        # code points, so a collision cannot pass.
        codes = np.full((len(types), self.max_piece_length), -1, "int64")
        for i, piece in zip(matched, pieces):
            codes[i, : len(piece)] = [ord(c) for c in piece]
        self.piece_codes = tf.constant(codes)
        hashes = _code_hashes(codes[matched])
        if len(set(hashes.tolist())) != len(hashes):
            raise ValueError("Two pieces share a hash; change HASH_FACTOR.")
        self.piece_hashes = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(hashes), tf.constant(matched, tf.int64)
            ),
            default_value=-1,
        )
        # A vocabulary without "," has the reference split off `<unk>`.
        self.comma_id = next(
            (int(i) for i in matched if model.pieces[i].piece == ","),
            self.unknown_id,
        )
        self.normalizer = sentencepiece_model_resource(proto)
        self.jit_compile = jit_compile
        self._compiled_search = tf.function(
            self._search, jit_compile=True, autograph=False
        )

    def _unknown_like(self, ids):
        return tf.fill(tf.shape(ids), tf.constant(self.unknown_id, ids.dtype))

    def normalize(self, texts):
        """SentencePiece's normalisation of a `[batch]` string tensor:
        the model's character map, whitespace escaped as `▁`, a leading
        `▁`."""
        pieces, splits = _text_ops().sentencepiece_tokenize_op(
            self.normalizer.resource_handle,
            texts,
            nbest_size=0,
            alpha=1.0,
            add_bos=False,
            add_eos=False,
            reverse=False,
            out_type=tf.string,
        )
        return tf.strings.reduce_join(
            tf.RaggedTensor.from_row_splits(pieces, splits), axis=-1
        )

    def encode(self, texts):
        """The ids of `[batch]` texts (already XLNet-normalised), with the
        digit-comma rule: a `[batch, None]` ragged int64 tensor."""
        characters, ids, starts, ends = self._pieces(self.normalize(texts))
        return self._split_digit_commas(characters, ids, starts, ends)

    def _pieces(self, normalized):
        """The best path over each normalised text: its characters, and
        its pieces' ids, first and last characters (end exclusive), each
        `[batch, None]` ragged; runs of `<unk>` merged."""
        characters = tf.strings.unicode_split(normalized, "UTF-8")
        candidates = self._candidates(characters)
        choices = self._best_lengths(candidates)
        lengths = _backtrack(choices, characters.row_lengths())
        ends = tf.ragged.boolean_mask(
            tf.broadcast_to(
                tf.range(1, tf.shape(lengths)[1] + 1, dtype=tf.int64),
                tf.shape(lengths, out_type=tf.int64),
            ),
            lengths > 0,
        )
        sizes = tf.ragged.boolean_mask(lengths, lengths > 0)
        starts = ends - sizes
        ids = tf.gather_nd(
            candidates,
            tf.stack(
                [
                    tf.cast(ends.value_rowids(), tf.int64),
                    starts.flat_values,
                    sizes.flat_values - 1,
                ],
                axis=1,
            ),
        )
        ids = ends.with_flat_values(ids)
        keep = _not_a_repeated_unknown(ids, self.unknown_id)
        return (
            characters,
            tf.ragged.boolean_mask(ids, keep),
            tf.ragged.boolean_mask(starts, keep),
            tf.ragged.boolean_mask(ends, keep),
        )

    def _candidates(self, characters):
        """`[batch, N, K]`: at start position `s` and length `k` (1..K),
        the id of the piece `characters[s:s + k]`, `<unk>` for a character
        that starts no one-character piece, -1 for none."""
        codes = tf.strings.unicode_decode(
            tf.strings.reduce_join(characters, axis=1), "UTF-8"
        )
        # Over the batch's code points laid end to end: a piece may not
        # run past its text's last character.
        flat = tf.cast(codes.flat_values, tf.int64)
        count = tf.size(flat, out_type=tf.int64)
        room = tf.gather(codes.row_limits(), codes.value_rowids()) - tf.range(
            count
        )
        padded = tf.pad(flat, [[0, self.max_piece_length]], constant_values=-1)
        running = tf.zeros_like(flat)
        by_length = []
        for k in range(1, self.max_piece_length + 1):
            shifted = padded[k - 1 : k - 1 + count]
            running = running * HASH_FACTOR + shifted + 1
            found = self.piece_hashes.lookup(running)
            by_length.append(tf.where(k <= room, found, -tf.ones_like(found)))
        candidates = self._checked(tf.stack(by_length, axis=-1), flat)
        single = candidates[:, :1]
        single = tf.where(single < 0, self._unknown_like(single), single)
        candidates = tf.concat([single, candidates[:, 1:]], axis=-1)
        return codes.with_flat_values(candidates).to_tensor(default_value=-1)

    def _checked(self, candidates, flat):
        """`candidates` (`[positions, K]`) with every hash hit whose code
        points are not the piece's set to -1."""
        hits = tf.where(candidates >= 0)  # [H, 2]: position, length - 1.
        ids = tf.gather_nd(candidates, hits)
        offsets = tf.range(self.max_piece_length, dtype=tf.int64)
        within = offsets[None, :] <= hits[:, 1:]
        position = tf.minimum(
            hits[:, :1] + offsets[None, :], tf.size(flat, out_type=tf.int64) - 1
        )
        text = tf.gather(flat, position)
        piece = tf.gather(self.piece_codes, ids)
        same = tf.reduce_all(~within | tf.equal(text, piece), axis=1)
        return tf.tensor_scatter_nd_update(
            candidates,
            tf.boolean_mask(hits, ~same),
            -tf.ones_like(tf.boolean_mask(ids, ~same)),
        )

    def _best_lengths(self, candidates):
        """`[batch, N]`: the search (`_search`), compiled by XLA when
        `jit_compile` is set, over positions padded to a power of two (at
        least `MIN_SEARCH_LENGTH`), so that few programs are compiled."""
        if not self.jit_compile or getattr(_tracing, "plain_search", 0):
            return self._search(candidates)
        size = tf.shape(candidates)[1]
        bits = tf.math.ceil(tf.math.log(tf.cast(size, tf.float64)) / np.log(2))
        length = tf.maximum(tf.cast(2**bits, tf.int32), MIN_SEARCH_LENGTH)
        padding = length - size
        padded = tf.pad(
            candidates, [[0, 0], [0, padding], [0, 0]], constant_values=-1
        )
        return self._compiled_search(padded)[:, :size]

    def _search(self, candidates):
        """`[batch, N]`: for each end position, the length of the last
        piece of the best path ending there, found as the library finds it
        (SentencePiece 0.2's optimised encoder): start by start, each piece
        from the start offering `score + best score at the start` (float32)
        to its end, which takes it when unset or beaten; a start whose best
        score passes 1e5 in size first subtracts it from the ends waiting."""
        found = candidates >= 0
        safe = tf.maximum(candidates, 0)
        scores = tf.where(
            safe == self.unknown_id,
            tf.constant(self.unknown_score, tf.float32),
            tf.gather(self.piece_scores, safe),
        )
        # Start-major, with a last start offering nothing (the loop's end).
        scores = tf.pad(
            tf.transpose(scores, [1, 0, 2]), [[0, 1], [0, 0], [0, 0]]
        )
        found = tf.pad(tf.transpose(found, [1, 0, 2]), [[0, 1], [0, 0], [0, 0]])
        batch = tf.shape(candidates)[0]
        size = tf.shape(candidates)[1]
        count = self.max_piece_length
        # Slot j: the end j positions after the current start.
        lengths = tf.range(1, count + 1)[None, :]

        def step(start, waiting, taken, winner, choices):
            choices = choices.write(start, winner[:, 0])
            base = waiting[:, 0]
            reset = tf.abs(base) > SCORE_RESET
            shifted = tf.concat(
                [tf.ones([batch, 1], tf.bool), taken[:, 1:]], axis=1
            )
            waiting = tf.where(
                reset[:, None] & shifted, waiting - base[:, None], waiting
            )
            base = tf.where(reset, 0.0, base)
            offered = scores[start] + base[:, None]
            here = found[start]
            ahead, kept = waiting[:, 1:], taken[:, 1:]
            better = here & (~kept | (offered > ahead))
            waiting = tf.where(better, offered, ahead)
            taken = kept | better
            winner = tf.where(better, lengths, winner[:, 1:])
            # The next start's slots: one more end comes into reach.
            waiting = tf.concat([waiting, tf.zeros([batch, 1])], axis=1)
            taken = tf.concat([taken, tf.zeros([batch, 1], tf.bool)], 1)
            winner = tf.concat([winner, tf.zeros([batch, 1], tf.int32)], 1)
            return start + 1, waiting, taken, winner, choices

        _, _, _, _, choices = tf.while_loop(
            lambda start, *_: start <= size,
            step,
            (
                tf.constant(0),
                tf.zeros([batch, count + 1]),
                tf.concat(
                    [
                        tf.ones([batch, 1], tf.bool),
                        tf.zeros([batch, count], tf.bool),
                    ],
                    axis=1,
                ),
                tf.zeros([batch, count + 1], tf.int32),
                tf.TensorArray(tf.int32, size=size + 1),
            ),
        )
        return tf.transpose(choices.stack())[:, 1:]

    def _split_digit_commas(self, characters, ids, starts, ends):
        """XLNet's digit-comma rule: a piece like `▁2000,` becomes the
        pieces of `2000` (without a leading `▁` where the piece had none)
        and `,`."""
        dense = characters.to_tensor(default_value="")
        rows = tf.cast(ends.value_rowids(), tf.int64)
        first, last = starts.flat_values, ends.flat_values

        def character(positions):
            positions = tf.maximum(positions, 0)
            return tf.gather_nd(dense, tf.stack([rows, positions], axis=1))

        rule = (
            (last - first > 1)
            & tf.equal(character(last - 1), ",")
            & tf.strings.regex_full_match(
                character(last - 2), character_class("digit")
            )
        )
        chosen = tf.where(rule)[:, 0]
        chosen_rows = tf.gather(rows, chosen)
        chosen_first = tf.gather(first, chosen)
        surfaces = _span_text(
            dense, chosen_rows, chosen_first, tf.gather(last, chosen) - 1
        )
        had_underline = tf.equal(
            tf.gather_nd(dense, tf.stack([chosen_rows, chosen_first], 1)),
            SPIECE_UNDERLINE,
        )
        texts = tf.strings.regex_replace(surfaces, SPIECE_UNDERLINE, "")
        comma = tf.fill(
            [tf.size(chosen), 1], tf.constant(self.comma_id, tf.int64)
        )
        replacements = tf.concat(
            [self._reencode(texts, had_underline), comma], axis=1
        )
        return _splice(ids, chosen, replacements)

    def _reencode(self, texts, had_underline):
        """The ids of `texts` (plain SentencePiece, as the original
        re-encodes a piece), the leading `▁` taken off where
        `had_underline` is false: a piece of `▁` alone is dropped, a longer
        one loses its `▁`."""
        characters, ids, starts, ends = self._pieces(self.normalize(texts))
        dense = characters.to_tensor(default_value="")
        first = tf.reshape(starts[:, :1].to_tensor(shape=[None, 1]), [-1])
        last = tf.reshape(ends[:, :1].to_tensor(shape=[None, 1]), [-1])
        rows = tf.range(tf.shape(dense, out_type=tf.int64)[0])
        leading = tf.gather_nd(dense, tf.stack([rows, first], axis=1))
        strip = (
            ~had_underline
            & (ids.row_lengths() > 0)
            & tf.equal(leading, SPIECE_UNDERLINE)
        )
        stripped = self.piece_ids.lookup(
            _span_text(dense, rows, first + 1, last)
        )
        stripped = tf.where(
            stripped < 0, self._unknown_like(stripped), stripped
        )
        # Every text holds a piece (a digit at least): replace the first.
        first_id = tf.where(
            strip,
            stripped,
            tf.reshape(ids[:, :1].to_tensor(shape=[None, 1]), [-1]),
        )
        ids = tf.concat(
            [tf.RaggedTensor.from_tensor(first_id[:, None]), ids[:, 1:]],
            axis=1,
        )
        alone = strip & (last - first == 1)
        dropped = tf.gather(alone, ids.value_rowids()) & tf.equal(
            _index_in_row(ids), 0
        )
        return tf.ragged.boolean_mask(ids, ids.with_flat_values(~dropped))


def _text_ops():
    """TensorFlow Text's SentencePiece ops."""
    from tensorflow_text.python.ops import sentencepiece_tokenizer

    return sentencepiece_tokenizer.gen_sentencepiece_tokenizer


class _SentencePieceModel(tf.saved_model.experimental.TrackableResource):
    """TensorFlow Text's SentencePiece model resource, under a name of its
    own (see `sentencepiece_model_resource`)."""

    def __init__(self, proto, shared_name):
        super().__init__()
        self._proto = proto
        self._shared_name = shared_name
        _ = self.resource_handle  # Creates the resource.

    def _create_resource(self):
        return _text_ops().sentencepiece_op(
            model=self._proto, shared_name=self._shared_name
        )


_MODEL_RESOURCES = {}


def sentencepiece_model_resource(proto):
    """TensorFlow Text's SentencePiece model resource for `proto`, one per
    distinct model in a process, named after its content.

    TensorFlow Text's `SentencepieceTokenizer` leaves the resource
    unnamed, which makes it belong to the op's cached kernel: TensorFlow
    drops that cache when a seed is set (`keras.utils.set_random_seed`),
    and every graph holding the resource then fails ("Resource ... does
    not exist"). A named resource lives as long as the process, as the
    graphs traced on it need; sharing it by content bounds the memory to
    one copy per vocabulary (each loaded SavedModel makes its own copy,
    kept as long as the process too).
    """
    digest = hashlib.sha256(proto).hexdigest()[:32]
    if digest not in _MODEL_RESOURCES:
        _MODEL_RESOURCES[digest] = _SentencePieceModel(
            proto, f"keras_xlnet_sentencepiece_{digest}"
        )
    return _MODEL_RESOURCES[digest]


def _index_in_row(ragged):
    """Each value's index within its row."""
    return tf.range(tf.size(ragged.flat_values, out_type=tf.int64)) - tf.gather(
        ragged.row_starts(), ragged.value_rowids()
    )


def _span_text(dense, rows, starts, ends):
    """The text of `dense[row, start:end]` for each row, start and end."""
    spans = tf.ragged.range(starts, ends)
    positions = tf.stack(
        [tf.repeat(rows, spans.row_lengths()), spans.flat_values], axis=1
    )
    characters = spans.with_flat_values(tf.gather_nd(dense, positions))
    return tf.strings.reduce_join(characters, axis=1)


def _backtrack(choices, lengths):
    """`[batch, N]`: the best path's piece lengths at their end positions
    (0 elsewhere), read back from each text's end by pointer jumping: the
    ends reached double with each of log2(N) steps."""
    batch = tf.shape(choices, out_type=tf.int64)[0]
    nodes = tf.shape(choices, out_type=tf.int64)[1] + 1  # Ends 0..N.
    positions = tf.range(nodes)[None, :]
    jump = positions - tf.pad(tf.cast(choices, tf.int64), [[0, 0], [1, 0]])
    reached = tf.equal(positions, lengths[:, None]) & (lengths[:, None] > 0)
    offsets = tf.range(batch)[:, None] * nodes

    def step(reached, jump, span):
        targets = tf.reshape(jump + offsets, [-1])
        hit = tf.math.unsorted_segment_max(
            tf.cast(tf.reshape(reached, [-1]), tf.int32),
            targets,
            batch * nodes,
        )
        hit = tf.ensure_shape(tf.reshape(hit, [batch, nodes]), reached.shape)
        reached = reached | (hit > 0)
        jump = tf.ensure_shape(tf.gather(jump, jump, batch_dims=1), jump.shape)
        return reached, jump, span * 2

    reached, _, _ = tf.while_loop(
        lambda reached, jump, span: span < nodes,
        step,
        (reached, jump, tf.constant(1, tf.int64)),
    )
    return tf.where(
        reached[:, 1:],
        tf.cast(choices, tf.int64),
        tf.zeros_like(choices, tf.int64),
    )


def _not_a_repeated_unknown(ids, unknown_id):
    """A ragged mask dropping each `<unk>` that follows an `<unk>` (the
    library merges runs of unknown characters into one piece)."""
    flat = ids.flat_values
    previous = tf.concat([[-1], flat[:-1]], axis=0)
    repeated = (
        tf.equal(flat, unknown_id)
        & tf.equal(previous, unknown_id)
        & (_index_in_row(ids) > 0)
    )
    return ids.with_flat_values(~repeated)


def _splice(ids, chosen, replacements):
    """`ids` (`[batch, None]`) with the pieces at flat positions `chosen`
    replaced by the rows of `replacements`."""
    flat = ids.flat_values
    count = tf.size(flat, out_type=tf.int64)
    singles = tf.RaggedTensor.from_row_lengths(flat, tf.ones([count], tf.int64))
    pool = tf.concat([singles, replacements], axis=0)
    source = tf.tensor_scatter_nd_update(
        tf.range(count),
        chosen[:, None],
        count + tf.range(tf.size(chosen, out_type=tf.int64)),
    )
    pieces = tf.gather(pool, source)
    nested = tf.RaggedTensor.from_row_splits(pieces, ids.row_splits)
    return nested.merge_dims(1, 2)


def _code_hashes(codes):
    """The hash `_candidates` computes for each row of code points (padded
    with -1): int64 arithmetic that wraps, as TensorFlow's does."""
    running = np.zeros(len(codes), "uint64")
    with np.errstate(over="ignore"):
        for column in codes.T:
            running = np.where(
                column >= 0,
                running * np.uint64(HASH_FACTOR)
                + (column + 1).astype("uint64"),
                running,
            )
    return running.view("int64")

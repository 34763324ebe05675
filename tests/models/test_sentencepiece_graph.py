"""XLNet's tokenization in TensorFlow ops against the Python SentencePiece
library (the reference's tokenizer), ties and near ties included.

The 1,000 shared reviews and the edge cases run through `tf.data` in
`test_xlnet_tokenizer.py`; here the segmentation itself is checked on
inputs made to hit its corners: tied segmentations, runs of unknown
characters, user-defined pieces, the digit-comma rule, empty and very
long texts, and random strings over a small alphabet of such characters.
"""

import numpy as np
import pytest
import tensorflow as tf
from conftest import real_vocabulary

from keras_xlnet.models import sentencepiece_graph
from keras_xlnet.models import xlnet_text_normalization

pytestmark = pytest.mark.backend_independent

CORNERS = [
    "????",  # "?" + "???" in the library, "???" + "?" in TensorFlow Text.
    "Wooooow!!! ***Spoilers*** grrrrr ......",
    "日本語のテキスト 𝄞𝄞 x",  # Runs of unknown characters: one <unk>.
    'a <eop> b (c) "d" e-f – £5 €6',  # User-defined pieces.
    "2000, 3,000, a1, 12, ,5 x9,y ²,",  # The digit-comma rule.
    "",
    "   ",
    "!" * 3000,
    "a" * 40 + " " + "ab" * 25,
]


@pytest.fixture(scope="module")
def library():
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=real_vocabulary())


@pytest.fixture(scope="module", params=[False, True], ids=["ops", "xla"])
def segmenter(request):
    with open(real_vocabulary(), "rb") as file:
        return sentencepiece_graph.UnigramSegmenter(
            file.read(), jit_compile=request.param
        )


def reference_ids(library, text):
    """The original `encode_ids`: XLNet's normalisation, the library's
    pieces, the digit-comma rule."""
    normal = xlnet_text_normalization

    def pieces(value):
        return library.encode(value, out_type=str)

    found = pieces(normal.normalize_python(text))
    found = normal.split_digit_commas_python(found, pieces)
    return [library.piece_to_id(piece) for piece in found]


def graph_ids(segmenter, texts):
    @tf.function
    def encode(batch):
        return segmenter.encode(sentencepiece_graph.normalize(batch))

    return encode(tf.constant(texts)).to_list()


def test_corners_equal_the_library(library, segmenter):
    expected = [reference_ids(library, text) for text in CORNERS]
    assert graph_ids(segmenter, CORNERS) == expected
    assert expected[0] == [17, 82, 22180]  # "▁", "?", "???"


def test_random_runs_equal_the_library(library, segmenter):
    """Runs of characters whose pieces tie (`?`, `*`, `o`, `r`, `!`, `=`),
    digits and commas, unknown and user-defined characters and spaces: on
    these 400 strings TensorFlow Text's SentencePiece gives other ids than
    the library on 72."""
    parts = list("?*or!.=-ae1,日 ") + ["\u00a0", "<eop>"]
    rng = np.random.default_rng(0)
    texts = [
        "".join(
            rng.choice(parts) * int(rng.integers(1, 12))
            for _ in range(rng.integers(0, 8))
        )
        for _ in range(400)
    ]
    expected = [reference_ids(library, text) for text in texts]
    assert graph_ids(segmenter, texts) == expected


def test_a_hash_hit_on_other_characters_is_refused(library, segmenter):
    """Substrings are found by a hash of their code points; a hit whose
    characters are not the piece's (a collision) must not count."""
    the, t = library.piece_to_id("\u2581the"), library.piece_to_id("t")
    flat = tf.constant([ord(c) for c in "\u2581the"], tf.int64)
    candidates = np.full([4, segmenter.max_piece_length], -1, "int64")
    candidates[0, 3] = the  # "▁the": right.
    candidates[1, 0] = the  # "t" is not "▁the".
    candidates[1, 2] = the  # "the" is not "▁the".
    candidates[2, 0] = t  # "h" is not "t".
    checked = segmenter._checked(tf.constant(candidates), flat).numpy()
    expected = np.full_like(candidates, -1)
    expected[0, 3] = the
    np.testing.assert_array_equal(checked, expected)


def test_character_classes_follow_python():
    assert sentencepiece_graph.character_class("space").startswith(
        "[\\x{9}-\\x{d}\\x{1c}-\\x{20}"
    )
    texts = tf.constant(["a\u2003\u00a0 b\u0301c ``x'' ", "\u3000"])
    normalized = sentencepiece_graph.normalize(texts).numpy()
    assert [value.decode() for value in normalized] == [
        xlnet_text_normalization.normalize_python(text)
        for text in ["a\u2003\u00a0 b\u0301c ``x'' ", "\u3000"]
    ]

"""XLNetTokenizer against Hugging Face's slow (sentencepiece) tokenizer."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import HF_INTEGRATION_TEXTS
from conftest import hf_slow_tokenizer
from conftest import imdb_texts
from conftest import real_vocabulary
from keras_hub.src.tests.test_case import TestCase

import keras_xlnet
from keras_xlnet.models.xlnet_text_normalization import normalize_python

EDGE_CASES = [
    "I was born in 92000, and this is falsé.",
    "``Quoted'' text with `single' quotes",
    "1,000, 2,500,000, and 92000,",
    "Runs   of \t tabs\n\nnewlines\r\nand\u3000wide\u00a0spaces ",
    "",
    "   \t ",
    "emoji 😀👍🏽 and symbols ™ ½ ²,",
    "中文字符，测试。日本語のテキスト",
    "control\x00\x01\x07\x96 characters",
    "café naïve résumé Ångström Żółć",
    "x²,",
    "１２３, full-width digits",
    "***Spoilers*** Aaaaarrrgh!!! Wooooow",
]


@pytest.fixture(scope="module")
def tokenizer():
    return keras_xlnet.XLNetTokenizer(proto=real_vocabulary())


def tf_path(tokenizer, texts, batch_size=64):
    ds = tf.data.Dataset.from_tensor_slices(texts).batch(batch_size)
    return [row for batch in ds.map(tokenizer) for row in _rows(batch)]


def _rows(batch):
    if isinstance(batch, tf.RaggedTensor):
        return batch.to_list()
    return batch.numpy().tolist()


def as_lists(ids):
    return [list(map(int, row)) for row in ids]


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "text, expected",
    [
        ("An input text string.", [460, 5272, 1758, 4905, 9]),
        ("Hello, my dog is cute", [17, 11368, 19, 94, 2288, 27, 10920]),
        (
            "I was born in 92000, and this is falsé.",
            [35, 30, 1094, 25, 664, 7701, 19, 21, 52, 27, 4417, 9],
        ),
    ],
)
def test_known_ids_on_both_paths(tokenizer, text, expected):
    assert list(map(int, tokenizer(text))) == expected
    assert tf_path(tokenizer, [text]) == [expected]


@pytest.mark.backend_independent
def test_imdb_and_edge_cases_equal_huggingface_on_both_paths(tokenizer):
    texts = imdb_texts() + EDGE_CASES + HF_INTEGRATION_TEXTS
    hf = hf_slow_tokenizer()
    expected = [hf(t, add_special_tokens=False)["input_ids"] for t in texts]
    python_ids = as_lists(tokenizer(texts))
    assert python_ids == expected
    assert tf_path(tokenizer, texts) == expected


@pytest.mark.backend_independent
def test_the_tensorflow_path_calls_no_python(tokenizer):
    """The `tf.data` path is TensorFlow ops only (no `py_function`), so it
    runs on hosts without a Python callback and in SavedModels."""
    graph = (
        tf.function(tokenizer)
        .get_concrete_function(tf.TensorSpec([None], tf.string))
        .graph.as_graph_def()
    )
    nodes = list(graph.node) + [
        node
        for function in graph.library.function
        for node in function.node_def
    ]
    operations = {node.op for node in nodes}
    assert not operations & {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
    assert "SentencepieceTokenizeOp" in operations  # The normaliser.


@pytest.mark.backend_independent
def test_the_tensorflow_path_outlives_a_new_seed():
    """Setting a seed drops TensorFlow's kernel cache, which held TensorFlow
    Text's SentencePiece model when it had no name of its own."""
    tokenizer = keras_xlnet.XLNetTokenizer(proto=real_vocabulary())
    keras.utils.set_random_seed(0)
    texts = ["Hello ????", "2,000 times."]
    assert tf_path(tokenizer, texts) == as_lists(tokenizer(texts))


@pytest.mark.backend_independent
def test_the_tensorflow_path_refuses_invalid_utf8(tokenizer):
    with pytest.raises(tf.errors.InvalidArgumentError, match="UTF-8"):
        tf_path(tokenizer, [b"ok", b"\xff\xfe broken"])


@pytest.mark.backend_independent
def test_lowercasing_in_the_graph_keeps_nul_characters():
    """`tf.strings.lower` alone stops at the first NUL."""
    lowercase = keras_xlnet.XLNetTokenizer(
        proto=real_vocabulary(), lowercase=True
    )
    texts = ["Hello\x00World ÀB", "\x00", "A\x00\x00B", "ΟΔΟΣ ΣΑΣ\x00ΣΑΣ", ""]
    assert tf_path(lowercase, texts) == as_lists(lowercase(texts))


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "options, named",
    [
        ({"model_type": "bpe"}, "this one is BPE"),
        ({"byte_fallback": True}, "byte fallback"),
    ],
)
def test_a_vocabulary_the_graph_cannot_reproduce_is_named(
    tmp_path, options, named
):
    """The Python path still tokenizes with it; the TensorFlow path says
    why it cannot, rather than giving other ids."""
    from keras_xlnet.models.xlnet_tokenizer import train_vocabulary

    vocabulary = train_vocabulary(
        imdb_texts()[:200],
        tmp_path / "other",
        600,
        hard_vocab_limit=True,
        **options,
    )
    other = keras_xlnet.XLNetTokenizer(proto=vocabulary)
    assert len(other("A great film.")) > 0
    with pytest.raises(ValueError, match=named):
        tf_path(other, ["A great film."])


def test_unbatched_batched_and_tensor_inputs_agree(tokenizer):
    texts = EDGE_CASES[:4]
    batched = as_lists(tokenizer(texts))
    assert [list(map(int, tokenizer(t))) for t in texts] == batched
    assert as_lists(tokenizer(np.array(texts))) == batched
    assert as_lists(tokenizer(tf.constant(texts))) == batched
    assert list(map(int, tokenizer(tf.constant(texts[0])))) == batched[0]


@pytest.mark.backend_independent
def test_detokenize_returns_the_normalised_text(tokenizer):
    texts = imdb_texts()
    ids = tokenizer(texts)
    decoded = tokenizer.detokenize(ids)
    unknown = tokenizer.unk_token_id
    exact = 0
    for text, row, back in zip(texts, ids, decoded):
        if unknown in row:
            # Characters outside the vocabulary come back as " ⁇ ".
            assert "\u2047" in back
        else:
            assert back == normalize_python(text)
            exact += 1
    assert exact >= 950
    ds = tf.data.Dataset.from_tensor_slices(texts[:100]).batch(25)
    tf_decoded = [
        x.decode("utf-8")
        for batch in ds.map(tokenizer).map(tokenizer.detokenize)
        for x in batch.numpy()
    ]
    assert tf_decoded == decoded[:100]


def test_special_token_ids(tokenizer):
    assert [
        tokenizer.unk_token_id,
        tokenizer.start_token_id,
        tokenizer.end_token_id,
        tokenizer.cls_token_id,
        tokenizer.sep_token_id,
        tokenizer.pad_token_id,
        tokenizer.mask_token_id,
        tokenizer.eod_token_id,
        tokenizer.eop_token_id,
    ] == list(range(9))


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (None, TypeError, "received None"),
        (42, TypeError, "int: 42"),
        (["fine", 3.5], TypeError, "item 1 is float"),
        (["fine", ["nested"]], TypeError, "item 1 is list"),
        ([b"ok", b"\xff\xfe broken"], ValueError, "item 1 is not valid UTF-8"),
        (np.array([["a", "b"]]), ValueError, "shape \\(1, 2\\)"),
    ],
)
def test_bad_inputs(tokenizer, bad, error, message):
    with pytest.raises(error, match=message):
        tokenizer(bad)


def test_vocabulary_missing_a_special_token(tmp_path):
    import sentencepiece

    prefix = tmp_path / "plain"
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(imdb_texts()[:50]),
        model_prefix=str(prefix),
        vocab_size=200,
    )
    with pytest.raises(ValueError, match="Cannot find special token"):
        keras_xlnet.XLNetTokenizer(proto=str(prefix) + ".model")


def test_tiny_generated_vocabulary(tiny_vocabulary):
    tokenizer = keras_xlnet.XLNetTokenizer(proto=tiny_vocabulary)
    assert tokenizer.cls_token_id == 3 and tokenizer.pad_token_id == 5
    ids = tokenizer("the film was great, 1,000 times.")
    assert tokenizer.detokenize(ids) == "the film was great, 1,000 times."


def test_sequence_length_pads_and_truncates():
    tokenizer = keras_xlnet.XLNetTokenizer(
        proto=real_vocabulary(), sequence_length=6
    )
    texts = ["Hello, my dog is cute", "Hi"]
    hf = hf_slow_tokenizer()
    expected = [
        (hf(t, add_special_tokens=False)["input_ids"] + [5] * 6)[:6]
        for t in texts
    ]
    assert keras.ops.convert_to_numpy(tokenizer(texts)).tolist() == expected
    assert tf_path(tokenizer, texts) == expected


def test_preset_keeps_the_vocabulary(tokenizer, tmp_path):
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=32000,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
    )
    backbone.save_to_preset(tmp_path / "preset")
    tokenizer.save_to_preset(tmp_path / "preset")
    assert (
        tmp_path / "preset" / "assets" / "tokenizer" / "vocabulary.spm"
    ).exists()
    restored = keras_xlnet.XLNetTokenizer.from_preset(str(tmp_path / "preset"))
    text = EDGE_CASES[0]
    assert as_lists([restored(text)]) == as_lists([tokenizer(text)])


# Known ids of the real vocabulary (shared/data/PROVENANCE.md).
KNOWN_IDS = {
    "Hello, my dog is cute": [17, 11368, 19, 94, 2288, 27, 10920],
    "An input text string.": [460, 5272, 1758, 4905, 9],
}


class XLNetTokenizerHarnessTest(TestCase):
    """KerasHub's own tokenizer checks: serialisation, detokenize, tf.data
    (batched and not), Grain, and a local preset."""

    def setUp(self):
        self.init_kwargs = {"proto": real_vocabulary()}
        self.input_data = list(KNOWN_IDS)

    def test_tokenizer_basics(self):
        self.run_preprocessing_layer_test(
            cls=keras_xlnet.XLNetTokenizer,
            init_kwargs=self.init_kwargs,
            input_data=self.input_data,
            expected_output=list(KNOWN_IDS.values()),
        )

    @pytest.fixture(autouse=True)
    def _fixture_preset(self, fixture_preset):
        self.preset = fixture_preset[0]

    def test_local_preset(self):
        self.run_preset_test(
            cls=keras_xlnet.XLNetTokenizer,
            preset=self.preset,
            input_data=self.input_data,
            expected_output=list(KNOWN_IDS.values()),
        )

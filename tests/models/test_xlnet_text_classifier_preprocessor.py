"""XLNetTextClassifierPreprocessor against Hugging Face's tokenizer."""

import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import hf_slow_tokenizer
from conftest import imdb_texts
from conftest import real_vocabulary
from keras_hub.src.tests.test_case import TestCase

import keras_xlnet


@pytest.fixture(scope="module")
def tokenizer():
    return keras_xlnet.XLNetTokenizer(proto=real_vocabulary())


def numpy_outputs(outputs):
    return {
        k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in outputs.items()
    }


def hf_outputs(hf, texts, pairs, length):
    encoded = hf(
        texts,
        pairs,
        padding="max_length",
        truncation=True,
        max_length=length,
    )
    return {
        "token_ids": np.array(encoded["input_ids"]),
        "segment_ids": np.array(encoded["token_type_ids"]),
        "padding_mask": np.array(encoded["attention_mask"]),
    }


def tf_data_outputs(preprocessor, texts, pairs=None):
    slices = texts if pairs is None else (texts, pairs)
    ds = tf.data.Dataset.from_tensor_slices(slices).batch(128)
    if pairs is None:
        ds = ds.map(preprocessor)
    else:
        ds = ds.map(lambda a, b: preprocessor(x=(a, b)))
    batches = list(ds)
    return {
        k: np.concatenate([b[k].numpy() for b in batches]) for k in batches[0]
    }


def assert_same(actual, expected):
    for key in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(
            actual[key].astype("int64"), expected[key], err_msg=key
        )


@pytest.mark.backend_independent
@pytest.mark.parametrize("length", [128, 512])
@pytest.mark.parametrize("paired", [False, True], ids=["single", "pair"])
def test_equals_huggingface_on_both_paths(tokenizer, length, paired):
    texts = imdb_texts()
    first, second = (texts[:500], texts[500:]) if paired else (texts, None)
    expected = hf_outputs(hf_slow_tokenizer(), first, second, length)
    preprocessor = keras_xlnet.XLNetTextClassifierPreprocessor(
        tokenizer, sequence_length=length
    )
    x = first if second is None else (first, second)
    assert_same(numpy_outputs(preprocessor(x=x)), expected)
    assert_same(tf_data_outputs(preprocessor, first, second), expected)


def test_batched_and_unbatched_agree(tokenizer):
    preprocessor = keras_xlnet.XLNetPreprocessor(tokenizer, sequence_length=16)
    texts = ["Hello, my dog is cute", "Short.", "A third, longer text here."]
    batched = numpy_outputs(preprocessor(texts))
    for i, text in enumerate(texts):
        single = numpy_outputs(preprocessor(text))
        for key in batched:
            np.testing.assert_array_equal(single[key], batched[key][i])
    unbatched_ds = tf.data.Dataset.from_tensor_slices(texts).map(preprocessor)
    for i, outputs in enumerate(unbatched_ds):
        for key in batched:
            np.testing.assert_array_equal(outputs[key].numpy(), batched[key][i])
    pair = numpy_outputs(preprocessor(x=(texts[0], texts[1])))
    pairs = numpy_outputs(preprocessor(x=(texts[:1], texts[1:2])))
    for key in pair:
        np.testing.assert_array_equal(pair[key], pairs[key][0])


def test_right_padding_puts_cls_after_the_text(tokenizer):
    preprocessor = keras_xlnet.XLNetTextClassifierPreprocessor(
        tokenizer, sequence_length=10, padding_side="right"
    )
    left = keras_xlnet.XLNetTextClassifierPreprocessor(
        tokenizer, sequence_length=10
    )
    right_out = numpy_outputs(preprocessor("Hello, my dog"))
    left_out = numpy_outputs(left("Hello, my dog"))
    n = int(left_out["padding_mask"].sum())
    for key in right_out:
        np.testing.assert_array_equal(right_out[key][:n], left_out[key][-n:])
    assert right_out["segment_ids"][n - 1] == 2
    assert (right_out["segment_ids"][n:] == 3).all()
    assert (right_out["token_ids"][n:] == tokenizer.pad_token_id).all()


def test_sequence_length_can_change_after_construction(tokenizer):
    preprocessor = keras_xlnet.XLNetTextClassifierPreprocessor(
        tokenizer, sequence_length=8
    )
    assert numpy_outputs(preprocessor("a b"))["token_ids"].shape == (8,)
    preprocessor.sequence_length = 12
    assert numpy_outputs(preprocessor("a b"))["token_ids"].shape == (12,)


def test_waterfall_truncation_fills_the_first_text_first(tokenizer):
    preprocessor = keras_xlnet.XLNetTextClassifierPreprocessor(
        tokenizer, sequence_length=10, truncate="waterfall"
    )
    outputs = numpy_outputs(
        preprocessor(x=("one two three four five six seven eight", "nine ten"))
    )
    # 10 = 7 tokens of the first text + <sep> + <sep> <cls>: none of B.
    assert outputs["segment_ids"].tolist() == [0] * 8 + [1, 2]
    first = tokenizer("one two three four five six seven eight")[:7]
    assert outputs["token_ids"][:7].tolist() == list(map(int, first))


def test_round_robin_cuts_the_longer_text_of_a_pair(tokenizer):
    preprocessor = keras_xlnet.XLNetPreprocessor(tokenizer, 12)
    assert preprocessor.truncate == "round_robin"
    first = "one two three four five six seven eight"
    second = "nine ten eleven twelve"
    outputs = numpy_outputs(preprocessor(x=(first, second)))
    # 12 = 9 pieces + <sep> + <sep> <cls>: 5 of A (the longer) and 4 of B.
    a, b = (list(map(int, tokenizer(t))) for t in (first, second))
    assert len(a) > 5 and len(b) >= 4
    assert outputs["token_ids"].tolist() == a[:5] + [4] + b[:4] + [4, 3]


def test_every_setting_takes_effect_after_building(tokenizer):
    preprocessor = keras_xlnet.XLNetPreprocessor(tokenizer, 10)
    text = "one two three four five six seven eight nine ten eleven"
    preprocessor(text)  # Builds the packer with the first settings.
    pieces = list(map(int, tokenizer(text)))
    preprocessor.padding_side = "right"
    assert numpy_outputs(preprocessor("a"))["padding_mask"][0] == 1
    preprocessor.padding_side = "left"
    preprocessor.keep = "tail"
    assert numpy_outputs(preprocessor(text))["token_ids"].tolist() == (
        pieces[-8:] + [4, 3]
    )
    preprocessor.keep, preprocessor.head_length = "head_tail", 2
    assert numpy_outputs(preprocessor(text))["token_ids"].tolist() == (
        pieces[:2] + pieces[-6:] + [4, 3]
    )
    preprocessor.truncate = "waterfall"
    preprocessor.keep = "head"
    outputs = numpy_outputs(preprocessor(x=(text, "nine ten")))
    assert outputs["segment_ids"].tolist() == [0] * 8 + [1, 2]


@pytest.fixture(scope="module")
def long_and_short_review():
    """The longest review of the sample (1788 pieces) and a short one, with
    their pieces from Hugging Face's tokenizer (the reference)."""
    hf = hf_slow_tokenizer()
    texts = imdb_texts()
    pieces = [hf.encode(t, add_special_tokens=False) for t in texts]
    longest = max(range(len(texts)), key=lambda i: len(pieces[i]))
    short = min(range(len(texts)), key=lambda i: abs(len(pieces[i]) - 100))
    assert len(pieces[longest]) > 1024 and len(pieces[short]) < 510
    return [texts[longest], texts[short]], [pieces[longest], pieces[short]]


def packed(pieces, length):
    """`pieces <sep> <cls>` left-padded to `length`, as the reference packs
    a single text."""
    ids = pieces + [4, 3]
    padding = length - len(ids)
    return {
        "token_ids": np.array([5] * padding + ids),
        "segment_ids": np.array([3] * padding + [0] * len(pieces) + [0, 2]),
        "padding_mask": np.array([0] * padding + [1] * len(ids)),
    }


KEPT = {
    "head": lambda pieces, budget: pieces[:budget],
    "tail": lambda pieces, budget: pieces[-budget:],
    # Sun et al. (2019): the first 128 pieces and the last 382 of 510.
    "head_tail": lambda pieces, budget: (
        pieces[:128] + pieces[-(budget - 128) :]
    ),
}


@pytest.mark.backend_independent
@pytest.mark.parametrize("keep", sorted(KEPT))
@pytest.mark.parametrize("max_segments", [1, 2])
def test_keep_keeps_the_stated_pieces(
    tokenizer, long_and_short_review, keep, max_segments
):
    texts, pieces = long_and_short_review
    length = 512 * max_segments
    preprocessor = keras_xlnet.XLNetPreprocessor(
        tokenizer, length, keep=keep, max_segments=max_segments
    )
    budget = length - 2
    expected = [
        packed(KEPT[keep](pieces[0], budget), length),
        packed(pieces[1], length),  # Short: untouched.
    ]
    stacked = {k: np.stack([e[k] for e in expected]) for k in expected[0]}
    assert_same(numpy_outputs(preprocessor(texts)), stacked)
    assert_same(tf_data_outputs(preprocessor, texts), stacked)
    for text, one in zip(texts, expected):
        assert_same(numpy_outputs(preprocessor(text)), one)
    unbatched = tf.data.Dataset.from_tensor_slices(texts).map(preprocessor)
    for batch, one in zip(unbatched, expected):
        assert_same({k: v.numpy() for k, v in batch.items()}, one)


def test_a_short_text_over_segments_is_packed_as_in_one(tokenizer):
    one = keras_xlnet.XLNetPreprocessor(tokenizer, 16)
    three = keras_xlnet.XLNetPreprocessor(tokenizer, 48, max_segments=3)
    assert three.segment_length == 16
    text = "A short review."
    outputs = numpy_outputs(three(text))
    assert_same(
        {k: v[-16:] for k, v in outputs.items()}, numpy_outputs(one(text))
    )
    assert outputs["padding_mask"][:32].sum() == 0
    assert set(outputs["segment_ids"][:32]) == {3}


def test_head_tail_keeps_half_of_a_short_budget(tokenizer):
    preprocessor = keras_xlnet.XLNetPreprocessor(
        tokenizer, 10, keep="head_tail"
    )
    text = "one two three four five six seven eight nine ten eleven"
    pieces = list(map(int, tokenizer(text)))
    assert len(pieces) > 8
    token_ids = numpy_outputs(preprocessor(text))["token_ids"]
    assert token_ids.tolist() == pieces[:4] + pieces[-4:] + [4, 3]


def test_segment_settings_are_saved(tokenizer):
    preprocessor = keras_xlnet.XLNetPreprocessor(
        tokenizer,
        256,
        truncate="waterfall",
        keep="head_tail",
        head_length=100,
        max_segments=4,
        padding_side="left",
    )
    config = preprocessor.get_config()
    restored = keras_xlnet.XLNetPreprocessor.from_config(config)
    assert (
        restored.sequence_length,
        restored.max_segments,
        restored.segment_length,
        restored.truncate,
        restored.keep,
        restored.head_length,
    ) == (256, 4, 64, "waterfall", "head_tail", 100)


def test_errors(tokenizer):
    with pytest.raises(ValueError, match="truncate"):
        keras_xlnet.XLNetPreprocessor(tokenizer, truncate="head")
    with pytest.raises(ValueError, match="keep"):
        keras_xlnet.XLNetPreprocessor(tokenizer, keep="middle")
    with pytest.raises(ValueError, match="head_length"):
        keras_xlnet.XLNetPreprocessor(tokenizer, head_length=-1)
    with pytest.raises(ValueError, match="not max_segments=3 whole"):
        keras_xlnet.XLNetPreprocessor(tokenizer, 512, max_segments=3)
    with pytest.raises(ValueError, match="padding_side"):
        keras_xlnet.XLNetPreprocessor(tokenizer, padding_side="center")
    preprocessor = keras_xlnet.XLNetPreprocessor(tokenizer, sequence_length=8)
    with pytest.raises(ValueError, match="same batch size"):
        preprocessor(x=(["a", "b"], ["c"]))
    with pytest.raises(ValueError, match="one or two texts"):
        preprocessor(x=("a", "b", "c"))
    with pytest.raises(TypeError, match="received None"):
        preprocessor(None)
    with pytest.raises(ValueError, match="single texts"):
        keras_xlnet.XLNetPreprocessor(tokenizer, keep="tail")(x=("a", "b"))
    with pytest.raises(ValueError, match="max_segments"):
        keras_xlnet.XLNetPreprocessor(tokenizer, max_segments=0)
    with pytest.raises(ValueError, match="padding_side='left'"):
        keras_xlnet.XLNetPreprocessor(
            tokenizer, max_segments=2, padding_side="right"
        )
    started = time.monotonic()
    with pytest.raises(ValueError, match="to 65536"):
        keras_xlnet.XLNetPreprocessor(tokenizer, 512 * 10**6)
    assert time.monotonic() - started < 1


def test_classifier_from_fixture_same_logits_from_strings_and_hf_ids():
    from conftest import reference_fixture

    folder, _, _ = reference_fixture("tf1_original")
    classifier = keras_xlnet.load_checkpoint(folder).classifier
    tokenizer = keras_xlnet.XLNetTokenizer(proto=real_vocabulary())
    classifier.preprocessor = keras_xlnet.XLNetPreprocessor(
        tokenizer, sequence_length=16
    )
    # The fixture's embedding has 64 rows: use words whose ids are < 64.
    words = [
        tokenizer.id_to_token(i)[1:]
        for i in range(9, 64)
        if tokenizer.id_to_token(i).startswith("\u2581")
        and len(tokenizer.id_to_token(i)) > 1
    ]
    texts = [" ".join(words[i : i + 5]) + "." for i in range(0, 30, 5)]
    pairs = [" ".join(words[i : i + 3]) for i in range(30, 48, 3)]
    hf = hf_slow_tokenizer()
    for first, second in ((texts, None), (texts, pairs)):
        ids = hf_outputs(hf, first, second, 16)
        assert ids["token_ids"].max() < 64
        expected = keras.ops.convert_to_numpy(classifier(ids))
        x = first if second is None else (first, second)
        np.testing.assert_allclose(
            classifier.predict(x=x, verbose=0), expected, atol=1e-6
        )


def test_classifier_on_raw_strings(tiny_text_classifier, tmp_path):
    classifier = tiny_text_classifier
    texts = ["great film", "dull", "the movie was good", "bad plot"]
    labels = np.array([1, 0, 1, 0])
    classifier.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = classifier.evaluate(x=texts, y=labels, verbose=0)[0]
    classifier.fit(x=texts, y=labels, batch_size=4, epochs=10, verbose=0)
    assert classifier.evaluate(x=texts, y=labels, verbose=0)[0] < before
    ds = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(2)
    classifier.fit(ds, epochs=1, verbose=0)

    predictions = classifier.predict(["great film", "dull"], verbose=0)
    assert predictions.shape == (2, 2)
    classifier.save(tmp_path / "classifier.keras")
    restored = keras.saving.load_model(tmp_path / "classifier.keras")
    np.testing.assert_allclose(
        restored.predict(["great film", "dull"], verbose=0),
        predictions,
        atol=1e-6,
    )
    classifier.save_to_preset(tmp_path / "preset")
    assert (
        tmp_path / "preset" / "assets" / "tokenizer" / "vocabulary.spm"
    ).exists()
    from_preset = keras_xlnet.XLNetClassifier.from_preset(
        str(tmp_path / "preset")
    )
    np.testing.assert_allclose(
        from_preset.predict(["great film", "dull"], verbose=0),
        predictions,
        atol=1e-6,
    )


def test_convert_with_vocabulary(hf_peer, tiny_vocabulary, tmp_path):
    tokenizer = keras_xlnet.XLNetTokenizer(proto=tiny_vocabulary)
    peer = hf_peer(task="classifier", vocab_size=tokenizer.vocabulary_size())
    keras_xlnet.convert_checkpoint(
        peer.folder, tmp_path / "preset", vocabulary=tiny_vocabulary
    )
    classifier = keras_xlnet.XLNetClassifier.from_preset(
        str(tmp_path / "preset")
    )
    texts = ["the film was great", "a dull story"]
    packed = numpy_outputs(classifier.preprocessor(texts))
    expected = peer(
        {k: packed[k].astype("int64") for k in packed}
    ).logits.numpy()
    np.testing.assert_allclose(
        classifier.predict(texts, verbose=0), expected, atol=1e-5
    )


def test_convert_refuses_a_vocabulary_larger_than_the_embedding(tmp_path):
    from conftest import reference_fixture

    folder, _, _ = reference_fixture("tf1_original")
    with pytest.raises(
        keras_xlnet.CheckpointError, match="32000 pieces.*only 64 rows"
    ):
        keras_xlnet.convert_checkpoint(
            folder, tmp_path / "refused", vocabulary=real_vocabulary()
        )
    assert not (tmp_path / "refused").exists()
    keras_xlnet.convert_checkpoint(
        folder,
        tmp_path / "preset",
        vocabulary=real_vocabulary(),
        allow_larger_vocabulary=True,
    )
    assert (tmp_path / "preset" / "assets" / "tokenizer").exists()


class XLNetPreprocessorHarnessTest(TestCase):
    """KerasHub's own preprocessor checks: serialisation, `(x, y,
    sample_weight)`, tf.data, Grain, a settable `sequence_length`, and a
    local preset."""

    def setUp(self):
        self.init_kwargs = {
            "tokenizer": keras_xlnet.XLNetTokenizer(proto=real_vocabulary()),
            "sequence_length": 10,
        }
        self.input_data = (["Hello, my dog is cute"], [1], [1.0])
        # Hugging Face's packing of this text: `<pad> A <sep> <cls>`.
        self.expected_x = {
            "token_ids": [[5, 17, 11368, 19, 94, 2288, 27, 10920, 4, 3]],
            "padding_mask": [[0, 1, 1, 1, 1, 1, 1, 1, 1, 1]],
            "segment_ids": [[3, 0, 0, 0, 0, 0, 0, 0, 0, 2]],
        }

    def test_preprocessor_basics(self):
        self.run_preprocessor_test(
            cls=keras_xlnet.XLNetTextClassifierPreprocessor,
            init_kwargs=self.init_kwargs,
            input_data=self.input_data,
            expected_output=(self.expected_x, [1], [1.0]),
        )

    @pytest.fixture(autouse=True)
    def _fixture_preset(self, fixture_preset):
        self.preset = fixture_preset[0]

    def test_local_preset(self):
        self.run_preset_test(
            cls=keras_xlnet.XLNetTextClassifierPreprocessor,
            preset=self.preset,
            init_kwargs={"sequence_length": 10},
            input_data=self.input_data,
            expected_output=(self.expected_x, [1], [1.0]),
        )


@pytest.mark.parametrize("length", [0, 2, -5, 8.0])
def test_sequence_length_too_short_is_refused(tokenizer, length):
    """Below 3 the text was silently dropped, `<sep> <cls>` alone left."""
    with pytest.raises(ValueError, match="from 3"):
        keras_xlnet.XLNetPreprocessor(tokenizer, sequence_length=length)
    preprocessor = keras_xlnet.XLNetPreprocessor(tokenizer, sequence_length=3)
    with pytest.raises(ValueError, match="from 3"):
        preprocessor.sequence_length = length
    assert preprocessor("Hello")["token_ids"].tolist() == [17, 4, 3]

"""Length-sorted, cut batches give the padded evaluation's results."""

import keras
import numpy as np
import pytest

from keras_xlnet.data import length_buckets

WORDS = "the a film movie great dull good bad plot actor scene story".split()


def mixed_texts(count=23, seed=0):
    """Texts of 1 to 40 words, labels 0/1."""
    rng = np.random.default_rng(seed)
    texts = [
        " ".join(rng.choice(WORDS, rng.integers(1, 40))) for _ in range(count)
    ]
    return texts, rng.integers(0, 2, count)


@pytest.fixture
def classifier(tiny_text_classifier):
    tiny_text_classifier.preprocessor.sequence_length = 64
    tiny_text_classifier.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return tiny_text_classifier


def test_predictions_equal_the_padded_ones_in_the_texts_order(classifier):
    texts, _ = mixed_texts()
    lengths = length_buckets.packed_lengths(classifier.preprocessor, texts)
    assert lengths.min() < 16 and lengths.max() == 64  # Some are cut.
    padded = classifier.predict(texts, batch_size=4, verbose=0)
    bucketed = length_buckets.predict_by_length(
        classifier, texts, batch_size=4, bucket_width=16
    )
    np.testing.assert_allclose(bucketed, padded, atol=1e-5)
    assert classifier.preprocessor is not None


def test_batches_are_cut_to_bounded_bucket_lengths(classifier):
    texts, _ = mixed_texts()
    preprocessor = classifier.preprocessor
    dataset, order = length_buckets.length_sorted_dataset(
        preprocessor, texts, batch_size=4, bucket_width=16
    )
    lengths = length_buckets.packed_lengths(preprocessor, texts)
    assert sorted(order.tolist()) == list(range(len(texts)))
    assert (np.diff(lengths[order]) >= 0).all()
    widths = [batch["token_ids"].shape[1] for batch in dataset]
    # Each batch: the next multiple of 16 above its longest text.
    expected = [
        min(64, -(-lengths[order][i : i + 4].max() // 16) * 16)
        for i in range(0, len(texts), 4)
    ]
    assert widths == expected
    assert set(widths) <= {16, 32, 48, 64} and len(set(widths)) > 1


def test_evaluation_equals_the_padded_one(classifier):
    texts, labels = mixed_texts()
    padded = classifier.evaluate(
        texts, labels, batch_size=4, verbose=0, return_dict=True
    )
    dataset, _ = length_buckets.length_sorted_dataset(
        classifier.preprocessor, texts, labels, batch_size=4, bucket_width=16
    )
    classifier.preprocessor = None
    bucketed = classifier.evaluate(dataset, verbose=0, return_dict=True)
    assert bucketed["accuracy"] == padded["accuracy"]
    np.testing.assert_allclose(bucketed["loss"], padded["loss"], rtol=1e-5)


def test_segments_beyond_one_are_kept_whole(tiny_text_classifier):
    preprocessor = tiny_text_classifier.preprocessor
    preprocessor.sequence_length, preprocessor.max_segments = 48, 3
    texts = ["film " * 20, "a film", "the " * 5]
    dataset, order = length_buckets.length_sorted_dataset(
        preprocessor, texts, batch_size=1, bucket_width=8
    )
    lengths = length_buckets.packed_lengths(preprocessor, texts)[order]
    widths = [batch["token_ids"].shape[1] for batch in dataset]
    assert widths == [
        16 * -(-n // 16) if n > 16 else 8 * -(-n // 8) for n in lengths
    ]
    assert max(widths) > 16 and max(widths) % 16 == 0


def test_bad_bucket_width_is_refused():
    with pytest.raises(ValueError, match="bucket_width"):
        length_buckets.trim_padding(512, bucket_width=0)


def test_right_padding_is_refused(tiny_text_classifier):
    preprocessor = tiny_text_classifier.preprocessor
    preprocessor.padding_side = "right"
    with pytest.raises(ValueError, match="padding_side='left'"):
        length_buckets.length_sorted_dataset(preprocessor, ["a film"])

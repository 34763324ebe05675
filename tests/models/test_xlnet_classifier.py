"""XLNetClassifier: head, pooling, serialisation, training."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_CONFIG
from conftest import classification_gradients
from conftest import numpy
from conftest import packed_batch
from conftest import right_padded
from keras_hub.src.tests.test_case import TestCase

import keras_xlnet


def tiny_classifier(**kwargs):
    keras.utils.set_random_seed(1)
    backbone = keras_xlnet.XLNetBackbone(**TINY_CONFIG)
    return keras_xlnet.XLNetClassifier(backbone, num_classes=3, **kwargs)


def test_head_matches_hand_computation():
    classifier = tiny_classifier()
    inputs = packed_batch()
    hidden = numpy(classifier.backbone(inputs))[:, -1]
    summary = np.tanh(
        hidden @ numpy(classifier.summary_dense.kernel)
        + numpy(classifier.summary_dense.bias)
    )
    logits = summary @ numpy(classifier.logits_dense.kernel) + numpy(
        classifier.logits_dense.bias
    )
    np.testing.assert_allclose(
        classifier.predict(inputs, verbose=0), logits, atol=1e-5
    )


def test_right_padding_pools_the_cls_token():
    classifier = tiny_classifier()
    left = packed_batch(lengths=(9, 5))
    right = right_padded(left)
    np.testing.assert_allclose(
        classifier.predict(right, verbose=0),
        classifier.predict(left, verbose=0),
        atol=1e-5,
    )


def full_last_layer(classifier):
    """The functional graph as it is drawn: every position of every layer."""
    return keras.Model(classifier.inputs, classifier.outputs)


def test_last_layer_at_cls_only_changes_nothing():
    classifier = tiny_classifier(dropout=0.0)
    mixed = packed_batch(lengths=(9, 4, 1))
    # One right-padded row among left-padded ones.
    right = right_padded({key: value[1:2] for key, value in mixed.items()})
    mixed = {key: np.concatenate([mixed[key], right[key]]) for key in mixed}
    np.testing.assert_allclose(
        numpy(classifier(mixed)),
        numpy(full_last_layer(classifier)(mixed)),
        atol=1e-5,
    )


def test_last_layer_at_cls_only_keeps_the_gradients():
    keras.utils.set_random_seed(1)
    config = {**TINY_CONFIG, "dropout": 0.0, "attention_dropout": 0.0}
    classifier = keras_xlnet.XLNetClassifier(
        keras_xlnet.XLNetBackbone(**config), num_classes=3, dropout=0.0
    )
    x, y = packed_batch(lengths=(9, 6, 3)), np.array([0, 2, 1])
    ours = classification_gradients(classifier, x, y)
    full = classification_gradients(full_last_layer(classifier), x, y)
    for a, b in zip(ours, full):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert max(np.abs(a).max() for a in ours[-6:]) > 0


def test_alias_and_registration():
    assert keras_xlnet.XLNetTextClassifier is keras_xlnet.XLNetClassifier
    assert (
        keras.saving.get_registered_name(keras_xlnet.XLNetClassifier)
        == "keras_xlnet>XLNetClassifier"
    )
    assert (
        keras.saving.get_registered_name(keras_xlnet.XLNetBackbone)
        == "keras_xlnet>XLNetBackbone"
    )


def test_keras_file_round_trip(tmp_path):
    classifier = tiny_classifier(activation="softmax")
    inputs = packed_batch()
    classifier.save(tmp_path / "classifier.keras")
    restored = keras.saving.load_model(tmp_path / "classifier.keras")
    assert isinstance(restored, keras_xlnet.XLNetClassifier)
    np.testing.assert_allclose(
        restored.predict(inputs, verbose=0),
        classifier.predict(inputs, verbose=0),
        atol=1e-6,
    )


def test_preset_round_trip_and_new_head(tmp_path):
    classifier = tiny_classifier()
    classifier.save_to_preset(tmp_path / "preset")
    inputs = packed_batch()
    restored = keras_xlnet.XLNetClassifier.from_preset(str(tmp_path / "preset"))
    np.testing.assert_allclose(
        restored.predict(inputs, verbose=0),
        classifier.predict(inputs, verbose=0),
        atol=1e-6,
    )
    fresh = keras_xlnet.XLNetClassifier.from_preset(
        str(tmp_path / "preset"), num_classes=5
    )
    assert fresh.predict(inputs, verbose=0).shape == (3, 5)


def test_fit_reduces_the_loss():
    classifier = tiny_classifier()
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3))
    inputs = packed_batch(lengths=(9, 6, 3, 8), seed=5)
    labels = np.array([0, 1, 2, 1])
    history = classifier.fit(inputs, labels, epochs=8, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


class XLNetClassifierHarnessTest(TestCase):
    """KerasHub's own task checks: predict and fit on raw strings, tf.data
    and split preprocessing, compile defaults, saving, a local preset with
    the Model Garden's head."""

    @pytest.fixture(autouse=True)
    def _vocabulary_and_preset(self, tiny_vocabulary, fixture_preset):
        self.vocabulary = tiny_vocabulary
        self.preset, self.preset_inputs, self.preset_expected = fixture_preset

    def setUp(self):
        tokenizer = keras_xlnet.XLNetTokenizer(proto=self.vocabulary)
        self.preprocessor = keras_xlnet.XLNetTextClassifierPreprocessor(
            tokenizer, sequence_length=12
        )
        self.backbone = keras_xlnet.XLNetBackbone(
            **{**TINY_CONFIG, "vocabulary_size": tokenizer.vocabulary_size()}
        )
        self.init_kwargs = {
            "backbone": self.backbone,
            "num_classes": 2,
            "preprocessor": self.preprocessor,
        }
        self.train_data = (["the film was great", "a dull story"], [1, 0])
        self.input_data = self.preprocessor(*self.train_data)[0]

    def test_classifier_basics(self):
        self.run_task_test(
            cls=keras_xlnet.XLNetClassifier,
            init_kwargs=self.init_kwargs,
            train_data=self.train_data,
            expected_output_shape=(2, 2),
        )

    def test_saved_model(self):
        self.run_model_saving_test(
            cls=keras_xlnet.XLNetClassifier,
            init_kwargs=self.init_kwargs,
            input_data=self.input_data,
        )

    def test_local_preset(self):
        # The Model Garden classifier's logits (its head is in the preset).
        self.run_preset_test(
            cls=keras_xlnet.XLNetClassifier,
            preset=self.preset,
            input_data=self.preset_inputs,
            expected_output=self.preset_expected["logits"],
        )


def bad_batch(token_id):
    inputs = packed_batch()
    inputs["token_ids"][0, 3] = token_id
    return inputs


@pytest.mark.parametrize("token_id", [99, -1])
def test_token_ids_outside_the_embedding_are_refused(token_id):
    """JAX reads NaN for ids past the table, every backend wraps negative
    ids around: both are refused where the batch enters."""
    classifier = tiny_classifier()
    message = r"`token_ids` must lie in \[0, 99\)"
    with pytest.raises(Exception, match=message):
        classifier.predict(bad_batch(token_id), verbose=0)
    with pytest.raises(Exception, match=message):
        classifier.evaluate(bad_batch(token_id), np.zeros(3), verbose=0)
    with pytest.raises(ValueError, match=message):
        classifier.predict_on_batch(bad_batch(token_id))
    # The same batch through tf.data, as `finetune` feeds it.
    dataset = tf.data.Dataset.from_tensor_slices(bad_batch(token_id)).batch(3)
    with pytest.raises(Exception, match=message):
        classifier.predict(dataset, verbose=0)
    # The model is still usable: the same numbers as a fresh copy's.
    fresh = tiny_classifier()
    np.testing.assert_allclose(
        classifier.predict(packed_batch(), verbose=0),
        fresh.predict(packed_batch(), verbose=0),
        atol=1e-6,
    )


def test_text_with_ids_past_a_smaller_embedding_is_refused(tiny_vocabulary):
    tokenizer = keras_xlnet.XLNetTokenizer(proto=tiny_vocabulary)
    backbone = keras_xlnet.XLNetBackbone(
        **{**TINY_CONFIG, "vocabulary_size": 10}
    )
    classifier = keras_xlnet.XLNetClassifier(
        backbone,
        num_classes=2,
        preprocessor=keras_xlnet.XLNetPreprocessor(
            tokenizer, sequence_length=8
        ),
    )
    with pytest.raises(Exception, match=r"must lie in \[0, 10\)"):
        classifier.predict(["the film was great"], verbose=0)


def test_labels_outside_the_classes_are_refused():
    """JAX trained on with such labels without a word."""
    classifier = tiny_classifier()
    classifier.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer="adam",
    )
    labels = np.array([0, 3, -1])
    message = r"Labels must lie in \[0, 3\)"
    with pytest.raises(Exception, match=message):
        classifier.fit(packed_batch(), labels, verbose=0)
    with pytest.raises(ValueError, match=message):
        classifier.train_on_batch(packed_batch(), labels)
    dataset = tf.data.Dataset.from_tensor_slices((packed_batch(), labels))
    with pytest.raises(Exception, match=message):
        classifier.fit(dataset.batch(3), verbose=0)
    # Nothing was trained, and training still works afterwards.
    np.testing.assert_allclose(
        classifier.predict(packed_batch(), verbose=0),
        tiny_classifier().predict(packed_batch(), verbose=0),
        atol=1e-6,
    )
    classifier.fit(packed_batch(), np.array([0, 1, 2]), verbose=0)

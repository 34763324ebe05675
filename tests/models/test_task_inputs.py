"""What a task's `fit`, `evaluate` and `predict` take: shuffled training
examples (on every backend), and every bad value refused where it enters,
named (checked on the host or in `tf.data`, whatever the backend: once)."""

import keras
import numpy as np
import pytest
from conftest import TINY_CONFIG
from conftest import packed_batch

import keras_xlnet
from keras_xlnet.data.length_buckets import predict_by_length

# 128 texts sorted by class, as an aclImdb folder reads (negative, then
# positive). Each text's label is its index, so that the labels seen in a
# training step tell which texts it trained on; its class is index // 64.
TEXTS = [
    f"the film {i} was {'dull' if i < 64 else 'great'}" for i in range(128)
]
INDICES = np.arange(128)


def indexing_classifier(vocabulary):
    keras.utils.set_random_seed(0)
    tokenizer = keras_xlnet.XLNetTokenizer(proto=vocabulary)
    backbone = keras_xlnet.XLNetBackbone(
        **{**TINY_CONFIG, "vocabulary_size": tokenizer.vocabulary_size()}
    )
    return keras_xlnet.XLNetClassifier(
        backbone,
        num_classes=128,
        preprocessor=keras_xlnet.XLNetPreprocessor(tokenizer, 16),
    )


def on_host(values, record):
    """Calls `record` with the numpy value of `values` each time a compiled
    step runs (eagerly on torch)."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        jax.debug.callback(
            lambda v: record(np.asarray(v)), values, ordered=True
        )
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.py_function(lambda v: record(v.numpy()), [values], [])
    else:
        record(keras.ops.convert_to_numpy(values))


def batches_trained_on(classifier, **fit_arguments):
    """The labels of every batch, as observed inside the training step."""
    seen, training = [], []

    def record(labels):
        if training:  # Not Keras' symbolic build of the loss.
            seen.append(labels.astype(int).tolist())

    def recording_loss(y_true, y_pred):
        on_host(y_true, record)
        return keras.losses.sparse_categorical_crossentropy(
            y_true, y_pred, from_logits=True
        )

    # TensorFlow runs `py_function` outside XLA only.
    jit_compile = "auto" if keras.config.backend() != "tensorflow" else False
    classifier.compile(
        optimizer="sgd", loss=recording_loss, jit_compile=jit_compile
    )
    started = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: training.append(True)
    )
    classifier.fit(
        TEXTS,
        INDICES,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[started],
        **fit_arguments,
    )
    return seen


def test_fit_shuffles_lists_each_epoch_as_keras_does(tiny_vocabulary):
    batches = batches_trained_on(indexing_classifier(tiny_vocabulary))
    assert len(batches) == 16
    single_class = [b for b in batches if len({i // 64 for i in b}) == 1]
    assert len(single_class) <= 1
    epochs = [sum(batches[:8], []), sum(batches[8:], [])]
    for epoch in epochs:
        assert sorted(epoch) == list(range(128))  # Each text once.
    assert epochs[0] != epochs[1]
    # Seeded by Keras' global seed: the same seed, the same order.
    assert batches_trained_on(indexing_classifier(tiny_vocabulary)) == batches


def test_fit_keeps_the_order_without_shuffle(tiny_vocabulary):
    batches = batches_trained_on(
        indexing_classifier(tiny_vocabulary), shuffle=False
    )
    assert sum(batches, []) == list(range(128)) * 2


@pytest.mark.backend_independent
@pytest.mark.parametrize("shuffle", [True, False])
def test_validation_split_takes_the_last_examples_first(
    tiny_vocabulary, shuffle
):
    classifier = indexing_classifier(tiny_vocabulary)
    batches = batches_trained_on(
        classifier, validation_split=0.25, shuffle=shuffle
    )
    # Each epoch: 6 training batches, then 2 validation batches.
    assert sorted(sum(batches[:6], [])) == list(range(96))
    assert sum(batches[6:8], []) == list(range(96, 128))
    # Keras' rule: given validation data, the split is ignored.
    classifier = indexing_classifier(tiny_vocabulary)
    batches = batches_trained_on(
        classifier,
        validation_split=0.25,
        validation_data=(TEXTS[:16], INDICES[:16]),
    )
    assert sorted(sum(batches[:8], [])) == list(range(128))
    assert sum(batches[8:9], []) == list(range(16))


def tiny_classifier():
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(**TINY_CONFIG)
    classifier = keras_xlnet.XLNetClassifier(backbone, num_classes=3)
    classifier.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return classifier


@pytest.mark.backend_independent
def test_positional_arguments_are_keras_ones():
    classifier = tiny_classifier()
    history = classifier.fit(packed_batch(), np.array([0, 1, 2]), 3, 2, 0)
    assert len(history.history["loss"]) == 2  # epochs=2
    assert classifier.predict(packed_batch(), 3, 0).shape == (3, 3)
    classifier.evaluate(packed_batch(), np.array([0, 1, 2]), 3, 0)


@pytest.mark.backend_independent
def test_one_output_takes_any_finite_number_and_bools_name_classes():
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(**TINY_CONFIG)
    regression = keras_xlnet.XLNetClassifier(backbone, num_classes=1)
    regression.compile(optimizer="sgd", loss="mse")
    regression.fit(packed_batch(), np.array([3.8, 1.2, -0.5]), verbose=0)
    with pytest.raises(Exception, match="finite"):
        regression.fit(packed_batch(), np.array([3.8, np.nan, 1.0]), verbose=0)
    classifier = tiny_classifier()
    classifier.fit(packed_batch(), np.array([True, False, True]), verbose=0)
    # Small integer dtypes with many classes: compared without overflow.
    many = keras_xlnet.XLNetClassifier(
        keras_xlnet.XLNetBackbone(**TINY_CONFIG), num_classes=200
    )
    many.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    many.fit(packed_batch(), np.array([150, 3, 199], "uint8"), verbose=0)


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0.0, 7.0, 1.0]), r"Labels must lie in \[0, 3\)"),
        (np.array([0.0, 0.5, 1.0]), "whole class indices"),
        (np.array([0.0, np.nan, 1.0]), "Labels must be finite"),
        (np.array([0.0, np.inf, 1.0]), "Labels must be finite"),
        (np.array(["neg", "pos", "neg"]), "dtype string"),
        (np.array([0, 1, 5], "uint8"), r"Labels must lie in \[0, 3\)"),
    ],
    ids=["float past", "fraction", "nan", "inf", "strings", "uint8"],
)
def test_bad_labels_are_refused(labels, message):
    classifier = tiny_classifier()
    with pytest.raises(Exception, match=message):
        classifier.evaluate(packed_batch(), labels, verbose=0)
    with pytest.raises(Exception, match=message):
        classifier.fit(packed_batch(), labels, verbose=0)


@pytest.mark.backend_independent
@pytest.mark.parametrize("weight", [np.nan, np.inf, -1.0])
def test_bad_sample_weights_are_refused_before_the_step(weight):
    classifier = tiny_classifier()
    before = classifier.get_weights()
    with pytest.raises(Exception, match="finite and non-negative"):
        classifier.fit(
            packed_batch(),
            np.array([0, 1, 2]),
            sample_weight=np.array([1.0, weight, 1.0]),
            verbose=0,
        )
    for a, b in zip(classifier.get_weights(), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.backend_independent
def test_float_labels_that_name_classes_train():
    classifier = tiny_classifier()
    history = classifier.fit(
        packed_batch(), np.array([0.0, 2.0, 1.0]), verbose=0
    )
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.backend_independent
def test_empty_inputs_and_bare_strings_are_named(tiny_text_classifier):
    classifier = tiny_text_classifier
    classifier.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    for call in (
        lambda: classifier.predict([]),
        lambda: classifier.evaluate([], []),
        lambda: classifier.fit([], []),
        lambda: predict_by_length(classifier, []),
    ):
        with pytest.raises(ValueError, match="received no examples"):
            call()
    for call in (
        lambda: classifier.predict("a good film"),
        lambda: classifier.predict(np.array("a good film")),
        lambda: classifier.fit("a good film", [1]),
        lambda: predict_by_length(classifier, "a good film"),
    ):
        with pytest.raises(ValueError, match="Received one string"):
            call()
    # A generator of texts is read as the list it yields.
    texts = ["a good film", "the plot was dull"]
    np.testing.assert_allclose(
        predict_by_length(classifier, (t for t in texts)),
        classifier.predict(texts, verbose=0),
        atol=1e-5,
    )

"""Long documents read segment by segment with XLNet's memory.

References: Hugging Face's XLNet run segment by segment with `mems`, the
plain one-segment classifier, and, for gradients, one un-segmented pass
whose permutation mask gives every segment the keys it sees with memory.
"""

import keras
import keras_hub
import numpy as np
import pytest
from conftest import TINY_CONFIG
from conftest import classification_gradients
from conftest import numpy
from conftest import packed_batch

import keras_xlnet
from keras_xlnet.models.segment_recurrence import SegmentSettings
from keras_xlnet.models.segment_recurrence import encode_last_segment

TOLERANCE = 1e-5
PAD, SEP, CLS = 5, 4, 3


def document_batch(lengths, segment_length, segments, vocabulary_size=99):
    """Left-padded single-text documents of `lengths` pieces (`<sep> <cls>`
    included) over `segments` segments, as the preprocessor packs them."""
    rng = np.random.default_rng(7)
    total = segment_length * segments
    token_ids = np.full((len(lengths), total), PAD, "int32")
    segment_ids = np.full((len(lengths), total), 3, "int32")
    padding_mask = np.zeros((len(lengths), total), "int32")
    for row, length in enumerate(lengths):
        token_ids[row, total - length :] = rng.integers(
            9, vocabulary_size, length
        )
        token_ids[row, -2:] = SEP, CLS
        segment_ids[row, total - length :] = 0
        segment_ids[row, -1] = 2
        padding_mask[row, total - length :] = 1
    return {
        "token_ids": token_ids,
        "padding_mask": padding_mask,
        "segment_ids": segment_ids,
    }


def segments_of(inputs, segment_length):
    total = inputs["token_ids"].shape[1]
    return [
        {k: v[:, start : start + segment_length] for k, v in inputs.items()}
        for start in range(0, total, segment_length)
    ]


def hugging_face_by_segments(peer, inputs, segment_length, memory_length=None):
    """The peer's outputs on the last segment, after reading the earlier
    ones with `mems` (time-major in Hugging Face, batch-major here), one
    document at a time: after each segment the padding positions are
    removed from its `mems`, which Hugging Face would attend to."""
    outputs = []
    for row in range(len(inputs["token_ids"])):
        document = {k: v[row : row + 1] for k, v in inputs.items()}
        memory = memory_mask = None
        for segment in segments_of(document, segment_length):
            output = peer(segment, memory=memory, keep_memory=True)
            real = segment["padding_mask"][0].astype(bool)
            if memory_mask is not None:
                real = np.concatenate([memory_mask, real])
            if memory_length:
                real = real[-memory_length:]
            memory = [
                np.transpose(m.numpy(), (1, 0, 2))[:, real] for m in output.mems
            ]
            memory_mask = real[real]
            if not memory_mask.size:
                memory = memory_mask = None
        outputs.append(output)
    return {
        name: np.concatenate([getattr(o, name).numpy() for o in outputs])
        for name in ("logits", "last_hidden_state")
        if hasattr(outputs[0], name)
    }


def predict(model, inputs):
    """Compiled inference (JAX runs a model slowly op by op)."""
    return model.predict(inputs, batch_size=len(inputs["token_ids"]), verbose=0)


def tensors(values):
    convert = keras.ops.convert_to_tensor
    if isinstance(values, dict):
        return {key: convert(value) for key, value in values.items()}
    return [convert(value) for value in values]


def tiny_classifier(**kwargs):
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(
        **TINY_CONFIG, dropout=0.0, attention_dropout=0.0
    )
    return keras_xlnet.XLNetClassifier(
        backbone, num_classes=2, dropout=0.0, **kwargs
    )


def test_documents_of_one_segment_give_the_plain_logits():
    plain = tiny_classifier()
    short = packed_batch(lengths=(9, 6, 3), total=9)
    expected = predict(plain, short)
    # The same documents behind two whole segments of padding.
    padding = {
        "token_ids": np.full((3, 18), PAD, "int32"),
        "padding_mask": np.zeros((3, 18), "int32"),
        "segment_ids": np.full((3, 18), 3, "int32"),
    }
    long = {
        k: np.concatenate([padding[k], v], axis=1) for k, v in short.items()
    }
    plain.segment_length, plain.max_segments = 9, 3
    np.testing.assert_allclose(predict(plain, long), expected, atol=1e-6)
    # An input of at most one segment is read as it is.
    np.testing.assert_allclose(predict(plain, short), expected, atol=1e-6)


def test_three_segments_match_hugging_face_with_mems(hf_peer):
    inputs = document_batch(lengths=(21, 18, 17), segment_length=8, segments=3)
    peer = hf_peer()
    expected = hugging_face_by_segments(peer, inputs, 8)["last_hidden_state"]
    backbone = keras_xlnet.load_checkpoint(peer.folder).backbone
    actual = encode_last_segment(backbone, inputs, SegmentSettings(8, 3))
    last = inputs["padding_mask"][:, -8:].astype(bool)
    diff = np.abs(numpy(actual) - expected)[last].max()
    assert diff <= TOLERANCE


def test_backbone_encode_hides_padding_in_memory_by_its_mask(hf_peer):
    """`XLNetBackbone.encode` segment by segment, passing each call's
    `new_memory_mask` on, equals Hugging Face with the padding removed
    from its `mems`."""
    inputs = document_batch(lengths=(21, 18, 17), segment_length=8, segments=3)
    peer = hf_peer()
    expected = hugging_face_by_segments(peer, inputs, 8)["last_hidden_state"]
    backbone = keras_xlnet.load_checkpoint(peer.folder).backbone
    memory = memory_mask = None
    for segment in segments_of(inputs, 8):
        outputs = backbone.encode(
            **segment, memory=memory, memory_mask=memory_mask
        )
        memory, memory_mask = outputs["new_memory"], outputs["new_memory_mask"]
    np.testing.assert_array_equal(numpy(memory_mask), inputs["padding_mask"])
    last = inputs["padding_mask"][:, -8:].astype(bool)
    actual = numpy(outputs["sequence_output"])
    assert np.abs(actual - expected)[last].max() <= TOLERANCE
    with pytest.raises(ValueError, match="memory_mask` must be"):
        backbone.encode(**segment, memory=memory, memory_mask=last)


# Whole documents, and documents whose first segment is partly padding.
DOCUMENTS = {"whole": (24, 24), "padded": (21, 18, 17)}


@pytest.mark.parametrize("documents", sorted(DOCUMENTS))
@pytest.mark.parametrize("memory_length", [None, 8, 4])
def test_classifier_logits_match_hugging_face_with_mems(
    hf_peer, documents, memory_length
):
    """Memory of every earlier position, of one segment, of half a segment;
    padding never attended (Hugging Face's `mems` without it)."""
    lengths = DOCUMENTS[documents]
    inputs = document_batch(lengths=lengths, segment_length=8, segments=3)
    peer = hf_peer(task="classifier", mem_len=memory_length)
    expected = hugging_face_by_segments(peer, inputs, 8, memory_length)
    classifier = keras_xlnet.load_checkpoint(peer.folder).classifier
    classifier.segment_length, classifier.max_segments = 8, 4
    classifier.memory_length = memory_length
    np.testing.assert_allclose(
        classifier.predict(inputs, verbose=0),
        expected["logits"],
        atol=TOLERANCE,
    )
    # Behind a whole segment of padding (4 segments packed), the same.
    four = document_batch(lengths=lengths, segment_length=8, segments=4)
    np.testing.assert_allclose(
        classifier.predict(four, verbose=0), expected["logits"], atol=TOLERANCE
    )


def test_padding_in_memory_is_never_attended():
    """Whatever the padding of a partly filled first segment holds, the
    logits stay: its states are hidden from the later segments."""
    classifier = tiny_classifier(segment_length=8, max_segments=3)
    inputs = document_batch(lengths=(21, 18), segment_length=8, segments=3)
    other = {k: v.copy() for k, v in inputs.items()}
    padding = other["padding_mask"] == 0
    other["token_ids"][padding] = 50
    other["segment_ids"][padding] = 1
    np.testing.assert_allclose(
        predict(classifier, other), predict(classifier, inputs), atol=1e-6
    )


def test_no_memory_reads_the_last_segment_alone(hf_peer):
    inputs = document_batch(lengths=(24, 20), segment_length=8, segments=3)
    peer = hf_peer(task="classifier")
    classifier = keras_xlnet.load_checkpoint(peer.folder).classifier
    classifier.segment_length, classifier.max_segments = 8, 3
    classifier.memory_length = 0
    last = {k: v[:, -8:] for k, v in inputs.items()}
    np.testing.assert_allclose(
        classifier.predict(inputs, verbose=0),
        peer(last).logits.numpy(),
        atol=TOLERANCE,
    )


class ConstantMemoryClassifier(keras.Model):
    """The classifier's last segment, with the earlier segments' memory
    computed beforehand as constants: the manual reading of "stop"."""

    def __init__(self, classifier, inputs, segment_length):
        super().__init__()
        self.classifier = classifier
        backbone = classifier.backbone
        memory = None
        for segment in segments_of(inputs, segment_length)[:-1]:
            layer_inputs = backbone._encode(
                **tensors(segment),
                memory=None if memory is None else tensors(memory),
                keep_layer_inputs=True,
            )["layer_inputs"]
            layer_inputs = [numpy(x) for x in layer_inputs]
            memory = (
                layer_inputs
                if memory is None
                else [
                    np.concatenate([m, x], axis=1)
                    for m, x in zip(memory, layer_inputs)
                ]
            )
        self.memory = memory

    def call(self, inputs, training=None):
        classifier = self.classifier
        cls_state = classifier.backbone._encode(
            **tensors(inputs), memory=tensors(self.memory), training=training
        )["sequence_output"][:, -1]
        return classifier.logits_dense(classifier.summary_dense(cls_state))


class OnePassClassifier(keras.Model):
    """The classifier as one pass over the whole document, each segment
    hidden from the earlier ones by the permutation mask: the attention
    pattern of reading segments with all memory kept."""

    def __init__(self, classifier, segment_length):
        super().__init__()
        self.classifier = classifier
        self.segment_length = segment_length

    def call(self, inputs, training=None):
        classifier = self.classifier
        length = inputs["token_ids"].shape[1]
        block = np.arange(length) // self.segment_length
        later = (block[None, :] > block[:, None]).astype("float32")
        perm_mask = np.repeat(later[None], inputs["token_ids"].shape[0], 0)
        cls_state = classifier.backbone._encode(
            **tensors(inputs),
            perm_mask=keras.ops.convert_to_tensor(perm_mask),
            training=training,
        )["sequence_output"][:, -1]
        return classifier.logits_dense(classifier.summary_dense(cls_state))


def gradients_by_path(model, inputs, labels):
    predict(model, inputs)  # Builds the wrappers.
    grads = classification_gradients(model, inputs, labels)
    return {v.path: g for v, g in zip(model.trainable_variables, grads)}


def assert_same_gradients(actual, expected, atol):
    assert actual.keys() == expected.keys()
    for path in expected:
        np.testing.assert_allclose(
            actual[path], expected[path], atol=atol, err_msg=path
        )


# Full documents: with no padding, memory counting as segment 0 matches the
# one-pass segment ids.
FULL = dict(lengths=(24, 24), segment_length=8, segments=3)
LABELS = np.array([0, 1])


def test_stopped_memory_carries_no_gradient():
    inputs = document_batch(**FULL)
    classifier = tiny_classifier(segment_length=8, max_segments=3)
    last = segments_of(inputs, 8)[-1]
    manual = ConstantMemoryClassifier(classifier, inputs, 8)
    expected = gradients_by_path(manual, last, LABELS)
    actual = gradients_by_path(classifier, inputs, LABELS)
    assert_same_gradients(actual, expected, atol=1e-6)
    # With full back-propagation the earlier segments add to them.
    classifier.memory_gradient = "full"
    full = gradients_by_path(classifier, inputs, LABELS)
    (embeddings,) = [
        p for p in full if p.endswith("token_embedding/embeddings")
    ]
    assert np.abs(full[embeddings] - expected[embeddings]).max() > 1e-4


def test_full_gradients_equal_one_pass_with_the_segment_pattern():
    inputs = document_batch(**FULL)
    classifier = tiny_classifier(
        segment_length=8, max_segments=3, memory_gradient="full"
    )
    expected = gradients_by_path(
        OnePassClassifier(classifier, 8), inputs, LABELS
    )
    actual = gradients_by_path(classifier, inputs, LABELS)
    assert_same_gradients(actual, expected, atol=1e-4)


def test_one_pass_pattern_gives_the_segmented_logits():
    inputs = document_batch(**FULL)
    classifier = tiny_classifier(segment_length=8, max_segments=3)
    np.testing.assert_allclose(
        predict(classifier, inputs),
        predict(OnePassClassifier(classifier, 8), inputs),
        atol=TOLERANCE,
    )


def first_segment_task(count, segment_length=8, segments=4, seed=0):
    """Documents whose label is one token (10 or 11) placed at a random
    position of the first segment; every other piece is noise."""
    rng = np.random.default_rng(seed)
    total = segment_length * segments
    token_ids = rng.integers(20, 99, (count, total)).astype("int32")
    labels = rng.integers(0, 2, count)
    positions = rng.integers(0, segment_length, count)
    token_ids[np.arange(count), positions] = 10 + labels
    token_ids[:, -2:] = SEP, CLS
    segment_ids = np.zeros((count, total), "int32")
    segment_ids[:, -1] = 2
    inputs = {
        "token_ids": token_ids,
        "padding_mask": np.ones((count, total), "int32"),
        "segment_ids": segment_ids,
    }
    return inputs, labels


def accuracy_after_training(segment_length):
    train, train_labels = first_segment_task(512, seed=0)
    test, test_labels = first_segment_task(256, seed=1)
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=99,
        num_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        dropout=0.0,
        attention_dropout=0.0,
    )
    classifier = keras_xlnet.XLNetClassifier(
        backbone,
        num_classes=2,
        dropout=0.0,
        segment_length=segment_length,
        max_segments=4 if segment_length else 1,
        memory_gradient="full",
    )
    if segment_length is None:  # One segment: the last 8 positions only.
        train = {k: v[:, -8:] for k, v in train.items()}
        test = {k: v[:, -8:] for k, v in test.items()}
    classifier.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(train, train_labels, batch_size=32, epochs=8, verbose=0)
    return classifier.evaluate(test, test_labels, verbose=0, return_dict=True)[
        "accuracy"
    ]


def test_memory_carries_the_label_across_segments():
    """Trained with full back-propagation through the segments: the label
    token's embedding appears in the first segment only, so with the
    stopped gradient it would never be trained."""
    assert accuracy_after_training(segment_length=8) >= 0.95
    assert accuracy_after_training(segment_length=None) <= 0.6


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(segment_length=0), "segment_length"),
        (dict(memory_length=-1), "memory_length"),
        (dict(memory_gradient="some"), "memory_gradient"),
        (dict(max_segments=0), "max_segments"),
        (dict(max_segments=2), "needs a `segment_length`"),
        (dict(segment_length=512, max_segments=10**6), "exceed 65536"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        tiny_classifier(**settings)


def test_input_of_partial_segments_is_refused():
    classifier = tiny_classifier(segment_length=8, max_segments=4)
    inputs = document_batch(lengths=(12,), segment_length=4, segments=5)
    with pytest.raises(ValueError, match="20 positions .* segments of 8"):
        classifier.predict(inputs, verbose=0)
    with pytest.raises(ValueError, match="20 positions .* segments of 8"):
        classifier(inputs)


def test_input_of_more_segments_than_the_most_is_refused():
    classifier = tiny_classifier(segment_length=8, max_segments=2)
    inputs = document_batch(lengths=(12,), segment_length=8, segments=3)
    with pytest.raises(ValueError, match="3 segments .* max_segments=2"):
        classifier.predict(inputs, verbose=0)


def test_segment_settings_round_trip(tmp_path):
    classifier = tiny_classifier(
        segment_length=8,
        max_segments=3,
        memory_length=12,
        memory_gradient="full",
    )
    inputs = document_batch(lengths=(24, 13), segment_length=8, segments=3)
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    restored = keras.saving.load_model(path)
    assert (restored.segment_length, restored.max_segments) == (8, 3)
    assert restored.memory_length == 12
    assert restored.memory_gradient == "full"
    np.testing.assert_allclose(
        predict(restored, inputs), predict(classifier, inputs), atol=1e-6
    )


def text_classifier(vocabulary, max_segments, **kwargs):
    tokenizer = keras_xlnet.XLNetTokenizer(proto=vocabulary)
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(
        **{**TINY_CONFIG, "vocabulary_size": tokenizer.vocabulary_size()},
        **kwargs,
    )
    preprocessor = keras_xlnet.XLNetPreprocessor(
        tokenizer, sequence_length=16 * max_segments, max_segments=max_segments
    )
    return keras_xlnet.XLNetClassifier(
        backbone, num_classes=2, preprocessor=preprocessor
    )


SHORT = ["a good film", "dull plot"]
LONG = ["the film was great, the actor was good, the plot was dull " * 2]


def test_raw_strings_fit_evaluate_predict(tiny_vocabulary):
    classifier = text_classifier(tiny_vocabulary, max_segments=3)
    assert (classifier.segment_length, classifier.max_segments) == (16, 3)
    tokenizer = classifier.preprocessor.tokenizer
    assert max(len(tokenizer(text)) for text in SHORT) <= 14
    assert len(tokenizer(LONG[0])) > 32
    plain = text_classifier(tiny_vocabulary, max_segments=1)
    # Texts of one segment: the plain classifier's logits.
    np.testing.assert_allclose(
        classifier.predict(SHORT, verbose=0),
        plain.predict(SHORT, verbose=0),
        atol=1e-6,
    )
    texts, labels = SHORT + LONG, np.array([1, 0, 1])
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=keras.config.backend() != "torch",
    )
    classifier.fit(texts, labels, batch_size=3, epochs=2, verbose=0)
    logits = classifier.predict(texts, verbose=0)
    expected_loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True
    )(labels, logits)
    loss = classifier.evaluate(
        texts, labels, batch_size=3, verbose=0, return_dict=True
    )["loss"]
    np.testing.assert_allclose(loss, numpy(expected_loss), rtol=1e-5)


def test_preprocessor_with_more_segments_than_the_classifier_is_refused(
    tiny_vocabulary,
):
    classifier = text_classifier(tiny_vocabulary, max_segments=3)
    classifier.preprocessor.sequence_length = 64
    classifier.preprocessor.max_segments = 4
    with pytest.raises(ValueError, match="max_segments = 4"):
        classifier.predict(SHORT, verbose=0)


@pytest.mark.parametrize(
    "policy, bound", [("mixed_bfloat16", 4e-2), ("mixed_float16", 8e-3)]
)
def test_mixed_precision_segments_are_close(policy, bound):
    inputs = document_batch(lengths=(21, 18), segment_length=8, segments=3)
    reference = tiny_classifier(segment_length=8, max_segments=3)
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(
        **TINY_CONFIG, dropout=0.0, attention_dropout=0.0, dtype=policy
    )
    mixed = keras_xlnet.XLNetClassifier(
        backbone, num_classes=2, segment_length=8, max_segments=3
    )
    mixed.set_weights(reference.get_weights())
    expected = predict(reference, inputs)
    actual = predict(mixed, inputs)
    assert np.isfinite(actual).all()
    assert np.abs(actual - expected).max() < bound


def test_remat_keeps_logits_and_full_gradients():
    inputs = document_batch(lengths=(21, 24), segment_length=8, segments=3)

    def build(remat):
        keras.utils.set_random_seed(0)
        backbone = keras_xlnet.XLNetBackbone(
            **TINY_CONFIG, dropout=0.0, attention_dropout=0.0, remat=remat
        )
        return keras_xlnet.XLNetClassifier(
            backbone,
            num_classes=2,
            dropout=0.0,
            segment_length=8,
            max_segments=3,
            memory_gradient="full",
        )

    plain, remat = build(False), build(True)
    np.testing.assert_allclose(
        predict(remat, inputs), predict(plain, inputs), atol=1e-6
    )
    for a, b in zip(
        classification_gradients(plain, inputs, LABELS),
        classification_gradients(remat, inputs, LABELS),
    ):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_preset_classifier_reads_its_preprocessors_segments(fixture_preset):
    folder, _, _ = fixture_preset
    preprocessor = keras_xlnet.XLNetPreprocessor.from_preset(
        folder, sequence_length=48, max_segments=3
    )
    for task_class in (
        keras_xlnet.XLNetClassifier,
        keras_hub.models.TextClassifier,
    ):
        classifier = task_class.from_preset(folder, preprocessor=preprocessor)
        assert (classifier.segment_length, classifier.max_segments) == (16, 3)


@pytest.mark.parametrize("segments", [1, 2, 3])
def test_the_functional_graph_computes_what_the_classifier_does(segments):
    """Keras' tools read the functional graph: a sub-model on it and
    `clone_model` give the classifier's logits."""
    classifier = tiny_classifier(segment_length=8, max_segments=3)
    length = 8 * segments
    inputs = document_batch(
        lengths=(length - 3, length), segment_length=8, segments=segments
    )
    expected = predict(classifier, inputs)
    graph = keras.Model(classifier.inputs, classifier.outputs)
    (logits,) = keras.tree.flatten(graph(tensors(inputs)))
    np.testing.assert_allclose(numpy(logits), expected, atol=1e-6)
    clone = keras.models.clone_model(classifier)
    clone.set_weights(classifier.get_weights())
    np.testing.assert_allclose(predict(clone, inputs), expected, atol=1e-6)


def batches_of_several_lengths():
    """Batches of one short segment, one, two and three whole segments of
    8, with their labels, in an order that makes TensorFlow trace again."""
    widths = (8, 24, 16, 5, 24)
    batches = []
    for index, width in enumerate(widths):
        segments = max(1, width // 8)
        inputs = document_batch(
            lengths=(width - 3, width), segment_length=8, segments=segments
        )
        inputs = {key: value[:, -width:] for key, value in inputs.items()}
        batches.append((inputs, np.array([index % 2, 1 - index % 2])))
    return batches


def unknown_length_dataset(batches):
    import tensorflow as tf

    spec = tf.TensorSpec((None, None), tf.int32)
    return tf.data.Dataset.from_generator(
        lambda: iter(batches),
        output_signature=(
            {key: spec for key in ("token_ids", "padding_mask", "segment_ids")},
            tf.TensorSpec((None,), tf.int64),
        ),
    )


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="only TensorFlow traces one function for unknown lengths",
)
def test_a_function_of_unknown_length_reads_each_batch_in_its_segments():
    """TensorFlow relaxes the length of a function traced at several
    lengths; each batch then runs the branch of its own segment count
    (`tools/benchmark.py --lengths --max-segments 2` times what that
    saves), with the logits and the training of each batch alone."""
    import tensorflow as tf

    batches = batches_of_several_lengths()
    classifier = tiny_classifier(segment_length=8, max_segments=3)
    traced_lengths = []
    segments_read = tf.Variable(0)
    read, encode = classifier.segment_reader.call, classifier.backbone._encode

    def reading(inputs, **kwargs):
        traced_lengths.append(inputs["token_ids"].shape[1])
        return read(inputs, **kwargs)

    def encoding(*args, **kwargs):
        segments_read.assign_add(1)  # When it runs, not when traced.
        return encode(*args, **kwargs)

    classifier.segment_reader.call = reading
    classifier.backbone._encode = encoding
    logits = classifier.predict(unknown_length_dataset(batches), verbose=0)
    del classifier.segment_reader.call, classifier.backbone._encode
    assert None in traced_lengths
    # 1 + 3 + 2 + 1 + 3 segments, not each batch padded to 3.
    assert int(segments_read.numpy()) == 10
    expected = [numpy(classifier(tensors(x))) for x, _ in batches]
    np.testing.assert_allclose(logits, np.concatenate(expected), atol=1e-6)

    for relaxed, eager in zip(
        trained_weights(batches, run_eagerly=False),
        trained_weights(batches, run_eagerly=True),
    ):
        np.testing.assert_allclose(relaxed, eager, atol=1e-5)
    # The functional graph alone (no preprocessing) still refuses a
    # partial segment beyond the first.
    graph = keras.Model(classifier.inputs, classifier.outputs)
    partial = document_batch(lengths=(9, 12), segment_length=4, segments=3)
    with pytest.raises(Exception, match="not at most 3 whole segments of 8"):
        graph.predict(
            unknown_length_dataset(batches[:3] + [(partial, LABELS)]),
            verbose=0,
        )


def trained_weights(batches, run_eagerly, remat=False):
    """The weights after two epochs of `batches` (a tiny classifier of up
    to three segments of 8, SGD)."""
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(
        **TINY_CONFIG, dropout=0.0, attention_dropout=0.0, remat=remat
    )
    model = keras_xlnet.XLNetClassifier(
        backbone, num_classes=2, dropout=0.0, segment_length=8, max_segments=3
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=run_eagerly,
    )
    model.fit(unknown_length_dataset(batches), epochs=2, verbose=0)
    return model.get_weights()


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="only TensorFlow traces one function for unknown lengths",
)
def test_remat_trains_at_unknown_lengths():
    """TensorFlow cannot take remat's gradient inside a branch: with remat
    a batch of unknown length is padded to the most segments instead,
    and trains as each batch alone."""
    batches = batches_of_several_lengths()
    for relaxed, eager in zip(
        trained_weights(batches, run_eagerly=False, remat=True),
        trained_weights(batches, run_eagerly=True, remat=True),
    ):
        np.testing.assert_allclose(relaxed, eager, atol=1e-5)

"""Serving exports against the classifier that wrote them.

A tiny classifier with the real XLNet vocabulary is trained a few steps
under the suite's backend and exported; the SavedModel then runs in a
fresh process that cannot import Keras, KerasHub or keras_xlnet
(`serve_saved_model.py`): its tokenizer must give the eager
`XLNetTokenizer`'s ids (the Python SentencePiece library's) on every text,
its logits the classifier's `predict`. ONNX Runtime runs the ONNX export.
"""

import subprocess
import sys

import keras
import numpy as np
import pytest
from child_processes import DEADLINE
from conftest import HF_INTEGRATION_TEXTS
from conftest import TINY_CONFIG
from conftest import imdb_texts
from conftest import numpy
from conftest import real_vocabulary

import keras_xlnet

SERVER = __file__.replace("test_export.py", "serve_saved_model.py")
SEQUENCE_LENGTH = 64
CLASSIFIED = 200
# Batch sizes and lengths of the packed requests.
PACKED_SHAPES = [(1, SEQUENCE_LENGTH), (3, SEQUENCE_LENGTH), (8, 32), (1, 16)]


def tiny_classifier(max_segments=1):
    keras.utils.set_random_seed(0)
    tokenizer = keras_xlnet.XLNetTokenizer(proto=real_vocabulary())
    backbone = keras_xlnet.XLNetBackbone(
        **{**TINY_CONFIG, "vocabulary_size": tokenizer.vocabulary_size()}
    )
    preprocessor = keras_xlnet.XLNetPreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH, max_segments=max_segments
    )
    classifier = keras_xlnet.XLNetClassifier(
        backbone, num_classes=2, preprocessor=preprocessor
    )
    # A random tiny model's logits span about 3e-4 over the reviews, so
    # that a wrong token could hide below the 1e-5 tolerance: 1000 times
    # larger, one token changed moves them by more.
    kernel, bias = classifier.logits_dense.get_weights()
    classifier.logits_dense.set_weights([kernel * 1000, bias])
    return classifier


def packed_requests(classifier, texts):
    """Packed inputs at the `PACKED_SHAPES`: left-padded ids, their last
    `length` positions."""
    packed = classifier.preprocessor(texts[:8])
    requests = {}
    for index, (batch, length) in enumerate(PACKED_SHAPES):
        for name, values in packed.items():
            values = np.asarray(values).astype("int32")[:batch, -length:]
            requests[f"packed_{name}_{index}"] = values
    return requests


def encoded(texts):
    """Texts as a bytes array (`np.load` refuses object arrays)."""
    return np.array([text.encode("utf-8") for text in texts])


def serve(saved_model, tmp_path, requests):
    np.savez(tmp_path / "requests.npz", **requests)
    done = subprocess.run(
        [sys.executable, SERVER, saved_model, tmp_path / "requests.npz"]
        + [tmp_path / "results.npz"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(tmp_path / "results.npz"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A classifier trained 4 steps under this backend, its SavedModel and
    its ONNX model."""
    classifier = tiny_classifier()
    texts = imdb_texts()
    labels = np.arange(32) % 2
    classifier.fit(texts[:32], labels, batch_size=8, epochs=1, verbose=0)
    folder = tmp_path_factory.mktemp("export")
    classifier.export(folder / "saved_model")
    classifier.export(folder / "classifier.onnx", format="onnx")
    return classifier, folder


def test_saved_model_serves_text_as_the_classifier(trained, tmp_path):
    classifier, folder = trained
    reviews = imdb_texts()
    texts = reviews + HF_INTEGRATION_TEXTS + ["", "????", "2,000, ³,4 <eop>"]
    firsts, seconds = reviews[200:230], reviews[230:260]
    requests = {
        "texts": encoded(texts),
        "classified": np.array(CLASSIFIED),
        "firsts": encoded(firsts),
        "seconds": encoded(seconds),
        **packed_requests(classifier, reviews),
    }
    served = serve(str(folder / "saved_model"), tmp_path, requests)

    expected_ids = classifier.preprocessor.tokenizer(texts)
    served_ids = [
        row[:length].tolist()
        for row, length in zip(served["token_ids"], served["lengths"])
    ]
    mismatches = [
        i for i, (a, b) in enumerate(zip(served_ids, expected_ids)) if a != b
    ]
    assert len(served_ids) == len(texts) and mismatches == []

    logits = classifier.predict(reviews[:CLASSIFIED], verbose=0)
    np.testing.assert_allclose(served["logits"], logits, atol=1e-5)
    np.testing.assert_allclose(
        served["probabilities"], keras.ops.softmax(logits), atol=1e-6
    )
    pair_logits = classifier.predict(x=(firsts, seconds), verbose=0)
    np.testing.assert_allclose(served["pair_logits"], pair_logits, atol=1e-5)
    for index, (batch, length) in enumerate(PACKED_SHAPES):
        inputs = {
            name: requests[f"packed_{name}_{index}"]
            for name in ("token_ids", "padding_mask", "segment_ids")
        }
        logits = served[f"packed_logits_{index}"]
        assert logits.shape == (batch, 2)
        np.testing.assert_allclose(logits, numpy(classifier(inputs)), atol=1e-5)


def test_onnx_serves_any_batch_and_length(trained):
    import onnxruntime

    classifier, folder = trained
    session = onnxruntime.InferenceSession(str(folder / "classifier.onnx"))
    requests = packed_requests(classifier, imdb_texts())
    for index, (batch, length) in enumerate(PACKED_SHAPES):
        inputs = {
            name: requests[f"packed_{name}_{index}"]
            for name in ("token_ids", "padding_mask", "segment_ids")
        }
        logits, probabilities = session.run(["logits", "probabilities"], inputs)
        assert logits.shape == (batch, 2)
        np.testing.assert_allclose(logits, numpy(classifier(inputs)), atol=1e-5)
        np.testing.assert_allclose(
            probabilities, keras.ops.softmax(logits), atol=1e-6
        )


@pytest.mark.backend_independent
def test_two_segment_classifier_exports(tmp_path):
    import onnxruntime

    classifier = tiny_classifier(max_segments=2)
    reviews = imdb_texts()
    classifier.export(tmp_path / "saved_model")
    classifier.export(tmp_path / "classifier.onnx", format="onnx")
    requests = {
        "texts": encoded(reviews[:20]),
        "classified": np.array(20),
        "firsts": encoded(reviews[20:24]),
        "seconds": encoded(reviews[24:28]),
    }
    served = serve(str(tmp_path / "saved_model"), tmp_path, requests)
    logits = classifier.predict(reviews[:20], verbose=0)
    np.testing.assert_allclose(served["logits"], logits, atol=1e-5)
    session = onnxruntime.InferenceSession(str(tmp_path / "classifier.onnx"))
    for length in (SEQUENCE_LENGTH, SEQUENCE_LENGTH // 2):
        inputs = {
            name: np.asarray(values).astype("int32")[:, -length:]
            for name, values in classifier.preprocessor(reviews[:3]).items()
        }
        (onnx_logits,) = session.run(["logits"], inputs)
        np.testing.assert_allclose(
            onnx_logits, numpy(classifier(inputs)), atol=1e-5
        )


def test_an_int8_classifier_reloads_and_exports(tmp_path):
    """`quantize("int8")` on a classifier fresh from its preset (whose
    preprocessor has not run yet); the quantized classifier saved as a
    preset loads with its int8 head, and its SavedModel serves its own
    logits."""
    classifier = tiny_classifier()
    classifier.save_to_preset(tmp_path / "float")
    quantized = keras_xlnet.XLNetClassifier.from_preset(str(tmp_path / "float"))
    quantized.quantize("int8")
    reviews = imdb_texts()[:16]
    logits = quantized.predict(reviews, verbose=0)
    float_logits = classifier.predict(reviews, verbose=0)
    change = np.abs(logits - float_logits).max()
    spread = float_logits.max() - float_logits.min()
    assert 0 < change < 0.2 * spread  # int8 rounding: small, not none.
    quantized.save_to_preset(tmp_path / "int8")
    reloaded = keras_xlnet.XLNetClassifier.from_preset(str(tmp_path / "int8"))
    assert reloaded.logits_dense.quantization_mode == "int8"
    assert reloaded.backbone.token_embedding.quantization_mode == "int8"
    np.testing.assert_allclose(
        reloaded.predict(reviews, verbose=0), logits, atol=1e-6
    )
    quantized.export(tmp_path / "saved_model")
    requests = {
        "texts": encoded(reviews),
        "classified": np.array(len(reviews)),
        "firsts": encoded(reviews[:2]),
        "seconds": encoded(reviews[2:4]),
    }
    served = serve(str(tmp_path / "saved_model"), tmp_path, requests)
    # The backends' int8 kernels round differently (PyTorch: 2.4e-6 of
    # logits near 10), hence a relative tolerance besides the absolute one.
    np.testing.assert_allclose(served["logits"], logits, atol=1e-5, rtol=1e-5)


def test_what_cannot_be_exported_is_named(tmp_path):
    classifier = tiny_classifier()
    with pytest.raises(ValueError, match="format='tflite' is not one of"):
        keras_xlnet.export_classifier(classifier, tmp_path / "x", "tflite")
    classifier.preprocessor = None
    with pytest.raises(ValueError, match="has no preprocessor"):
        classifier.export(tmp_path / "saved_model")
    softmax = keras_xlnet.XLNetClassifier(
        classifier.backbone, num_classes=2, activation="softmax"
    )
    with pytest.raises(ValueError, match="activation=softmax"):
        softmax.export(tmp_path / "model.onnx", format="onnx")

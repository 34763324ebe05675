"""Rematerialised encoder blocks: same gradients, far less saved activation."""

import keras
import numpy as np
import pytest
from conftest import classification_gradients
from conftest import packed_batch

import keras_xlnet

CONFIG = dict(
    vocabulary_size=200,
    num_layers=3,
    num_heads=4,
    hidden_dim=64,
    intermediate_dim=256,
    dropout=0.0,
    attention_dropout=0.0,
)


def classifier(remat):
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(**CONFIG, remat=remat)
    return keras_xlnet.XLNetClassifier(backbone, num_classes=2, dropout=0.0)


def inputs():
    x = packed_batch(vocabulary_size=200, lengths=(64, 50, 30), total=64)
    return x, np.array([0, 1, 1])


def assert_remat_keeps_the_gradients(build):
    """Gradients of `build(False)` and `build(True)` agree; returns the
    plain ones."""
    x, y = inputs()
    plain = classification_gradients(build(False), x, y)
    remat = classification_gradients(build(True), x, y)
    for a, b in zip(plain, remat):
        np.testing.assert_allclose(a, b, atol=1e-5)
    return plain


def test_gradients_equal_the_plain_step():
    assert_remat_keeps_the_gradients(classifier)


def saved_activation_bytes(model, x):
    """Bytes kept for the backward pass (JAX residuals, torch saved tensors)."""
    backend = keras.config.backend()
    if backend == "jax":
        from keras_xlnet.training.memory import saved_activation_bytes

        return saved_activation_bytes(model, x)
    if backend == "torch":
        import torch

        weights = {id(v.value) for v in model.weights}
        total = [0]

        def pack(tensor):
            if id(tensor) not in weights:
                total[0] += tensor.numel() * tensor.element_size()
            return tensor

        x = {k: keras.ops.convert_to_tensor(v) for k, v in x.items()}
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(x, training=True).sum()
        return total[0]
    pytest.skip("saved activations are measured on JAX and PyTorch")


def test_saved_activations_fall_at_least_threefold():
    x, _ = inputs()
    plain = saved_activation_bytes(classifier(False), x)
    remat = saved_activation_bytes(classifier(True), x)
    assert plain >= 3 * remat, (plain, remat)


def test_remat_is_part_of_the_config():
    backbone = keras_xlnet.XLNetBackbone(**CONFIG, remat=True)
    clone = keras_xlnet.XLNetBackbone.from_config(backbone.get_config())
    assert clone.remat and all(b.remat for b in clone.encoder_blocks)


def dropout_classifier(remat, rate=0.1):
    keras.utils.set_random_seed(0)
    config = {**CONFIG, "dropout": rate, "attention_dropout": rate}
    backbone = keras_xlnet.XLNetBackbone(**config, remat=remat)
    model = keras_xlnet.XLNetClassifier(backbone, num_classes=2, dropout=rate)
    # PyTorch draws its masks from the global RNG: start both runs alike.
    keras.utils.set_random_seed(1)
    return model


def test_remat_with_dropout_recomputes_the_same_masks():
    plain = assert_remat_keeps_the_gradients(dropout_classifier)
    # Dropout was on: without it the gradients differ.
    x, y = inputs()
    without = classification_gradients(dropout_classifier(False, 0.0), x, y)
    assert max(np.abs(a - b).max() for a, b in zip(plain, without)) > 1e-3


def test_remat_with_dropout_on_the_query_stream():
    x, _ = inputs()
    target_mapping = np.eye(64, dtype="float32")[None, -4:].repeat(3, axis=0)
    outputs = []
    for remat in (False, True):
        backbone = dropout_classifier(remat).backbone
        encoded = backbone.encode(
            **x, target_mapping=target_mapping, training=True
        )
        outputs.append(
            [
                keras.ops.convert_to_numpy(encoded[key])
                for key in ("sequence_output", "query_output")
            ]
        )
    for a, b in zip(*outputs):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_compiled_training_step_with_remat_and_dropout():
    # Through `train_on_batch`: XLA on JAX, a tf.function on TensorFlow.
    x, y = inputs()
    weights = []
    for remat in (False, True):
        model = dropout_classifier(remat)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.train_on_batch(x, y)
        weights.append(
            [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
        )
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-5)

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


def test_gradients_equal_the_plain_step():
    x, y = inputs()
    plain = classification_gradients(classifier(False), x, y)
    remat = classification_gradients(classifier(True), x, y)
    for a, b in zip(plain, remat):
        np.testing.assert_allclose(a, b, atol=1e-5)


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


def test_remat_with_dropout():
    keras.utils.set_random_seed(0)
    config = {**CONFIG, "dropout": 0.1, "attention_dropout": 0.1}
    backbone = keras_xlnet.XLNetBackbone(**config, remat=True)
    x, _ = inputs()
    if keras.config.backend() == "jax":
        with pytest.raises(NotImplementedError, match="JAX"):
            backbone(x, training=True)
    else:
        outputs = keras.ops.convert_to_numpy(backbone(x, training=True))
        assert np.isfinite(outputs).all()

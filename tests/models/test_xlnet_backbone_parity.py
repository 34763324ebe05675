"""XLNetBackbone against Hugging Face's PyTorch XLNetModel (the reference).

Each case builds a tiny random HF model (weights std 0.3, so every term of
the attention matters), loads it through our own HF checkpoint loader and
compares float32 outputs on real tokens within 1e-5.
"""

import numpy as np
import pytest
from conftest import jax_only
from conftest import max_diff_on_real_tokens
from conftest import numpy
from conftest import packed_batch
from conftest import right_padded

import keras_xlnet

TOLERANCE = 1e-5


def load(peer):
    return keras_xlnet.load_checkpoint(peer.folder).backbone


def test_uneven_left_padding_and_segments(hf_peer):
    peer = hf_peer()
    inputs = packed_batch(lengths=(9, 6, 3, 1))
    expected = peer(inputs).last_hidden_state.numpy()
    actual = load(peer)(inputs)
    diff = max_diff_on_real_tokens(actual, expected, inputs["padding_mask"])
    assert diff <= TOLERANCE


def test_right_padding_matches(hf_peer):
    jax_only()
    peer = hf_peer()
    inputs = right_padded(packed_batch(lengths=(9, 5, 2)))
    expected = peer(inputs).last_hidden_state.numpy()
    actual = load(peer)(inputs)
    diff = max_diff_on_real_tokens(actual, expected, inputs["padding_mask"])
    assert diff <= TOLERANCE


def test_memory_in_and_new_memory_out(hf_peer):
    peer = hf_peer(mem_len=6)
    inputs = packed_batch(lengths=(9, 7, 4))
    rng = np.random.default_rng(1)
    memory = [rng.normal(size=(3, 5, 32)).astype("float32") for _ in range(2)]
    reference = peer(inputs, memory=memory)
    outputs = load(peer).encode(**inputs, memory=memory)
    diff = max_diff_on_real_tokens(
        outputs["sequence_output"],
        reference.last_hidden_state.numpy(),
        inputs["padding_mask"],
    )
    assert diff <= TOLERANCE
    for ours, theirs in zip(outputs["new_memory"], reference.mems):
        theirs = np.transpose(theirs.numpy(), (1, 0, 2))
        assert numpy(ours).shape == theirs.shape == (3, 6, 32)
        np.testing.assert_allclose(numpy(ours), theirs, atol=TOLERANCE)


def test_reuse_length_limits_new_memory(hf_peer):
    jax_only()
    peer = hf_peer(mem_len=8, reuse_len=4)
    inputs = packed_batch(lengths=(9, 9))
    rng = np.random.default_rng(2)
    memory = [rng.normal(size=(2, 6, 32)).astype("float32") for _ in range(2)]
    reference = peer(inputs, memory=memory)
    outputs = load(peer).encode(**inputs, memory=memory)
    for ours, theirs in zip(outputs["new_memory"], reference.mems):
        theirs = np.transpose(theirs.numpy(), (1, 0, 2))
        np.testing.assert_allclose(numpy(ours), theirs, atol=TOLERANCE)


def permutation_inputs(batch, length, num_predict, seed=3):
    rng = np.random.default_rng(seed)
    perm_mask = np.zeros((batch, length, length), "float32")
    target_mapping = np.zeros((batch, num_predict, length), "float32")
    for row in range(batch):
        order = rng.permutation(length)
        rank = np.argsort(order)
        # Token i may not see token j if j comes at or after i in the order.
        perm_mask[row] = rank[None, :] >= rank[:, None]
        for k, position in enumerate(rng.choice(length, num_predict, False)):
            target_mapping[row, k, position] = 1.0
    return perm_mask, target_mapping


def test_perm_mask_and_target_mapping_query_stream(hf_peer):
    jax_only()
    peer = hf_peer()
    inputs = packed_batch(lengths=(9, 9, 6))
    perm_mask, target_mapping = permutation_inputs(3, 9, 4)
    reference = peer(inputs, perm_mask=perm_mask, target_mapping=target_mapping)
    outputs = load(peer).encode(
        **inputs, perm_mask=perm_mask, target_mapping=target_mapping
    )
    np.testing.assert_allclose(
        numpy(outputs["query_output"]),
        reference.last_hidden_state.numpy(),
        atol=TOLERANCE,
    )


def test_perm_mask_content_stream(hf_peer):
    jax_only()
    peer = hf_peer()
    inputs = packed_batch(lengths=(9, 7))
    perm_mask, _ = permutation_inputs(2, 9, 1)
    reference = peer(inputs, perm_mask=perm_mask)
    outputs = load(peer).encode(**inputs, perm_mask=perm_mask)
    diff = max_diff_on_real_tokens(
        outputs["sequence_output"],
        reference.last_hidden_state.numpy(),
        inputs["padding_mask"],
    )
    assert diff <= TOLERANCE


@pytest.mark.parametrize(
    "config",
    [
        {"bi_data": True},
        {"clamp_len": 3},
        {"attn_type": "uni"},
        {"attn_type": "uni", "same_length": True},
    ],
    ids=["bi_data", "clamp_len", "uni", "uni_same_length"],
)
def test_attention_variants(hf_peer, config):
    jax_only()
    peer = hf_peer(**config)
    inputs = packed_batch(lengths=(9, 8, 5, 9))
    if config.get("attn_type") == "uni":
        expected = peer.last_hidden_state_by_row(inputs)
    else:
        expected = peer(inputs).last_hidden_state.numpy()
    actual = load(peer)(inputs)
    diff = max_diff_on_real_tokens(actual, expected, inputs["padding_mask"])
    assert diff <= TOLERANCE


@pytest.mark.parametrize("same_length", [False, True])
def test_uni_attention_with_memory(hf_peer, same_length):
    jax_only()
    peer = hf_peer(attn_type="uni", same_length=same_length, mem_len=4)
    inputs = packed_batch(lengths=(9, 6))
    rng = np.random.default_rng(4)
    memory = [rng.normal(size=(2, 4, 32)).astype("float32") for _ in range(2)]
    expected = peer.last_hidden_state_by_row(inputs, memory=memory)
    outputs = load(peer).encode(**inputs, memory=memory)
    np.testing.assert_allclose(
        numpy(outputs["sequence_output"]), expected, atol=TOLERANCE
    )


def test_exact_gelu_config_follows_huggingface(hf_peer):
    jax_only()
    peer = hf_peer(ff_activation="gelu")
    backbone = load(peer)
    assert backbone.activation == "gelu"
    inputs = packed_batch()
    expected = peer(inputs).last_hidden_state.numpy()
    diff = max_diff_on_real_tokens(
        backbone(inputs), expected, inputs["padding_mask"]
    )
    assert diff <= TOLERANCE


def test_classifier_logits(hf_peer):
    peer = hf_peer(task="classifier")
    inputs = packed_batch(lengths=(9, 6, 3))
    expected = peer(inputs).logits.numpy()
    classifier = keras_xlnet.load_checkpoint(peer.folder).classifier
    np.testing.assert_allclose(
        classifier.predict(inputs, verbose=0), expected, atol=TOLERANCE
    )

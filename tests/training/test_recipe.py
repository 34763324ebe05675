"""The fine-tuning recipe: schedule, optimizer, clipping, accumulation."""

import keras
import numpy as np
import pytest
from conftest import TINY_CONFIG
from conftest import classification_gradients
from conftest import numpy
from conftest import packed_batch

import keras_xlnet
from keras_xlnet.training import WarmupLinearDecay
from keras_xlnet.training import XLNetAdam


def test_default_schedule_values():
    schedule = WarmupLinearDecay(2e-5, train_steps=4000, warmup_steps=500)
    values = [float(schedule(s)) for s in (0, 250, 500, 2250, 4000, 4100)]
    np.testing.assert_allclose(
        values, [0.0, 1e-5, 2e-5, 1e-5, 0.0, 0.0], rtol=1e-6, atol=1e-12
    )


def fixed_batches(count, seed=0):
    rng = np.random.default_rng(seed)
    batches = []
    for i in range(count):
        lengths = tuple(int(n) for n in rng.integers(2, 10, size=4))
        inputs = packed_batch(lengths=lengths, seed=seed + i)
        batches.append((inputs, rng.integers(0, 3, size=4)))
    return batches


def test_per_step_losses_match_huggingface(hf_peer):
    """20 steps of the recipe (Adam eps 1e-8, warm-up + linear decay, global
    clip 1.0) in keras_xlnet and in Hugging Face PyTorch from equal weights."""
    torch = pytest.importorskip("torch")
    peer = hf_peer(task="classifier", summary_last_dropout=0.0)
    loaded = keras_xlnet.load_checkpoint(peer.folder).classifier
    classifier = keras_xlnet.XLNetClassifier(
        loaded.backbone, num_classes=3, dropout=0.0
    )
    classifier.set_weights(loaded.get_weights())
    steps, warmup, peak = 20, 3, 1e-3
    classifier.compile(
        optimizer=XLNetAdam(
            WarmupLinearDecay(peak, steps, warmup), global_clipnorm=1.0
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[],
    )

    model = peer.model.train()
    optimizer = torch.optim.Adam(
        model.parameters(), lr=peak, betas=(0.9, 0.999), eps=1e-8
    )
    schedule = WarmupLinearDecay(1.0, steps, warmup)
    lr_lambda = lambda step: float(schedule(step))  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)

    ours, theirs = [], []
    for inputs, labels in fixed_batches(steps):
        ours.append(float(classifier.train_on_batch(inputs, labels)))
        logits = model(
            input_ids=torch.tensor(inputs["token_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["padding_mask"]).float(),
            token_type_ids=torch.tensor(
                inputs["segment_ids"], dtype=torch.long
            ),
        ).logits
        loss = torch.nn.functional.cross_entropy(
            logits, torch.tensor(labels, dtype=torch.long)
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        theirs.append(float(loss))
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert abs(ours[-1] - ours[0]) > 1e-2  # The weights did move.


def tiny_classifier():
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(
        **TINY_CONFIG, dropout=0.0, attention_dropout=0.0
    )
    return keras_xlnet.XLNetClassifier(backbone, num_classes=3, dropout=0.0)


def one_update(batches, **optimizer_kwargs):
    classifier = tiny_classifier()
    classifier.compile(
        optimizer=XLNetAdam(1e-3, **optimizer_kwargs),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[],
    )
    for inputs, labels in batches:
        classifier.train_on_batch(inputs, labels)
    return [numpy(w) for w in classifier.trainable_weights]


def split(batch, parts):
    inputs, labels = batch
    size = len(labels) // parts
    return [
        (
            {k: v[i * size : (i + 1) * size] for k, v in inputs.items()},
            labels[i * size : (i + 1) * size],
        )
        for i in range(parts)
    ]


def test_gradient_accumulation_equals_the_large_batch():
    (batch,) = fixed_batches(1)
    whole = one_update([batch])
    accumulated = one_update(split(batch, 2), gradient_accumulation_steps=2)
    for a, b in zip(whole, accumulated):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_per_micro_batch_clipping_matches_per_replica_clipping():
    """k micro-batches clipped to k * c equal replicas clipping loss/k to c."""
    (batch,) = fixed_batches(1, seed=3)
    parts = split(batch, 2)
    clipped = one_update(
        parts, gradient_accumulation_steps=2, micro_batch_clipnorm=2 * 0.05
    )

    # The reference, by hand: clip each replica's gradient of loss / 2 to
    # 0.05, sum, and let Adam apply the sum (no further clipping).
    classifier = tiny_classifier()
    total = None
    for inputs, labels in parts:
        grads = classification_gradients(classifier, inputs, labels, scale=0.5)
        norm = np.sqrt(sum(float((g**2).sum()) for g in grads))
        grads = [g * min(1.0, 0.05 / norm) for g in grads]
        total = (
            grads if total is None else [t + g for t, g in zip(total, grads)]
        )
    assert norm > 0.05  # Clipping was active.
    optimizer = keras.optimizers.Adam(1e-3, epsilon=1e-8)
    optimizer.apply(
        [keras.ops.convert_to_tensor(g) for g in total],
        classifier.trainable_weights,
    )
    for a, b in zip(clipped, classifier.trainable_weights):
        np.testing.assert_allclose(a, numpy(b), atol=1e-5)

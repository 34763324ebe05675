"""What reading a review as 1, 2 or 4 segments of 512 costs (Base size).

Usage:
    KERAS_BACKEND=jax python tools/benchmark_segments.py [--segments 1,2,4]

For each number of segments, on the JAX backend at batch 1 and float32:
seconds per example of inference and of a training step (loss and
gradients, compiled) with the memory gradient stopped (the default) and
full; and the activation memory a training step keeps (the residuals
`jax.vjp` saves, under `mixed_bfloat16` as on an accelerator). Ratios are
against one segment, and inference against Hugging Face's
`XLNetForSequenceClassification` (PyTorch, eager) reading the same segments
with `mems` on the same weights' shapes, in the same process.
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_xlnet  # noqa: E402
from keras_xlnet.training.memory import saved_activation_bytes  # noqa: E402

BASE = dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072)
SEGMENT = 512


def classifier(segments, memory_gradient="stop", dtype="float32"):
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=32000, dtype=dtype, **BASE
    )
    return keras_xlnet.XLNetClassifier(
        backbone,
        num_classes=2,
        segment_length=SEGMENT,
        max_segments=segments,
        memory_gradient=memory_gradient,
    )


def review(segments):
    rng = np.random.default_rng(0)
    length = SEGMENT * segments
    token_ids = rng.integers(10, 32000, (1, length)).astype("int32")
    token_ids[0, -2:] = 4, 3
    segment_ids = np.zeros((1, length), "int32")
    segment_ids[0, -1] = 2
    return {
        "token_ids": token_ids,
        "padding_mask": np.ones((1, length), "int32"),
        "segment_ids": segment_ids,
    }


def seconds(function, *args, repeats=3):
    jax.block_until_ready(function(*args))  # Compiles.
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(function(*args))
    return (time.perf_counter() - start) / repeats


def inference_seconds(model, inputs):
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def forward(trainable, inputs):
        return model.stateless_call(trainable, non_trainable, inputs)[0]

    return seconds(forward, trainable, inputs)


def training_seconds(model, inputs):
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    labels = np.array([1])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(trainable, inputs):
        logits, _ = model.stateless_call(
            trainable, non_trainable, inputs, training=True
        )
        return loss_fn(labels, logits)

    return seconds(jax.jit(jax.value_and_grad(loss)), trainable, inputs)


def hugging_face_seconds(segments, repeats=3):
    """Eager PyTorch inference, segment by segment with `mems`."""
    import torch
    import transformers

    config = transformers.XLNetConfig(
        vocab_size=32000,
        d_model=BASE["hidden_dim"],
        n_layer=BASE["num_layers"],
        n_head=BASE["num_heads"],
        d_inner=BASE["intermediate_dim"],
        num_labels=2,
    )
    model = transformers.XLNetForSequenceClassification(config).eval()
    inputs = {k: torch.tensor(v) for k, v in review(segments).items()}

    def run():
        mems = None
        for start in range(0, SEGMENT * segments, SEGMENT):
            window = slice(start, start + SEGMENT)
            output = model(
                input_ids=inputs["token_ids"][:, window].long(),
                attention_mask=inputs["padding_mask"][:, window].float(),
                token_type_ids=inputs["segment_ids"][:, window].long(),
                mems=mems,
                use_mems=True,
            )
            mems = output.mems
        return output.logits

    with torch.no_grad():
        run()
        start = time.perf_counter()
        for _ in range(repeats):
            run()
    return (time.perf_counter() - start) / repeats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", default="1,2,4")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.segments.split(",")]
    print(
        "| segments of 512 | inference s | vs HF eager | train step s, "
        "stop | train step s, full | activations, stop | activations, full |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    first = None
    for count in counts:
        inputs = review(count)
        row = {"inference": inference_seconds(classifier(count), inputs)}
        row["hf"] = hugging_face_seconds(count)
        for gradient in ("stop", "full"):
            row[gradient] = training_seconds(
                classifier(count, gradient), inputs
            )
            mixed = classifier(count, gradient, dtype="mixed_bfloat16")
            row[f"{gradient} MiB"] = (
                saved_activation_bytes(mixed, inputs) / 2**20
            )
            jax.clear_caches()
        first = first or row

        def cell(key, digits=2, unit=""):
            value = f"{row[key]:.{digits}f}{unit}"
            return f"{value} ({row[key] / first[key]:.2f}x)"

        print(
            f"| {count} | {cell('inference')} | "
            f"{row['hf'] / row['inference']:.2f}x faster | "
            f"{cell('stop')} | {cell('full')} | "
            f"{cell('stop MiB', 0, ' MiB')} | {cell('full MiB', 0, ' MiB')} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

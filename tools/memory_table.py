"""Largest batch at length 512 for XLNet-Base/Large, with and without remat.

Usage:
    KERAS_BACKEND=jax python tools/memory_table.py [--budgets 16,80]

Measures, on the JAX backend, the activation memory one example keeps for
the backward pass of a training step (the residuals `jax.vjp` saves, at
batch 1, length 512, under `mixed_bfloat16`: every activation in bfloat16;
with remat, plus one block's activations, recomputed in
its backward pass), then divides what a GPU budget leaves after weights,
gradients and Adam's two moments (16 bytes per parameter) by it. XLA's own
scratch buffers come on top, so real limits are somewhat lower.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import keras_xlnet  # noqa: E402
from keras_xlnet.training.memory import saved_activation_bytes  # noqa: E402

MODELS = {
    "Base": dict(
        num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072
    ),
    "Large": dict(
        num_layers=24, hidden_dim=1024, num_heads=16, intermediate_dim=4096
    ),
}


def activation_bytes(config, remat, length=512):
    # Dropout on (0.1, as in fine-tuning): its masks are kept too.
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=32000,
        remat=remat,
        dtype="mixed_bfloat16",
        **config,
    )
    inputs = {
        "token_ids": np.ones((1, length), "int32"),
        "padding_mask": np.ones((1, length), "int32"),
        "segment_ids": np.zeros((1, length), "int32"),
    }
    saved = saved_activation_bytes(backbone, inputs)
    return saved, backbone.count_params()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="16,80")
    args = parser.parse_args(argv)
    budgets = [float(b) for b in args.budgets.split(",")]
    print(
        "| model | remat | activations / example | "
        + " | ".join(f"max batch, {b:g} GB" for b in budgets)
        + " |"
    )
    print("| --- | --- | --- | " + " | ".join("---" for _ in budgets) + " |")
    for name, config in MODELS.items():
        plain, params = activation_bytes(config, remat=False)
        saved, _ = activation_bytes(config, remat=True)
        # With remat, the backward pass of one block recomputes that
        # block's activations on top of the saved block inputs.
        one_block = plain / config["num_layers"]
        for remat, per_example in ((False, plain), (True, saved + one_block)):
            fixed = 16 * params
            batches = [
                max(0, int((b * 2**30 - fixed) // per_example)) for b in budgets
            ]
            print(
                f"| {name} | {'yes' if remat else 'no'} | "
                f"{per_example / 2**20:.0f} MiB | "
                + " | ".join(str(n) for n in batches)
                + " |"
            )
            jax.clear_caches()


if __name__ == "__main__":
    main()

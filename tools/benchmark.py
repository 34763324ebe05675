"""Speed of keras_xlnet against Hugging Face PyTorch and KerasHub's XLNet.

Usage:
    python tools/benchmark.py [--config base-4l] [--repeats 5]
        [--backends jax,tensorflow,torch] [--remat] [--compiled]
    python tools/benchmark.py --lengths [...]  (tools/benchmark_lengths.py)

For each Keras backend a worker process builds the same configuration in
keras_xlnet, in Hugging Face PyTorch (eager) and, for the forward pass, in
KerasHub's `XLNetBackbone`, then times them alternately on the same inputs:
the forward pass (`predict_on_batch`, compiled as Keras compiles it) and a
training step (classification loss, backward, Adam). The classifier runs
its last layer at `<cls>` only; `keras_xlnet_full_last_layer` is the same
model computing every position there, as the other peers do. It prints the
median and spread of tokens/s, the model-FLOPs utilisation (MFU: FLOPs of
the full model over the peak matmul rate measured with PyTorch and JAX on
this machine), the ratios against the peers, and the arithmetic floor.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import benchmark_lengths

CONFIGS = {
    # Base dimensions, 4 layers: fits a 2-core CPU.
    "base-4l": dict(
        layers=4,
        hidden=768,
        heads=12,
        inner=3072,
        batch=4,
        length=512,
        dtype="float32",
    ),
    # The real XLNet-Large shape, for a GPU.
    "large": dict(
        layers=24,
        hidden=1024,
        heads=16,
        inner=4096,
        batch=32,
        length=512,
        dtype="bfloat16",
    ),
    # A smoke test.
    "tiny": dict(
        layers=2,
        hidden=64,
        heads=4,
        inner=128,
        batch=2,
        length=64,
        dtype="float32",
    ),
}
VOCABULARY = 32000


def layer_flops(c, queries, keys=None):
    """Matmul FLOPs of one layer's forward at `queries` positions per
    example against `keys` positions (default: the whole input; keys,
    values and relative positions always at all of them)."""
    b, d, f = c["batch"], c["hidden"], c["inner"]
    t = c["length"] if keys is None else keys
    keys_values = 2 * b * t * d * d * 2 + 2 * (2 * t) * d * d  # k v, r
    queries_output = 2 * b * queries * d * d * 2  # q, o
    ffn = 2 * b * queries * d * f * 2
    # Content and position scores and p.v: each query meets its t keys at
    # t distances.
    attention = 2 * b * queries * t * d * 3
    return keys_values + queries_output + ffn + attention


def model_flops(c, training, cls_only=False):
    """Matmul FLOPs of a forward pass (x3 for a training step); with
    `cls_only`, the last layer computes `<cls>` alone (our classifier)."""
    layers = [c["length"]] * c["layers"]
    if cls_only:
        layers[-1] = 1
    forward = sum(layer_flops(c, queries) for queries in layers)
    return forward * (3 if training else 1)


def matmul_rates(dtype, size=4096, repeats=5):
    """FLOP/s of a square matmul: PyTorch on the CPU, JAX on its device."""
    import jax
    import jax.numpy as jnp
    import torch

    def rate(matmul, block):
        block(matmul())
        start = time.perf_counter()
        for _ in range(repeats):
            block(matmul())
        return 2 * size**3 * repeats / (time.perf_counter() - start)

    a = torch.randn(size, size).to(getattr(torch, dtype))
    b = jnp.asarray(a.float().numpy(), dtype)
    square = jax.jit(lambda x: x @ x)
    return {
        "torch cpu": rate(lambda: torch.matmul(a, a), lambda out: out),
        f"jax {jax.devices()[0].platform}": rate(
            lambda: square(b), lambda out: out.block_until_ready()
        ),
    }


def worker(name, repeats, remat, compiled):
    import keras
    import numpy as np
    import torch
    import transformers

    import keras_xlnet
    from keras_xlnet.training import XLNetAdam

    c = CONFIGS[name]
    rng = np.random.default_rng(0)
    shape = (c["batch"], c["length"])
    inputs = {
        "token_ids": rng.integers(9, VOCABULARY, shape).astype("int32"),
        "padding_mask": np.ones(shape, "int32"),
        "segment_ids": np.zeros(shape, "int32"),
    }
    labels = rng.integers(0, 2, c["batch"])
    common = dict(
        vocabulary_size=VOCABULARY,
        num_layers=c["layers"],
        num_heads=c["heads"],
        hidden_dim=c["hidden"],
        intermediate_dim=c["inner"],
    )
    if c["dtype"] == "bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    backbone = keras_xlnet.XLNetBackbone(**common)
    classifier = keras_xlnet.XLNetClassifier(backbone, num_classes=2)
    classifier.compile(optimizer=XLNetAdam(1e-5))

    hf_config = transformers.XLNetConfig(
        vocab_size=VOCABULARY,
        d_model=c["hidden"],
        n_layer=c["layers"],
        n_head=c["heads"],
        d_inner=c["inner"],
        ff_activation="gelu_new",
        num_labels=2,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    hf = transformers.XLNetForSequenceClassification(hf_config).to(device)
    hf_optimizer = torch.optim.Adam(hf.parameters(), lr=1e-5, eps=1e-8)
    hf_inputs = dict(
        input_ids=torch.tensor(inputs["token_ids"]).long(),
        attention_mask=torch.tensor(inputs["padding_mask"]).float(),
        token_type_ids=torch.tensor(inputs["segment_ids"]).long(),
    )
    hf_inputs = {k: v.to(device) for k, v in hf_inputs.items()}
    hf_labels = torch.tensor(labels).long().to(device)

    def hf_steps(model):
        """Forward and training step of a Hugging Face model, timed to the
        end of the device's work."""

        def precision():
            return torch.autocast(
                device, torch.bfloat16, enabled=c["dtype"] == "bfloat16"
            )

        def synchronise():
            if device == "cuda":
                torch.cuda.synchronize()

        def forward():
            model.eval()
            with torch.no_grad(), precision():
                model.transformer(**hf_inputs)
            synchronise()

        def train():
            model.train()
            with precision():
                loss = model(**hf_inputs, labels=hf_labels).loss
            hf_optimizer.zero_grad()
            loss.backward()
            hf_optimizer.step()
            synchronise()

        return forward, train

    hf_forward, hf_train = hf_steps(hf)

    # The classifier computes the last layer at <cls> only; the same model
    # drawn as its plain functional graph computes every position there.
    full_graph = keras.Model(classifier.inputs, classifier.outputs)
    full_graph.compile(
        optimizer=XLNetAdam(1e-5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],  # As the classifier has.
    )
    runs = {
        "forward": {
            "keras_xlnet": lambda: backbone.predict_on_batch(inputs),
            "hf_pytorch": hf_forward,
        },
        "train_step": {
            "keras_xlnet": lambda: classifier.train_on_batch(inputs, labels),
            "keras_xlnet_full_last_layer": lambda: full_graph.train_on_batch(
                inputs, labels
            ),
            "hf_pytorch": hf_train,
        },
    }
    if compiled:
        compiled_forward, compiled_train = hf_steps(torch.compile(hf))
        runs["forward"]["hf_compiled"] = compiled_forward
        runs["train_step"]["hf_compiled"] = compiled_train
    if remat:
        rematerialised = keras_xlnet.XLNetClassifier(
            keras_xlnet.XLNetBackbone(**common, remat=True), num_classes=2
        )
        rematerialised.compile(optimizer=XLNetAdam(1e-5))
        runs["train_step"]["keras_xlnet_remat"] = lambda: (
            rematerialised.train_on_batch(inputs, labels)
        )
    if keras.config.backend() == "jax":
        import keras_hub

        keras_hub_backbone = keras_hub.models.XLNetBackbone(**common)
        # The same head on KerasHub's backbone: <cls>, summary, logits.
        cls = keras_hub_backbone.output[:, -1]
        summary = keras.layers.Dense(c["hidden"], activation="tanh")(cls)
        keras_hub_classifier = keras.Model(
            keras_hub_backbone.input,
            keras.layers.Dense(2)(keras.layers.Dropout(0.1)(summary)),
        )
        keras_hub_classifier.compile(
            optimizer=XLNetAdam(1e-5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["sparse_categorical_accuracy"],
        )
        runs["forward"]["keras_hub"] = lambda: (
            keras_hub_backbone.predict_on_batch(inputs)
        )
        runs["train_step"]["keras_hub"] = lambda: (
            keras_hub_classifier.train_on_batch(inputs, labels)
        )

    tokens = c["batch"] * c["length"]
    results = {}
    for kind, peers in runs.items():
        results[kind] = {
            peer: sorted(tokens / s for s in values)
            for peer, values in alternate(peers, repeats).items()
        }
    print("RESULT " + json.dumps(results))


def alternate(peers, repeats, warmup=2):
    """Seconds of each of `peers` (name: function), run in turn
    `repeats` times after `warmup` calls each (compilation, caches)."""
    for run in peers.values():
        for _ in range(warmup):
            run()
    seconds = {peer: [] for peer in peers}
    for _ in range(repeats):
        for peer, run in peers.items():
            start = time.perf_counter()
            out = run()
            if hasattr(out, "block_until_ready"):
                out.block_until_ready()
            seconds[peer].append(time.perf_counter() - start)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="base-4l", choices=sorted(CONFIGS))
    parser.add_argument("--backends", default="jax,tensorflow,torch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--remat",
        action="store_true",
        help="also time a training step with rematerialised blocks",
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="also time Hugging Face under torch.compile (slow to compile)",
    )
    benchmark_lengths.add_arguments(parser)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker and args.lengths:
        return benchmark_lengths.worker(args.config, args)
    if args.worker:
        return worker(args.config, args.repeats, args.remat, args.compiled)

    c = CONFIGS[args.config]
    timing = (
        "lengths mode"
        if args.lengths
        else f"{args.repeats} alternating repeats"
    )
    print(f"config {args.config}: {c}, {timing}")
    rows = []
    for backend in args.backends.split(","):
        env = dict(os.environ, KERAS_BACKEND=backend)
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--config",
                args.config,
                "--repeats",
                str(args.repeats),
                "--worker",
                "1",
            ]
            + (["--remat"] if args.remat else [])
            + (["--compiled"] if args.compiled else [])
            + (
                benchmark_lengths.worker_arguments(args) if args.lengths else []
            ),
            env=env,
            capture_output=True,
            text=True,
        )
        lines = done.stdout.splitlines()
        line = [x for x in lines if x.startswith("RESULT ")]
        if done.returncode or not line:
            print(f"{backend}: failed\n{done.stderr[-2000:]}")
            continue
        result = json.loads(line[0][7:])
        if args.lengths:
            rows.append((backend, result))
            continue
        for kind, peers in result.items():
            for peer, rates in peers.items():
                rows.append((backend, kind, peer, rates))
    if args.lengths:
        return benchmark_lengths.summarise(rows, args)

    rates = matmul_rates(c["dtype"])
    peak = max(rates.values())
    tokens = c["batch"] * c["length"]

    def utilisation(kind, peer, tokens_per_second):
        """Model FLOPs per second over the peak matmul rate (the FLOPs of
        the work the peer does: our classifier skips most of the last
        layer; recomputation is not counted)."""
        training = kind != "forward"
        cls_only = training and peer in ("keras_xlnet", "keras_xlnet_remat")
        flops = model_flops(c, training, cls_only)
        return flops * tokens_per_second / tokens / peak

    header = "tokens/s median (min-max)"
    print(f"\n{'backend':11} {'measure':11} {'peer':28} {header:>27}  MFU")
    for backend, kind, peer, values in rows:
        median = statistics.median(values)
        print(
            f"{backend:11} {kind:11} {peer:28} {median:12.0f} "
            f"({values[0]:6.0f}-{values[-1]:6.0f}) "
            f"{utilisation(kind, peer, median):5.0%}"
        )
    print("\nratios, keras_xlnet / peer (medians)")
    for backend, kind, peer, values in rows:
        if peer == "keras_xlnet":
            continue
        ours = next(
            r
            for b, k, p, r in rows
            if (b, k, p) == (backend, kind, "keras_xlnet")
        )
        ratio = statistics.median(ours) / statistics.median(values)
        print(f"{backend:11} {kind:11} vs {peer:28} {ratio:6.2f}x")
    measured = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in rates.items())
    print(f"\n{c['dtype']} matmul GFLOP/s: {measured}; peak {peak / 1e9:.0f}")
    for kind, training, cls_only in (
        ("forward", False, False),
        ("train_step, full last layer", True, False),
        ("train_step, <cls>-only last layer", True, True),
    ):
        flops = model_flops(c, training, cls_only)
        print(
            f"floor {kind}: {flops / 1e9:.0f} GFLOP at the peak = "
            f"{flops / peak:.2f} s, {tokens * peak / flops:.0f} tokens/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

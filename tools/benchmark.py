"""Speed of keras_xlnet against Hugging Face PyTorch and KerasHub's XLNet.

Usage:
    python tools/benchmark.py [--config base-4l] [--repeats 5]
        [--backends jax,tensorflow,torch]

For each Keras backend a worker process builds the same configuration in
keras_xlnet, in Hugging Face PyTorch (eager) and, for the forward pass, in
KerasHub's `XLNetBackbone`, then times them alternately on the same inputs:
the forward pass (`predict_on_batch`, compiled as Keras compiles it) and a
training step (classification loss, backward, Adam). It prints the median
and spread of tokens/s, the ratios against Hugging Face last, and the
arithmetic floor: the step's matmul FLOPs over the matmul rate measured on
this machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = {
    # Base dimensions, 4 layers: fits a 2-core CPU.
    "base-4l": dict(
        layers=4, hidden=768, heads=12, inner=3072, batch=4, length=512
    ),
    # The real XLNet-Large shape, for a GPU.
    "large": dict(
        layers=24, hidden=1024, heads=16, inner=4096, batch=32, length=512
    ),
    # A smoke test.
    "tiny": dict(layers=2, hidden=64, heads=4, inner=128, batch=2, length=64),
}
VOCABULARY = 32000


def model_flops(c, training):
    """Matmul FLOPs of one forward (x3 for a training step)."""
    tokens = c["batch"] * c["length"]
    d, f, t = c["hidden"], c["inner"], c["length"]
    projections = 2 * tokens * d * d * 4 + 2 * (2 * t) * d * d  # q k v o, r
    ffn = 2 * tokens * d * f * 2
    attention = 2 * c["batch"] * t * (t + 2 * t + t) * d  # ac, bd, p.v
    forward = c["layers"] * (projections + ffn + attention)
    return forward * (3 if training else 1)


def matmul_rate(dtype="float32", size=2048, repeats=5):
    import torch

    a = torch.randn(size, size, dtype=getattr(torch, dtype))
    torch.matmul(a, a)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, a)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def worker(name, repeats, remat):
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
    hf = transformers.XLNetForSequenceClassification(hf_config)
    hf_optimizer = torch.optim.Adam(hf.parameters(), lr=1e-5, eps=1e-8)
    hf_inputs = dict(
        input_ids=torch.tensor(inputs["token_ids"]).long(),
        attention_mask=torch.tensor(inputs["padding_mask"]).float(),
        token_type_ids=torch.tensor(inputs["segment_ids"]).long(),
    )
    hf_labels = torch.tensor(labels).long()

    def hf_forward():
        hf.eval()
        with torch.no_grad():
            hf.transformer(**hf_inputs)

    def hf_train():
        hf.train()
        loss = hf(**hf_inputs, labels=hf_labels).loss
        hf_optimizer.zero_grad()
        loss.backward()
        hf_optimizer.step()

    runs = {
        "forward": {
            "keras_xlnet": lambda: backbone.predict_on_batch(inputs),
            "hf_pytorch": hf_forward,
        },
        "train_step": {
            "keras_xlnet": lambda: classifier.train_on_batch(inputs, labels),
            "hf_pytorch": hf_train,
        },
    }
    if remat:
        # Both without dropout: JAX's remat does not take dropout yet.
        def no_dropout_classifier(remat):
            plain = keras_xlnet.XLNetBackbone(
                **common, remat=remat, dropout=0.0, attention_dropout=0.0
            )
            model = keras_xlnet.XLNetClassifier(plain, 2, dropout=0.0)
            model.compile(optimizer=XLNetAdam(1e-5))
            return model

        plain = no_dropout_classifier(False)
        rematerialised = no_dropout_classifier(True)
        runs["train_step_no_dropout"] = {
            "keras_xlnet": lambda: plain.train_on_batch(inputs, labels),
            "keras_xlnet_remat": lambda: rematerialised.train_on_batch(
                inputs, labels
            ),
        }
    if keras.config.backend() == "jax":
        import keras_hub

        keras_hub_backbone = keras_hub.models.XLNetBackbone(**common)
        runs["forward"]["keras_hub"] = lambda: (
            keras_hub_backbone.predict_on_batch(
                {
                    "token_ids": inputs["token_ids"],
                    "padding_mask": inputs["padding_mask"],
                    "segment_ids": inputs["segment_ids"],
                }
            )
        )

    tokens = c["batch"] * c["length"]
    results = {}
    for kind, peers in runs.items():
        for run in peers.values():  # Warm-up: compilation.
            run()
        seconds = {peer: [] for peer in peers}
        for _ in range(repeats):
            for peer, run in peers.items():
                start = time.perf_counter()
                out = run()
                if hasattr(out, "block_until_ready"):
                    out.block_until_ready()
                seconds[peer].append(time.perf_counter() - start)
        results[kind] = {
            peer: sorted(tokens / s for s in values)
            for peer, values in seconds.items()
        }
    print("RESULT " + json.dumps(results))


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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.config, args.repeats, args.remat)

    c = CONFIGS[args.config]
    print(f"config {args.config}: {c}, {args.repeats} alternating repeats")
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
            + (["--remat"] if args.remat else []),
            env=env,
            capture_output=True,
            text=True,
        )
        lines = done.stdout.splitlines()
        line = [x for x in lines if x.startswith("RESULT ")]
        if done.returncode or not line:
            print(f"{backend}: failed\n{done.stderr[-2000:]}")
            continue
        for kind, peers in json.loads(line[0][7:]).items():
            for peer, rates in peers.items():
                rows.append((backend, kind, peer, rates))

    header = "tokens/s median (min-max)"
    print(f"\n{'backend':11} {'measure':11} {'peer':12} {header:>28}")
    for backend, kind, peer, rates in rows:
        print(
            f"{backend:11} {kind:11} {peer:12} "
            f"{statistics.median(rates):12.0f} "
            f"({rates[0]:6.0f}-{rates[-1]:6.0f})"
        )
    print("\nratios, keras_xlnet / peer (medians)")
    for backend, kind, peer, rates in rows:
        if peer == "keras_xlnet":
            continue
        ours = next(
            r
            for b, k, p, r in rows
            if (b, k, p) == (backend, kind, "keras_xlnet")
        )
        ratio = statistics.median(ours) / statistics.median(rates)
        print(f"{backend:11} {kind:11} vs {peer:12} {ratio:6.2f}x")
    rate = matmul_rate()
    tokens = c["batch"] * c["length"]
    for kind, training in (("forward", False), ("train_step", True)):
        floor = model_flops(c, training) / rate
        print(
            f"floor {kind}: {model_flops(c, training) / 1e9:.0f} GFLOP at the "
            f"measured {rate / 1e9:.0f} GFLOP/s float32 matmul rate = "
            f"{floor:.2f} s, {tokens / floor:.0f} tokens/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

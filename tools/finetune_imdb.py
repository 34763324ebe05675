"""Fine-tunes XLNet on IMDB with the TF Model Garden tutorial's recipe.

Usage (any Keras backend):
    KERAS_BACKEND=jax python tools/finetune_imdb.py [--data-dir aclImdb] ...
    python tools/finetune_imdb.py --demo     # offline, tiny, under 2 minutes

Defaults are the tutorial's: XLNet-Large cased, length 512, batch 32, 4000
steps, warm-up 500, peak learning rate 2e-5, Adam eps 1e-8, clip norm 1.0.
"""

import argparse
import dataclasses
import sys
import tempfile

from keras_xlnet import PresetUnavailableError
from keras_xlnet.data import imdb
from keras_xlnet.training import distribution
from keras_xlnet.training import finetune
from keras_xlnet.training import processes


def parse_args(argv):
    defaults = finetune.FinetuneConfig()
    p = argparse.ArgumentParser(
        description="Fine-tune XLNet on IMDB (the TF Model Garden recipe)."
    )
    p.add_argument("--preset", default=defaults.preset)
    p.add_argument("--data-dir", help="unpacked aclImdb folder")
    p.add_argument("--train-tfrecord", help="TFRecords of the original format")
    p.add_argument("--eval-tfrecord")
    p.add_argument("--model-dir", default=defaults.model_dir)
    p.add_argument(
        "--sequence-length", type=int, default=defaults.sequence_length
    )
    p.add_argument(
        "--max-segments",
        type=int,
        default=defaults.max_segments,
        help="read reviews as up to this many segments of --sequence-length "
        "with XLNet's memory (1: the tutorial's first 512 pieces)",
    )
    p.add_argument(
        "--memory-length",
        type=int,
        default=defaults.memory_length,
        help="earlier positions each layer keeps as memory (default: all, "
        "0: none)",
    )
    p.add_argument(
        "--memory-gradient",
        default=defaults.memory_gradient,
        choices=["stop", "full"],
        help="back-propagate through the last segment only (stop, "
        "Transformer-XL's) or through every segment (full, more memory)",
    )
    p.add_argument(
        "--truncate",
        default=defaults.truncate,
        choices=["head", "tail", "head_tail"],
        help="which pieces of a longer review are kept: the first (head, the "
        "tutorial's), the last, or the first 128 and the last",
    )
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--train-steps", type=int, default=defaults.train_steps)
    p.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    p.add_argument(
        "--learning-rate", type=float, default=defaults.learning_rate
    )
    p.add_argument("--eval-every", type=int, default=defaults.eval_every)
    p.add_argument(
        "--eval-batch-size", type=int, default=defaults.eval_batch_size
    )
    p.add_argument(
        "--bucket-width",
        type=int,
        default=defaults.bucket_width,
        help="evaluate in length order, padding each batch to a multiple of "
        "this (same metrics, less padding); 0 pads to --sequence-length",
    )
    p.add_argument(
        "--group-by-length",
        action="store_true",
        help="train on batches of similar lengths, each padded to a "
        "multiple of --bucket-width (sorted within groups of 10 batches of "
        "a shuffled pass): fewer padding tokens, other batch compositions",
    )
    p.add_argument(
        "--distribution",
        default="auto",
        choices=[
            "auto",
            "none",
            "data_parallel",
            "model_parallel",
            "tpu",
            "mirrored",
            "multi_worker",
        ],
    )
    p.add_argument(
        "--tpu", help="TPU name or address (with --distribution tpu)"
    )
    p.add_argument(
        "--connect-timeout",
        type=int,
        default=defaults.connect_timeout,
        help="several processes (KERAS_DISTRIBUTION_* variables, or "
        "TF_CONFIG): seconds to wait for the coordinator and the other "
        "processes",
    )
    p.add_argument("--dtype", default=defaults.dtype)
    p.add_argument(
        "--accumulation-steps", type=int, default=defaults.accumulation_steps
    )
    p.add_argument(
        "--per-replica-clip",
        action="store_true",
        help="clip each micro-batch's gradient like the reference's 8 TPU "
        "replicas (use with --accumulation-steps 8); without it the averaged "
        "gradient is clipped once, which clips harder",
    )
    p.add_argument(
        "--remat",
        action="store_true",
        help="recompute each encoder block in the backward pass (less "
        "activation memory, more compute)",
    )
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument(
        "--demo",
        action="store_true",
        help="offline demo: bundled reviews, a tiny model and vocabulary",
    )
    return p.parse_args(argv)


def config_from(args):
    fields = {f.name for f in dataclasses.fields(finetune.FinetuneConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    return finetune.FinetuneConfig(**values)


# What `--demo` sets itself: its model, data and schedule.
DEMO_SETTINGS = dict(
    sequence_length=64,
    batch_size=8,
    train_steps=60,
    warmup_steps=6,
    learning_rate=1e-3,
    eval_every=20,
    eval_batch_size=8,
    dtype="float32",
)
DEMO_OWNS = (
    *DEMO_SETTINGS,
    "preset",
    "data_dir",
    "train_tfrecord",
    "eval_tfrecord",
)


def demo_conflicts(args):
    """The flags given with `--demo` that it would override."""
    defaults = parse_args([])
    return [
        "--" + name.replace("_", "-")
        for name in DEMO_OWNS
        if getattr(args, name) != getattr(defaults, name)
    ]


def main(argv=None):
    args = parse_args(argv)
    build_classifier = train = test = None
    if args.demo and demo_conflicts(args):
        print(
            f"error: --demo brings its own model, data and schedule; drop "
            f"{', '.join(demo_conflicts(args))} or drop --demo.",
            file=sys.stderr,
        )
        return 2
    config = config_from(args)
    if args.demo:
        print(
            "DEMO: a tiny XLNet and vocabulary trained on 36 bundled reviews "
            "(written for this project); numbers mean nothing about XLNet."
        )
        config = dataclasses.replace(
            config,
            **DEMO_SETTINGS,
            model_dir=args.model_dir
            if args.model_dir != "xlnet_imdb"
            else tempfile.mkdtemp(prefix="xlnet_demo_"),
        )
        train, test = finetune.demo_data()

        def build_classifier(dtype):
            # Only the chief of several processes writes into model_dir.
            folder = (
                config.model_dir
                if processes.is_chief()
                else tempfile.mkdtemp(prefix="xlnet_demo_")
            )
            return finetune.demo_classifier(train[0], folder, dtype=dtype)

    try:
        summary = finetune.run(config, build_classifier, train, test)
    except (
        finetune.RecipeError,
        imdb.DataError,
        distribution.DistributionError,
        OSError,
        RuntimeError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        if isinstance(error, PresetUnavailableError):
            print(
                "Pass a converted preset folder with --preset, or try the "
                "offline --demo.",
                file=sys.stderr,
            )
        return 1
    print(finetune.format_summary(summary))
    print(f"Metrics, logs and the fine-tuned preset are in {config.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

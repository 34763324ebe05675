"""What length-aware batching saves on the real IMDB length distribution.

Usage:
    python tools/benchmark.py --lengths [--texts CSV] [--vocabulary SPM]
        [--train-steps 20] [--max-segments 1]
        [--backends jax,tensorflow,torch]

Run through `tools/benchmark.py` (its `--config`, default `base-4l`, gives
the model and the training batch; evaluation batches hold 32 reviews as in
the recipe). For each backend a worker process packs the real reviews with
the real vocabulary at `--max-segments` segments of 512 and times, on one
randomly initialised classifier (reading several segments with memory):
- evaluation of all the reviews (`predict_on_batch` over batches packed
  beforehand), padded to the whole length as the tutorial does against
  length-sorted batches cut to multiples of 64, or of whole segments
  beyond one (`keras_xlnet.data.length_buckets`), checking that the
  logits agree;
- training steps (`train_on_batch`) on the recipe's shuffled batches padded
  to 512 against `--group-by-length` batches over the same reviews
  (`train_steps` a multiple of the 10-batch groups), in real (unpadded)
  tokens per second, the two alternating step by step.
Every batch shape is run once before timing (compilation). Next to each
measured ratio it prints the FLOP model's prediction for the same batches
and for the recipe's batch of 32 over the whole sample.
"""

import csv
import json
import os
import statistics
import time
import types

import benchmark

SEGMENT_LENGTH = 512
BUCKET_WIDTH = 64
EVAL_BATCH = 32
RECIPE_BATCH = 32
DEFAULT_SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")


def add_arguments(parser):
    shared = os.environ.get("XLNET_SHARED_DIR", DEFAULT_SHARED)
    parser.add_argument(
        "--lengths",
        action="store_true",
        help="time padded against length-bucketed evaluation and training "
        "on the real reviews' lengths (see tools/benchmark_lengths.py)",
    )
    parser.add_argument(
        "--texts", default=os.path.join(shared, "data", "imdb_sample.csv")
    )
    parser.add_argument(
        "--vocabulary",
        default=os.path.join(shared, "data", "xlnet_cased_spiece.model"),
    )
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument(
        "--max-segments",
        type=int,
        default=1,
        help="pack reviews into up to this many segments of 512 (read with "
        "memory)",
    )


def worker_arguments(args):
    """The options a `--lengths` worker process needs."""
    return [
        "--lengths",
        "--texts",
        args.texts,
        "--vocabulary",
        args.vocabulary,
        "--train-steps",
        str(args.train_steps),
        "--max-segments",
        str(args.max_segments),
    ]


def read_reviews(path):
    with open(path, encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return [r["text"] for r in rows], [
        int(r["label"] == "positive") for r in rows
    ]


def numpy_batches(dataset):
    return [
        (
            {key: value.numpy() for key, value in x.items()},
            y.numpy(),
        )
        for x, y in dataset
    ]


def eval_batches(preprocessor, texts, labels, bucketed):
    import tensorflow as tf

    from keras_xlnet.data import length_buckets

    if bucketed:
        dataset, order = length_buckets.length_sorted_dataset(
            preprocessor,
            texts,
            labels,
            batch_size=EVAL_BATCH,
            bucket_width=BUCKET_WIDTH,
        )
        return numpy_batches(dataset), order
    dataset = (
        tf.data.Dataset.from_tensor_slices((texts, labels))
        .batch(EVAL_BATCH)
        .map(lambda x, y: (preprocessor(x), y))
    )
    return numpy_batches(dataset), None


def train_batches(preprocessor, texts, labels, batch_size, steps, grouped):
    from keras_xlnet.recipes.imdb import ImdbConfig
    from keras_xlnet.recipes.imdb import ImdbTask

    config = ImdbConfig(
        batch_size=batch_size,
        train_steps=steps,
        sequence_length=preprocessor.sequence_length,
        max_segments=preprocessor.max_segments,
        group_by_length=grouped,
        bucket_width=BUCKET_WIDTH,
        seed=0,
    )
    task = ImdbTask(config, train=(texts, labels), test=([], []))
    model = types.SimpleNamespace(preprocessor=preprocessor)
    return numpy_batches(task.training_batches(model, 0).take(steps))


def segmented_flops(c, training):
    """The FLOP model's cost of a batch of `c["length"]` positions read in
    segments of 512 with all earlier positions as memory, the last layer
    at `<cls>` only; training back-propagates through the last segment
    (the memory's gradient is stopped)."""
    count = max(1, c["length"] // SEGMENT_LENGTH)
    if count == 1:
        return benchmark.model_flops(c, training, cls_only=True)
    total = 0
    for index in range(count):
        keys = (index + 1) * SEGMENT_LENGTH
        last = index == count - 1
        forward = (c["layers"] - 1) * benchmark.layer_flops(
            c, SEGMENT_LENGTH, keys
        )
        if last:
            forward += benchmark.layer_flops(c, 1, keys)
        total += forward * (3 if training and last else 1)
    return total


def flops(c, batches, training):
    """The FLOP model's cost of `batches`, as the classifier runs them."""
    return sum(
        segmented_flops(
            dict(c, batch=len(y), length=x["token_ids"].shape[1]), training
        )
        for x, y in batches
    )


def widths(batches):
    return sorted({x["token_ids"].shape[1] for x, _ in batches})


def compile_shapes(step, batches):
    """Runs `step` once on a batch of each shape (compilation)."""
    seen = set()
    for x, y in batches:
        if x["token_ids"].shape not in seen:
            seen.add(x["token_ids"].shape)
            step(x, y)


def worker(config_name, args):
    import keras
    import numpy as np

    import keras_xlnet
    from keras_xlnet.data import length_buckets
    from keras_xlnet.training import XLNetAdam

    c = benchmark.CONFIGS[config_name]
    texts, labels = read_reviews(args.texts)
    preprocessor = keras_xlnet.XLNetTextClassifierPreprocessor(
        keras_xlnet.XLNetTokenizer(proto=args.vocabulary),
        sequence_length=SEGMENT_LENGTH * args.max_segments,
        max_segments=args.max_segments,
    )
    if c["dtype"] == "bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        num_layers=c["layers"],
        num_heads=c["heads"],
        hidden_dim=c["hidden"],
        intermediate_dim=c["inner"],
    )
    classifier = keras_xlnet.XLNetClassifier(
        backbone,
        num_classes=2,
        segment_length=SEGMENT_LENGTH if args.max_segments > 1 else None,
        max_segments=args.max_segments,
    )
    classifier.compile(optimizer=XLNetAdam(1e-5))

    def predict(x, y):
        return np.asarray(classifier.predict_on_batch(x))

    def train(x, y):
        return classifier.train_on_batch(x, y)

    result = {"eval": {}, "train": {}}
    logits = {}
    for mode, bucketed in (("padded", False), ("bucketed", True)):
        batches, order = eval_batches(preprocessor, texts, labels, bucketed)
        compile_shapes(predict, batches)
        start = time.perf_counter()
        outputs = np.concatenate([predict(x, y) for x, y in batches])
        seconds = time.perf_counter() - start
        logits[mode] = (
            length_buckets.restore_order(outputs, order)
            if bucketed
            else outputs
        )
        result["eval"][mode] = {
            "seconds": seconds,
            "widths": widths(batches),
            "flops": flops(c, batches, training=False),
        }
    result["eval"]["max_logit_difference"] = float(
        np.max(np.abs(logits["padded"] - logits["bucketed"]))
    )
    result["eval"]["same_predictions"] = bool(
        np.array_equal(
            logits["padded"].argmax(-1), logits["bucketed"].argmax(-1)
        )
    )

    runs = {
        mode: train_batches(
            preprocessor, texts, labels, c["batch"], args.train_steps, grouped
        )
        for mode, grouped in (("padded", False), ("grouped", True))
    }
    for batches in runs.values():
        compile_shapes(train, batches)
    seconds = {mode: [] for mode in runs}
    for step in range(args.train_steps):  # Alternating, step by step.
        for mode, batches in runs.items():
            x, y = batches[step]
            start = time.perf_counter()
            train(x, y)
            seconds[mode].append(time.perf_counter() - start)
    for mode, batches in runs.items():
        result["train"][mode] = {
            "seconds": sum(seconds[mode]),
            "real_tokens": int(
                sum(x["padding_mask"].sum() for x, _ in batches)
            ),
            "widths": widths(batches),
            "flops": flops(c, batches, training=True),
            "step_median": statistics.median(seconds[mode]),
        }

    # The FLOP model at the recipe's batch over the whole sample.
    steps = len(texts) // RECIPE_BATCH
    recipe = {
        mode: flops(
            c,
            train_batches(
                preprocessor, texts, labels, RECIPE_BATCH, steps, grouped
            ),
            training=True,
        )
        for mode, grouped in (("padded", False), ("grouped", True))
    }
    result["train"]["recipe_flop_ratio"] = recipe["grouped"] / recipe["padded"]
    print("RESULT " + json.dumps(result))


def report(backend, result, reviews):
    """Prints one backend's measured ratios next to the FLOP model's."""
    evaluation, training = result["eval"], result["train"]
    padded, bucketed = evaluation["padded"], evaluation["bucketed"]
    print(
        f"{backend:11} eval of {reviews} reviews, batch {EVAL_BATCH}: padded "
        f"{padded['seconds']:.1f} s, bucketed {bucketed['seconds']:.1f} s "
        f"(widths {bucketed['widths']}): "
        f"{bucketed['seconds'] / padded['seconds']:.2f}x the time, FLOP "
        f"model {bucketed['flops'] / padded['flops']:.2f}x; max |logit "
        f"difference| {evaluation['max_logit_difference']:.1e}, same "
        f"predictions: {evaluation['same_predictions']}"
    )
    rates = {
        mode: training[mode]["real_tokens"] / training[mode]["seconds"]
        for mode in ("padded", "grouped")
    }
    grouped = training["grouped"]
    flop_ratio = grouped["flops"] / training["padded"]["flops"]
    print(
        f"{backend:11} training, real tokens/s: padded {rates['padded']:.0f}, "
        f"grouped {rates['grouped']:.0f} (widths {grouped['widths']}): "
        f"{rates['padded'] / rates['grouped']:.2f}x the time per real "
        f"token, FLOP model {flop_ratio:.2f}x "
        f"(batch {RECIPE_BATCH} over the sample: "
        f"{training['recipe_flop_ratio']:.2f}x)"
    )


def summarise(rows, args):
    texts, _ = read_reviews(args.texts)
    print(
        f"\nlength-aware batching on {len(texts)} real reviews, up to "
        f"{args.max_segments} segment(s) of {SEGMENT_LENGTH} "
        f"({args.train_steps} training steps per mode)"
    )
    for backend, result in rows:
        report(backend, result, len(texts))

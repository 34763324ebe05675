"""Tokenization throughput of XLNetTokenizer against Hugging Face's.

Usage:
    python tools/benchmark_tokenizer.py [--vocabulary SPM] [--texts CSV]
        [--repeats 5]

Measures texts per second on the same reviews, alternating the four
tokenizers for each repeat, and prints the median, the spread and the ratio
to Hugging Face's slow tokenizer (the exact reference). It also counts the
texts on which Hugging Face's fast tokenizer gives other ids than the slow
one.
"""

import argparse
import csv
import os
import statistics
import time

DEFAULT_SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = os.environ.get("XLNET_SHARED_DIR", DEFAULT_SHARED)
    parser.add_argument(
        "--vocabulary",
        default=os.path.join(shared, "data", "xlnet_cased_spiece.model"),
    )
    parser.add_argument(
        "--texts", default=os.path.join(shared, "data", "imdb_sample.csv")
    )
    parser.add_argument("--repeats", type=int, default=5)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import tensorflow as tf
    import transformers

    import keras_xlnet

    with open(args.texts, encoding="utf-8") as file:
        texts = [row["text"] for row in csv.DictReader(file)]
    ours = keras_xlnet.XLNetTokenizer(proto=args.vocabulary)
    slow = transformers.XLNetTokenizer(args.vocabulary)
    fast = transformers.XLNetTokenizerFast(vocab_file=args.vocabulary)
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(64).map(ours)

    def tf_data():
        return [row for batch in dataset for row in batch.to_list()]

    runs = {
        "keras_xlnet, Python path": lambda: ours(texts),
        "keras_xlnet, tf.data path": tf_data,
        "HF slow (sentencepiece)": lambda: slow(
            texts, add_special_tokens=False
        ),
        "HF fast (tokenizers)": lambda: fast(texts, add_special_tokens=False),
    }
    for run in runs.values():  # Warm-up: tracing, caches.
        run()
    seconds = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)

    reference = statistics.median(seconds["HF slow (sentencepiece)"])
    print(f"{len(texts)} texts, {args.repeats} repeats, median (min-max)")
    print(f"{'tokenizer':28} {'texts/s':>22} {'vs HF slow':>11}")
    for name, values in seconds.items():
        rates = sorted(len(texts) / s for s in values)
        median = statistics.median(values)
        print(
            f"{name:28} {len(texts) / median:9.0f} "
            f"({rates[0]:5.0f}-{rates[-1]:5.0f}) "
            f"{reference / median:10.2f}x"
        )
    slow_ids = slow(texts, add_special_tokens=False)["input_ids"]
    fast_ids = fast(texts, add_special_tokens=False)["input_ids"]
    differ = sum(a != b for a, b in zip(slow_ids, fast_ids))
    print(f"HF fast differs from HF slow on {differ} of {len(texts)} texts")


if __name__ == "__main__":
    main()

"""Tokenization throughput of XLNetTokenizer against Hugging Face's.

Usage:
    python tools/benchmark_tokenizer.py [--vocabulary SPM] [--texts CSV]
        [--repeats 5]

Measures texts per second on the same reviews, alternating the tokenizers
for each repeat, and prints the median, the spread and the ratio to Hugging
Face's slow tokenizer (the exact reference). `keras_xlnet`'s `tf.data`
path is its tokenizer in TensorFlow ops, the search compiled by XLA (a
SavedModel holds the same ops without XLA; every pass over a dataset
compiles again, and the figures include it); next to it, the same pipeline
calling the Python path through `tf.py_function` (which cannot be saved),
each with a sequential and a parallel `map`. It also counts the texts on
which Hugging Face's fast tokenizer, and the two `tf.data` pipelines, give
other ids than the slow one.
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
    batches = tf.data.Dataset.from_tensor_slices(texts).batch(64)

    def python_callback(batch):
        # What the tokenizer's `tf.data` path did before it was written in
        # TensorFlow ops: the Python path on the whole batch.
        def encode(values):
            rows = ours([text.decode() for text in values.numpy().tolist()])
            flat = [int(i) for row in rows for i in row]
            return flat, [len(row) for row in rows]

        flat, lengths = tf.py_function(encode, [batch], [tf.int32, tf.int64])
        return tf.RaggedTensor.from_row_lengths(flat, lengths)

    def ids_of(dataset):
        return lambda: [row for batch in dataset for row in batch.to_list()]

    parallel = tf.data.AUTOTUNE
    graph_path = ids_of(batches.map(ours))
    callback_path = ids_of(batches.map(python_callback))
    runs = {
        "keras_xlnet, Python path": lambda: ours(texts),
        "keras_xlnet, tf.data (graph)": graph_path,
        "tf.data, tf.py_function": callback_path,
        "tf.data (graph), parallel map": ids_of(
            batches.map(ours, num_parallel_calls=parallel)
        ),
        "tf.py_function, parallel map": ids_of(
            batches.map(python_callback, num_parallel_calls=parallel)
        ),
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
    print(f"{'tokenizer':30} {'texts/s':>22} {'vs HF slow':>11}")
    for name, values in seconds.items():
        rates = sorted(len(texts) / s for s in values)
        median = statistics.median(values)
        print(
            f"{name:30} {len(texts) / median:9.0f} "
            f"({rates[0]:5.0f}-{rates[-1]:5.0f}) "
            f"{reference / median:10.2f}x"
        )
    slow_ids = slow(texts, add_special_tokens=False)["input_ids"]
    fast_ids = fast(texts, add_special_tokens=False)["input_ids"]
    for name, ids in (
        ("HF fast", fast_ids),
        ("keras_xlnet, tf.data (graph)", graph_path()),
        ("tf.data, tf.py_function", callback_path()),
    ):
        differ = sum(list(a) != list(b) for a, b in zip(slow_ids, ids))
        print(f"{name} differs from HF slow on {differ} of {len(texts)} texts")


if __name__ == "__main__":
    main()

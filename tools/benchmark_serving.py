"""Serving a classifier: int8 (KerasHub's `quantize("int8")`) next to
float32, measured side by side in one process.

Usage:
    python tools/benchmark_serving.py [--preset FOLDER] [--epochs 3]
        [--repeats 20] [--texts CSV] [--vocabulary SPM]

Without `--preset` it fine-tunes a small XLNet from scratch (4 layers,
hidden 256, the real vocabulary, 128 positions) on the 800 training
reviews of the shared sample; either way it evaluates on its 200
validation reviews (`is_valid`). For float32 and
for an int8 copy it prints the accuracy, the largest change of a logit
and the predictions that changed, then exports each as a SavedModel and
prints its size and the median latency of `serving_default` (raw text,
the tokenizer in the graph) and `classify_packed` (ids), at batches of 1
and 32 reviews, over `--repeats` calls. It runs under the TensorFlow
backend (the exports are built in this process).
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ["KERAS_BACKEND"] = "tensorflow"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(
    os.environ.get("XLNET_SHARED_DIR", REPO_ROOT.parent / "shared")
)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", help="a fine-tuned XLNetClassifier preset")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--texts", default=str(SHARED / "data" / "imdb_sample.csv"))
    p.add_argument(
        "--vocabulary",
        default=str(SHARED / "data" / "xlnet_cased_spiece.model"),
    )
    return p.parse_args(argv)


def reviews(path):
    """`(texts, labels)` of the training and of the validation reviews."""
    import csv

    with open(path, encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    splits = {"False": ([], []), "True": ([], [])}
    for row in rows:
        texts, labels = splits[row["is_valid"]]
        texts.append(row["text"])
        labels.append(int(row["label"] == "positive"))
    return splits["False"], splits["True"]


def small_fine_tuned(args, texts, labels):
    """A small XLNet trained from scratch on `texts`."""
    import keras

    import keras_xlnet

    keras.utils.set_random_seed(0)
    tokenizer = keras_xlnet.XLNetTokenizer(proto=args.vocabulary)
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=4,
        num_heads=4,
        hidden_dim=256,
        intermediate_dim=1024,
    )
    classifier = keras_xlnet.XLNetClassifier(
        backbone,
        num_classes=2,
        preprocessor=keras_xlnet.XLNetPreprocessor(
            tokenizer, sequence_length=128
        ),
    )
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(texts, labels, batch_size=16, epochs=args.epochs)
    return classifier


def folder_size(folder):
    return sum(
        p.stat().st_size for p in pathlib.Path(folder).rglob("*") if p.is_file()
    )


def median_seconds(call, repeats):
    call()  # Warm-up.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def latencies(folder, texts, packed, repeats):
    """Median seconds of each signature at batches of 1 and 32."""
    import tensorflow as tf

    served = tf.saved_model.load(folder)
    text_signature = served.signatures["serving_default"]
    packed_signature = served.signatures["classify_packed"]
    found = {}
    for batch in (1, 32):
        strings = tf.constant(texts[:batch])
        ids = {k: tf.constant(v[:batch]) for k, v in packed.items()}
        found[f"text x{batch}"] = median_seconds(
            lambda: text_signature(texts=strings), repeats
        )
        found[f"ids x{batch}"] = median_seconds(
            lambda: packed_signature(**ids), repeats
        )
    return found


def main(argv=None):
    args = parse_args(argv)
    import numpy as np

    import keras_xlnet

    (texts, labels), (test_texts, test_labels) = reviews(args.texts)
    test_labels = np.array(test_labels)
    with tempfile.TemporaryDirectory() as work:
        preset = args.preset
        if preset is None:
            preset = os.path.join(work, "fine_tuned")
            small_fine_tuned(args, texts, labels).save_to_preset(preset)
        models = {}
        for name in ("float32", "int8"):
            classifier = keras_xlnet.XLNetClassifier.from_preset(preset)
            if name == "int8":
                classifier.quantize("int8")
            models[name] = classifier
        packed = {
            k: np.asarray(v).astype("int32")
            for k, v in models["float32"].preprocessor(test_texts[:32]).items()
        }
        logits = {
            name: model.predict(test_texts, batch_size=32, verbose=0)
            for name, model in models.items()
        }
        rows = {}
        for name, model in models.items():
            folder = os.path.join(work, name)
            model.export(folder)
            rows[name] = {
                "accuracy": np.mean(logits[name].argmax(-1) == test_labels),
                "size": folder_size(folder),
                **latencies(folder, test_texts, packed, args.repeats),
            }
    change = np.abs(logits["int8"] - logits["float32"])
    flipped = np.sum(logits["int8"].argmax(-1) != logits["float32"].argmax(-1))
    source = args.preset or "a small XLNet fine-tuned here"
    count = len(test_texts)
    print(f"{count} validation reviews; classifier: {source}")
    print(
        f"int8 vs float32 logits: max change {change.max():.4f}, mean "
        f"{change.mean():.4f}; predictions changed: {flipped} of {count}"
    )
    columns = list(rows["float32"])
    print(f"{'':8}" + "".join(f"{c:>14}" for c in columns))
    for name, row in rows.items():
        cells = []
        for column in columns:
            value = row[column]
            if column == "accuracy":
                cells.append(f"{value:14.3f}")
            elif column == "size":
                cells.append(f"{value / 2**20:11.1f} MiB")
            else:
                cells.append(f"{value * 1000:11.1f} ms")
        print(f"{name:8}" + "".join(cells))
    ratios = [
        f"{c} {rows['int8'][c] / rows['float32'][c]:.2f}x"
        for c in columns
        if c != "accuracy"
    ]
    print("int8 / float32: " + ", ".join(ratios))


if __name__ == "__main__":
    sys.exit(main())

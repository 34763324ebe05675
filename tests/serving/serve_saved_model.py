"""Runs an exported SavedModel in a process that cannot import Keras,
KerasHub or keras_xlnet, as a server would: TensorFlow and TensorFlow
Text's op libraries only.

Usage: python serve_saved_model.py SAVED_MODEL REQUESTS.npz RESULTS.npz

REQUESTS holds `texts` (all tokenized, the first `classified` of them
classified), `firsts` and `seconds` (classified as pairs) and
`packed_<name>_<i>` arrays (classified through `classify_packed`);
RESULTS holds `token_ids`, `lengths`, `logits`, `probabilities`,
`pair_logits` and `packed_logits_<i>`.
"""

import glob
import importlib.util
import os
import sys

for blocked in ("keras", "keras_hub", "keras_xlnet", "tf_keras"):
    sys.modules[blocked] = None  # Any import of them fails.

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def load_text_ops():
    """TensorFlow Text's kernels, without its Python package (which
    imports Keras)."""
    spec = importlib.util.find_spec("tensorflow_text")
    folder = os.path.join(os.path.dirname(spec.origin), "python", "ops")
    for library in sorted(glob.glob(os.path.join(folder, "*.so"))):
        tf.load_op_library(library)


def main(saved_model, requests, results):
    load_text_ops()
    served = tf.saved_model.load(saved_model).signatures
    requests = dict(np.load(requests))
    texts = tf.constant(requests["texts"])
    out = {}
    out.update(
        {k: v.numpy() for k, v in served["tokenize"](texts=texts).items()}
    )
    count = int(requests["classified"])
    classified = served["serving_default"](texts=texts[:count])
    out["logits"] = classified["logits"].numpy()
    out["probabilities"] = classified["probabilities"].numpy()
    pairs = served["classify_pairs"](
        texts=tf.constant(requests["firsts"]),
        second_texts=tf.constant(requests["seconds"]),
    )
    out["pair_logits"] = pairs["logits"].numpy()
    index = 0
    while f"packed_token_ids_{index}" in requests:
        packed = {
            name: tf.constant(requests[f"packed_{name}_{index}"])
            for name in ("token_ids", "padding_mask", "segment_ids")
        }
        out[f"packed_logits_{index}"] = served["classify_packed"](**packed)[
            "logits"
        ].numpy()
        index += 1
    np.savez(results, **out)


if __name__ == "__main__":
    main(*sys.argv[1:])

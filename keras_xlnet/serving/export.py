"""Exports a fine-tuned XLNetClassifier for serving, from any backend.

The serving graphs are TensorFlow graphs. Under the TensorFlow backend
they are built in this process; under JAX or PyTorch the classifier is
saved as a `.keras` file (the weights are backend-agnostic; unlike a preset
it keeps a quantized model's int8 weights) and a subprocess with
`KERAS_BACKEND=tensorflow` builds them from it:

    python -m keras_xlnet.serving.export MODEL PATH [--format onnx]

where MODEL is a `.keras` file or a classifier preset folder.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import keras

FORMATS = ("tf_saved_model", "onnx")


def export_classifier(classifier, path, format="tf_saved_model"):
    """Writes `classifier` for serving at `path`.

    Args:
        classifier: an `XLNetClassifier` with its preprocessor, built with
            `activation=None` (the exports return logits and softmax
            probabilities).
        path: the SavedModel folder, or the `.onnx` file.
        format: `"tf_saved_model"` (raw text in, the tokenizer in the
            graph: `keras_xlnet.serving.saved_model`) or `"onnx"` (packed
            ids in: `keras_xlnet.serving.onnx_model`).

    Example:
    ```python
    classifier = keras_xlnet.XLNetClassifier.from_preset("run/preset")
    classifier.export("served/1")  # The same as export_classifier(...).
    # Elsewhere, with TensorFlow and TensorFlow Text only:
    served = tf.saved_model.load("served/1")
    served.signatures["serving_default"](texts=tf.constant(["Great!"]))
    ```
    """
    _check_exportable(classifier, format)
    if keras.backend.backend() == "tensorflow":
        _write(classifier, path, format)
        return
    with tempfile.TemporaryDirectory() as folder:
        saved = os.path.join(folder, "classifier.keras")
        classifier.save(saved)
        command = [sys.executable, "-m", __name__, saved, os.fspath(path)]
        done = subprocess.run(
            command + ["--format", format],
            env={**os.environ, "KERAS_BACKEND": "tensorflow"},
            capture_output=True,
            text=True,
        )
    if done.returncode:
        raise RuntimeError(
            f"Exporting under the TensorFlow backend failed:\n"
            f"{done.stderr[-4000:]}"
        )


def _check_exportable(classifier, format):
    if format not in FORMATS:
        raise ValueError(f"format={format!r} is not one of {FORMATS}.")
    if format == "tf_saved_model" and classifier.preprocessor is None:
        raise ValueError(
            "The classifier has no preprocessor: a SavedModel taking text "
            "needs one (`XLNetClassifier(..., preprocessor=...)`)."
        )
    if classifier.activation is not keras.activations.linear:
        raise ValueError(
            "The export returns logits and softmax probabilities; this "
            f"classifier applies activation={classifier.activation.__name__} "
            "to its outputs. Export a classifier built with activation=None."
        )


def _write(classifier, path, format):
    if format == "onnx":
        from keras_xlnet.serving.onnx_model import write_onnx

        write_onnx(classifier, path)
    else:
        from keras_xlnet.serving.saved_model import write_saved_model

        write_saved_model(classifier, path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Export an XLNetClassifier for serving."
    )
    parser.add_argument(
        "model", help="an XLNetClassifier .keras file or preset folder"
    )
    parser.add_argument("path", help="the SavedModel folder or .onnx file")
    parser.add_argument("--format", choices=FORMATS, default=FORMATS[0])
    args = parser.parse_args(argv)
    from keras_xlnet.models.xlnet_classifier import XLNetClassifier

    if args.model.endswith(".keras"):
        classifier = keras.saving.load_model(args.model)
    else:
        classifier = XLNetClassifier.from_preset(args.model)
    export_classifier(classifier, args.path, args.format)


if __name__ == "__main__":
    main()

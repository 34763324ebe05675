"""Loading XLNet checkpoints of every layout into Keras models."""

import contextlib
import dataclasses
import glob
import json
import os
import shutil
import tempfile
import warnings
import zipfile

import keras
import numpy as np

from keras_xlnet.checkpoints import configs
from keras_xlnet.checkpoints import layouts
from keras_xlnet.checkpoints.readers import CheckpointError
from keras_xlnet.checkpoints.readers import TFCheckpointReader
from keras_xlnet.checkpoints.readers import open_huggingface_folder
from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_classifier import XLNetClassifier
from keras_xlnet.models.xlnet_permutation_lm import XLNetPermutationLM
from keras_xlnet.models.xlnet_permutation_lm_preprocessor import (
    XLNetPermutationLMPreprocessor,
)
from keras_xlnet.models.xlnet_text_classifier_preprocessor import (
    XLNetTextClassifierPreprocessor,
)
from keras_xlnet.models.xlnet_tokenizer import XLNetTokenizer


@dataclasses.dataclass
class LoadedCheckpoint:
    """What `load_checkpoint` built, and what it did with each tensor."""

    backbone: object
    classifier: object  # `XLNetClassifier`, or None without a head.
    language_model: object  # `XLNetPermutationLM`, or None without one.
    layout: str
    ignored: list  # Source tensors deliberately not loaded.
    zero_filled: list  # Variables the source lacks, set to zeros.


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"Cannot read {path} as JSON: {error}") from None


def _find_tf_prefix(folder):
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(folder)
    if latest:
        return latest
    indexes = sorted(
        glob.glob(os.path.join(folder, "**", "*.index"), recursive=True)
    )
    if len(indexes) != 1:
        raise CheckpointError(
            f"Expected one TensorFlow checkpoint (*.index) in {folder!r}, "
            f"found {len(indexes)}: {indexes}. Pass the checkpoint prefix."
        )
    return indexes[0].removesuffix(".index")


def _tf_config(prefix, config):
    if isinstance(config, dict):
        return configs.from_xlnet_config(config, "the given config")
    path = config or os.path.join(os.path.dirname(prefix), "xlnet_config.json")
    if not os.path.exists(path):
        raise CheckpointError(
            f"No xlnet_config.json beside {prefix!r}; pass `config=` (the "
            "path of the release's xlnet_config.json)."
        )
    return configs.from_xlnet_config(_read_json(path), path)


@contextlib.contextmanager
def open_checkpoint(source, config=None):
    """Yields `(reader, backbone_kwargs)` for a local checkpoint.

    `source` is a TF checkpoint prefix, a folder holding one (with its
    `xlnet_config.json`), a release zip, or a Hugging Face model folder.
    """
    source = os.fspath(source)
    if zipfile.is_zipfile(source):
        with tempfile.TemporaryDirectory() as folder:
            with zipfile.ZipFile(source) as archive:
                archive.extractall(folder)
            configs_found = glob.glob(
                os.path.join(folder, "**", "xlnet_config.json"), recursive=True
            )
            with open_checkpoint(
                os.path.dirname(configs_found[0]) if configs_found else folder,
                config,
            ) as opened:
                yield opened
        return
    if os.path.isfile(os.path.join(source, "config.json")):
        reader, hf_config = open_huggingface_folder(source)
        if config is not None:
            hf_config = (
                config if isinstance(config, dict) else _read_json(config)
            )
        yield reader, configs.from_huggingface_config(hf_config)
        return
    if os.path.isdir(source):
        source = _find_tf_prefix(source)
    elif not os.path.exists(source + ".index"):
        raise CheckpointError(
            f"{source!r} is neither a TF checkpoint prefix (no "
            f"{source}.index), a folder, nor a zip file."
        )
    yield TFCheckpointReader(source), _tf_config(source, config)


def assign_weights(variables, reader, sources):
    """Assigns every variable from its source tensor, strictly.

    Args:
        variables: dict of variable path to `keras.Variable`.
        reader: a checkpoint reader (`keys`, `shape`, `read`).
        sources: the `layouts.TensorSource`s of these variables.

    Returns:
        `(ignored_keys, zero_filled_paths)`.

    Raises:
        CheckpointError: a variable without source, a missing or unknown
            tensor, or a shape that differs from the model's.
    """
    by_target = {source.target: source for source in sources}
    unmapped = sorted(set(variables) - set(by_target))
    if unmapped:
        raise CheckpointError(f"No source tensor for variables {unmapped}.")
    keys = set(reader.keys())
    used = {source.key for source in by_target.values()}
    unknown = sorted(k for k in keys - used if not layouts.is_ignored(k))
    if unknown:
        raise CheckpointError(
            f"The checkpoint holds tensors that the model has no place for: "
            f"{unknown}. Is the config (number of layers, head) right?"
        )
    missing = sorted(
        s.key
        for s in by_target.values()
        if s.key not in keys and not s.optional
    )
    if missing:
        raise CheckpointError(f"The checkpoint lacks tensors {missing}.")

    zero_filled = []
    for path, variable in variables.items():
        source = by_target[path]
        if source.key not in keys:
            value = np.zeros(variable.shape, "float32")
            zero_filled.append(path)
        else:
            value = source.transform(reader.read(source.key))
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointError(
                f"Tensor {source.key!r} has shape {reader.shape(source.key)} "
                f"(as {tuple(value.shape)} for {path!r}), but the model "
                f"expects {tuple(variable.shape)}: the config disagrees with "
                "the checkpoint."
            )
        variable.assign(value.astype(variable.dtype))
    ignored = sorted(k for k in keys - used if layouts.is_ignored(k))
    return ignored, zero_filled


def load_checkpoint(source, config=None, dtype=None, **backbone_overrides):
    """Builds an `XLNetBackbone` (and `XLNetClassifier`) from a checkpoint.

    Args:
        source: TF checkpoint prefix or folder (TF1, or TF2 of
            tf-models-official <= 2.3 / >= 2.4, detected from the keys), a
            release zip, or a Hugging Face model folder.
        config: optional path of (or dict from) `xlnet_config.json`, or a
            Hugging Face `config.json`; by default read beside the source.
        dtype: dtype policy of the built models.
        **backbone_overrides: other `XLNetBackbone` arguments, for example
            `attention_type="uni"` or `memory_length=128`.

    Returns:
        A `LoadedCheckpoint`. Its `classifier` is set when the source holds
        a sequence-classification head (summary + logits), else its
        `language_model` when it holds the LM head's bias (pretraining
        checkpoints: the release zips, tf-models-official's pretraining
        model, Hugging Face's `XLNetLMHeadModel`).
    """
    with open_checkpoint(source, config) as (reader, kwargs):
        keys = reader.keys()
        layout = layouts.detect_layout(keys)
        layouts.check_lm_projection(keys)
        kwargs = {**kwargs, **backbone_overrides}
        sources = layouts.tensor_sources(layout, keys, kwargs["num_layers"])
        backbone = XLNetBackbone(**kwargs, dtype=dtype)
        model = backbone
        classifier = language_model = None
        if layouts.has_classification_head(sources):
            logits_key = next(
                s.key for s in sources if s.target == "logits/bias"
            )
            num_classes = reader.shape(logits_key)[0]
            classifier = XLNetClassifier(backbone, num_classes=num_classes)
            model = classifier
        elif layouts.has_lm_head(sources):
            language_model = XLNetPermutationLM(backbone)
            model = language_model
        variables = {v.path: v for v in model.weights}
        ignored, zero_filled = assign_weights(variables, reader, sources)
        _check_tied_output(reader, keys, backbone)
    if zero_filled:
        warnings.warn(
            f"{source} holds no {zero_filled}; set to zeros. The two-stream "
            "query path (pretraining) needs trained values.",
            stacklevel=2,
        )
    return LoadedCheckpoint(
        backbone, classifier, language_model, layout, ignored, zero_filled
    )


def _check_tied_output(reader, keys, backbone):
    """Refuses a Hugging Face LM whose output weight (`lm_loss.weight`)
    is not the word embedding: our LM head ties them, as XLNet does."""
    if "lm_loss.weight" not in keys:
        return
    output = reader.read("lm_loss.weight")
    embedding = keras.ops.convert_to_numpy(backbone.token_embedding.embeddings)
    if output.shape != embedding.shape or not np.array_equal(
        output.astype(embedding.dtype), embedding
    ):
        raise CheckpointError(
            "The checkpoint's LM output weight `lm_loss.weight` differs "
            "from its word embedding; XLNet ties them, and so does "
            "XLNetPermutationLM."
        )


def _tokenizer(vocabulary):
    """`XLNetTokenizer` of a SentencePiece model file, or `CheckpointError`."""
    try:
        tokenizer = XLNetTokenizer(proto=os.fspath(vocabulary))
        tokenizer.vocabulary_size()
    except Exception as error:  # TensorFlow Text raises its own errors.
        raise CheckpointError(
            f"The vocabulary {vocabulary} is not a SentencePiece model "
            f"({str(error).splitlines()[0]})."
        ) from None
    return tokenizer


def convert_checkpoint(
    source,
    output_dir,
    vocabulary=None,
    config=None,
    *,
    allow_larger_vocabulary=False,
):
    """Converts an XLNet checkpoint into a KerasHub preset folder.

    The folder holds `config.json`, `model.weights.h5` and `metadata.json`,
    plus `task.json` and `task.weights.h5` when the source has a
    classification head, so that `XLNetClassifier.from_preset(output_dir)`
    reproduces the source's logits. With a vocabulary, the tokenizer (and
    the classifier's preprocessor) travel in the preset too, under
    `assets/tokenizer/vocabulary.spm`. It is written to a temporary sibling and
    renamed at the end: a crash never leaves a half-written preset.

    Args:
        source: see `load_checkpoint`.
        output_dir: the preset folder to create; must not exist yet.
        vocabulary: optional SentencePiece model (`spiece.model`) path.
        config: see `load_checkpoint`.
        allow_larger_vocabulary: bool; a vocabulary with more pieces than
            the checkpoint's embedding has rows is refused unless set, and
            then texts with the extra pieces are refused where they enter
            `fit`, `evaluate` or `predict` (in production, not here).

    Returns:
        A `LoadedCheckpoint` with the converted models.

    Example:
    ```python
    keras_xlnet.convert_checkpoint(
        "xlnet_cased_L-24_H-1024_A-16/xlnet_model.ckpt", "xlnet_large_cased"
    )
    backbone = keras_xlnet.XLNetBackbone.from_preset("xlnet_large_cased")
    ```
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    if os.path.exists(output_dir):
        raise FileExistsError(
            f"{output_dir!r} exists; choose a new folder for the preset."
        )
    parent = os.path.dirname(output_dir)
    try:
        os.makedirs(parent, exist_ok=True)
        tempfile.TemporaryDirectory(prefix=".probe-", dir=parent).cleanup()
    except OSError as error:
        raise CheckpointError(
            f"The preset folder {output_dir!r} cannot be created ({error})."
        ) from None
    tokenizer = None if vocabulary is None else _tokenizer(vocabulary)
    loaded = load_checkpoint(source, config=config)
    if tokenizer is not None:
        pieces, rows = (
            tokenizer.vocabulary_size(),
            loaded.backbone.vocabulary_size,
        )
        if pieces > rows and not allow_larger_vocabulary:
            raise CheckpointError(
                f"The vocabulary {vocabulary} has {pieces} pieces but the "
                f"checkpoint's embedding only {rows} rows: is it the "
                "checkpoint's vocabulary? (allow_larger_vocabulary=True, "
                "--allow-larger-vocabulary, converts anyway; texts with the "
                "extra pieces are then refused where they enter `fit`, "
                "`evaluate` or `predict`.)"
            )
        if loaded.classifier is not None:
            loaded.classifier.preprocessor = XLNetTextClassifierPreprocessor(
                tokenizer
            )
        if loaded.language_model is not None:
            loaded.language_model.preprocessor = XLNetPermutationLMPreprocessor(
                tokenizer
            )
    task = loaded.classifier or loaded.language_model
    staging = tempfile.mkdtemp(prefix=".converting-", dir=parent)
    try:
        (task or loaded.backbone).save_to_preset(staging)
        if tokenizer is not None and task is None:
            tokenizer.save_to_preset(staging)
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return loaded

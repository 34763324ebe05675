"""The offline demo of the IMDB recipe: bundled reviews, a tiny model."""

import importlib.resources
import os
import tempfile

import keras

# What `--demo` sets itself: its model, data and schedule.
SETTINGS = dict(
    preset="demo",
    sequence_length=64,
    batch_size=8,
    train_steps=60,
    warmup_steps=6,
    learning_rate=1e-3,
    eval_every=20,
    eval_batch_size=8,
    dtype="float32",
)
# Flags the demo owns besides `SETTINGS`: given with `--demo`, refused.
OWNS = (*SETTINGS, "data_dir", "train_tfrecord", "eval_tfrecord")
MODEL_DIR = "xlnet_imdb_demo"
BANNER = (
    "DEMO: a tiny XLNet and vocabulary trained on 36 bundled reviews "
    "(written for this project); numbers mean nothing about XLNet."
)


def demo_data():
    """The bundled reviews written for the demo: `(train, test)`."""
    text = (
        importlib.resources.files("keras_xlnet.data")
        .joinpath("demo_reviews.tsv")
        .read_text(encoding="utf-8")
    )
    rows = [line.split("\t", 1) for line in text.splitlines()[1:] if line]
    # Every fourth review is held out for evaluation.
    splits = {True: ([], []), False: ([], [])}
    for i, (label, review) in enumerate(rows):
        texts, labels = splits[i % 4 == 0]
        texts.append(review)
        labels.append(int(label))
    return splits[False], splits[True]


def demo_tokenizer(texts):
    """An `XLNetTokenizer` with a SentencePiece vocabulary of 400 pieces
    trained on `texts` (in a temporary folder, removed at once)."""
    from keras_xlnet.models.xlnet_tokenizer import XLNetTokenizer
    from keras_xlnet.models.xlnet_tokenizer import train_vocabulary

    with tempfile.TemporaryDirectory(prefix="keras_xlnet_demo_") as folder:
        path = train_vocabulary(texts, os.path.join(folder, "demo_spiece"), 400)
        with open(path, "rb") as file:
            return XLNetTokenizer(proto=file.read())


def demo_backbone(tokenizer, seed=0, dtype="float32"):
    """A tiny random XLNet (2 layers, hidden 32) for `tokenizer`."""
    from keras_xlnet.models.xlnet_backbone import XLNetBackbone

    keras.utils.set_random_seed(seed)
    return XLNetBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        dtype=dtype,
    )


def demo_classifier(train_texts, seed=0, dtype="float32"):
    """A tiny XLNet classifier with a vocabulary of `train_texts`."""
    from keras_xlnet.models.xlnet_classifier import XLNetClassifier
    from keras_xlnet.models.xlnet_text_classifier_preprocessor import (
        XLNetTextClassifierPreprocessor,
    )

    tokenizer = demo_tokenizer(train_texts)
    return XLNetClassifier(
        demo_backbone(tokenizer, seed, dtype),
        num_classes=2,
        preprocessor=XLNetTextClassifierPreprocessor(tokenizer),
    )


def demo_task(config):
    """The IMDB task of `config` on the bundled reviews and a tiny model."""
    from keras_xlnet.recipes.imdb import ImdbTask

    train, test = demo_data()
    return ImdbTask(
        config,
        lambda dtype: demo_classifier(train[0], dtype=dtype),
        train,
        test,
    )

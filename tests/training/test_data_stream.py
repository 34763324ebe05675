"""The training stream at the real dataset's layout: aclImdb lists all
negative reviews, then all positive ones; every pass must mix them."""

import types

import numpy as np
import pytest
from conftest import REPO_ROOT

from keras_xlnet.data import imdb
from keras_xlnet.recipes import imdb_demo
from keras_xlnet.recipes.imdb import ImdbConfig
from keras_xlnet.recipes.imdb import ImdbTask
from keras_xlnet.training import data_stream

pytestmark = pytest.mark.backend_independent

PER_CLASS = 5000
BATCH = 32
SEQUENCE_LENGTH = 16
WORDS = ["film", "plot", "actor", "scene", "music", "story", "ending", "cast"]
WORDS += ["light", "sound"]


def review(index):
    """A short review, different for every index."""
    digits = [WORDS[int(d) % len(WORDS)] for d in f"{index:05d}"]
    return f"Review {' '.join(digits)} {index}."


@pytest.fixture(scope="module")
def aclimdb(tmp_path_factory):
    """5,000 + 5,000 class-sorted training reviews (and a small test split)
    in aclImdb's layout."""
    root = tmp_path_factory.mktemp("aclImdb")
    for split, count in (("train", PER_CLASS), ("test", 3)):
        for label, name in enumerate(("neg", "pos")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                index = label * PER_CLASS + i
                (folder / f"{i}_{label}.txt").write_text(review(index))
    return root


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A preset folder of the demo classifier, with its vocabulary."""
    folder = tmp_path_factory.mktemp("preset") / "demo"
    train, _ = imdb_demo.demo_data()
    imdb_demo.demo_classifier(train[0]).save_to_preset(str(folder))
    return folder


def config(**changes):
    settings = dict(
        batch_size=BATCH,
        train_steps=1000,  # 32,000 examples: 3.2 passes.
        sequence_length=SEQUENCE_LENGTH,
    )
    return ImdbConfig(**{**settings, **changes})


def first_batches_labels(task, preprocessor=None, count=150):
    model = types.SimpleNamespace(preprocessor=preprocessor)
    stream = task.training_batches(model, 0).take(count)
    return [y.numpy() for _, y in stream]


def assert_mixed(batches):
    """At most 2 of the batches hold >= 90 % of one class; about half of
    all their examples are positive."""
    assert len(batches) == 150
    shares = np.array([np.mean(labels) for labels in batches])
    one_class = np.sum((shares >= 0.9) | (shares <= 0.1))
    assert one_class <= 2, one_class
    assert 0.4 <= np.mean(np.concatenate(batches)) <= 0.6


def test_text_batches_mix_the_classes(aclimdb):
    texts, labels = imdb.read_aclimdb(aclimdb, "train")
    assert labels[:PER_CLASS] == [0] * PER_CLASS  # Sorted by class.
    task = ImdbTask(config(), train=(texts, labels), test=([], []))
    preprocessor = imdb_demo.demo_classifier(texts[:50]).preprocessor
    preprocessor.sequence_length = SEQUENCE_LENGTH
    assert_mixed(first_batches_labels(task, preprocessor))


def test_each_pass_is_a_permutation_of_the_whole_split():
    size = 2 * PER_CLASS
    source = data_stream.InMemoryExamples(np.arange(size), np.arange(size))
    stream = data_stream.training_batches(
        source, lambda x: x, BATCH, 3 * size, seed=0
    )
    ids = np.concatenate([y.numpy() for _, y in stream])
    # Three passes, the last cut to whole batches.
    assert len(ids) == 3 * size // BATCH * BATCH
    passes = [ids[i * size : (i + 1) * size] for i in range(2)]
    for one_pass in passes:
        assert sorted(one_pass) == list(range(size))
    # Each pass in its own order; the first 2,048 examples (one shuffle
    # buffer) reach far beyond the first 2,048 of the split.
    assert not np.array_equal(passes[0], passes[1])
    assert np.mean(passes[0][:2048] >= PER_CLASS) > 0.4


def test_preprocessed_tfrecords_are_shuffled_and_read_once_per_pass(
    aclimdb, preset, tmp_path
):
    import preprocess_imdb

    code = preprocess_imdb.main(
        [
            "--data-dir",
            str(aclimdb),
            "--output-dir",
            str(tmp_path),
            "--preset",
            str(preset),
            "--sequence-length",
            str(SEQUENCE_LENGTH),
        ]
    )
    assert code == 0
    path = str(tmp_path / "train.tfrecord")
    written = [int(y) for _, y, _ in imdb.read_tfrecords(path, SEQUENCE_LENGTH)]
    assert len(written) == 2 * PER_CLASS
    assert 0.4 <= np.mean(written[:2048]) <= 0.6  # Shuffled when written.

    task = ImdbTask(config(train_tfrecord=path), train=None, test=([], []))
    assert_mixed(first_batches_labels(task))

    # One pass reads every record once.
    files, parse = imdb.tfrecord_files(path, SEQUENCE_LENGTH)
    source = data_stream.RecordFiles(files, parse, 2 * PER_CLASS)
    rows = [tuple(x["token_ids"].numpy()) for x, _, _ in source.one_pass(0, 0)]
    every = [
        tuple(x["token_ids"].numpy())
        for x, _, _ in imdb.read_tfrecords(path, SEQUENCE_LENGTH)
    ]
    assert sorted(rows) == sorted(every)
    assert len(set(every)) > 0.9 * len(every)  # Rows tell reviews apart.


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--data-dir", "missing"], "missing/train/neg does not exist"),
        (["--sequence-length", "2"], "--sequence-length must be at least 3"),
        (["--output-dir", "/proc/out"], "--output-dir /proc/out cannot be"),
    ],
)
def test_preprocess_tool_errors_are_one_line(
    argv, expected, aclimdb, preset, tmp_path, capsys
):
    import preprocess_imdb

    flags = {
        "--data-dir": str(aclimdb),
        "--output-dir": str(tmp_path / "out"),
        "--preset": str(preset),
    }
    flags.update(dict(zip(argv[::2], argv[1::2])))
    code = preprocess_imdb.main([a for kv in flags.items() for a in kv])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and expected in err, err
    assert len(err.splitlines()) == 1


def setup_module():
    import sys

    sys.path.insert(0, str(REPO_ROOT / "tools"))

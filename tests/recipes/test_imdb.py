"""The IMDB fine-tuning tool, end to end on real reviews and offline."""

import csv
import json
import socket
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import REPO_ROOT
from conftest import HuggingFacePeer
from conftest import jax_only
from conftest import real_vocabulary
from conftest import shared_path

import keras_xlnet
from keras_xlnet.data import imdb
from keras_xlnet.recipes import imdb_demo
from keras_xlnet.recipes.imdb import ImdbConfig
from keras_xlnet.recipes.imdb import ImdbTask

sys.path.insert(0, str(REPO_ROOT / "tools"))
import finetune_imdb  # noqa: E402


@pytest.fixture(scope="module")
def aclimdb(tmp_path_factory):
    """The 1000 shared reviews laid out as aclImdb folders."""
    root = tmp_path_factory.mktemp("aclImdb")
    with open(shared_path("data", "imdb_sample.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        split = "test" if row["is_valid"] == "True" else "train"
        label = "pos" if row["label"] == "positive" else "neg"
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}_0.txt").write_text(row["text"], encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    """A tiny random XLNet (real vocabulary size), converted with the real
    vocabulary."""
    folder = tmp_path_factory.mktemp("tiny")
    peer = HuggingFacePeer(
        folder / "hf",
        vocab_size=32000,
        d_model=16,
        n_head=2,
        d_inner=32,
        initializer_range=0.02,
    )
    keras_xlnet.convert_checkpoint(
        peer.folder, folder / "preset", vocabulary=real_vocabulary()
    )
    return folder / "preset"


def test_reading_aclimdb(aclimdb):
    texts, labels = imdb.read_aclimdb(aclimdb, "test")
    assert len(texts) == 200 and set(labels) == {0, 1}
    assert not any("<br />" in t for t in texts)


def test_eval_padding_examples_weigh_nothing():
    config = ImdbConfig(eval_batch_size=4, bucket_width=0)
    task = ImdbTask(config, train=([], []), test=(["a", "b", "c"], [0, 1, 1]))
    model = types.SimpleNamespace(preprocessor=lambda texts: texts)
    ((texts, labels, weights),) = list(task.evaluation_batches(model))
    assert texts.numpy().tolist() == [b"a", b"b", b"c", b""]
    assert labels.numpy().tolist() == [0, 1, 1, 0]
    assert weights.numpy().tolist() == [1, 1, 1, 0]


def test_length_ordered_evaluation_gives_the_padded_metrics(tmp_path):
    import keras

    train, test = imdb_demo.demo_data()
    test = (test[0][:12], test[1][:12])
    classifier = imdb_demo.demo_classifier(train[0])
    classifier.preprocessor.sequence_length = 128
    classifier.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=["accuracy"],
    )
    results, widths = [], []
    for bucket_width in (0, 32):
        config = ImdbConfig(
            sequence_length=128,
            train_steps=1,
            eval_batch_size=5,  # Padding examples in the last batch.
            bucket_width=bucket_width,
        )
        task = ImdbTask(config, train=train, test=test)
        eval_ds = task.evaluation_batches(classifier)
        widths.append({x["token_ids"].shape[1] for x, _, _ in eval_ds})
        results.append(
            classifier.evaluate(eval_ds, return_dict=True, verbose=0)
        )
    assert widths[0] == {128} and min(widths[1]) < 128
    assert results[1]["accuracy"] == results[0]["accuracy"]
    np.testing.assert_allclose(
        results[1]["loss"], results[0]["loss"], rtol=1e-5
    )


def test_eval_mode_evaluates_a_fine_tuned_preset_with_its_head(
    tmp_path, tiny_preset
):
    """Without a checkpoint, `--mode eval` evaluates `--preset` as saved,
    its classification head included (KerasHub would build a new head
    when given `num_classes`); a preset without a head is refused."""
    from keras_xlnet.training import runner
    from keras_xlnet.training.settings import RunError

    jax_only()
    train, test = imdb_demo.demo_data()
    classifier = imdb_demo.demo_classifier(train[0], seed=3)
    classifier.save_to_preset(str(tmp_path / "fine_tuned"))
    logits = classifier.predict(test[0], verbose=0)
    accuracy = np.mean(logits.argmax(-1) == np.array(test[1]))
    config = ImdbConfig(
        model_dir=str(tmp_path / "eval"),
        preset=str(tmp_path / "fine_tuned"),
        mode="eval",
        sequence_length=64,
        eval_batch_size=8,
        bucket_width=0,
        verbose=0,
    )
    summary = runner.run(ImdbTask(config, train=train, test=test))
    assert summary["evaluated"] == "preset"
    assert summary["eval_metrics"]["accuracy"] == pytest.approx(accuracy)
    headless = ImdbConfig(**{**vars(config), "preset": tiny_preset})
    with pytest.raises(RunError, match="not a fine-tuned classifier"):
        runner.run(ImdbTask(headless, train=train, test=test))


def test_end_to_end_on_real_reviews(aclimdb, tiny_preset, tmp_path, capsys):
    jax_only()
    model_dir = tmp_path / "run"
    code = finetune_imdb.main(
        [
            "--preset",
            str(tiny_preset),
            "--data-dir",
            str(aclimdb),
            "--model-dir",
            str(model_dir),
            "--sequence-length",
            "64",
            "--batch-size",
            "8",
            "--train-steps",
            "4",
            "--warmup-steps",
            "1",
            "--eval-every",
            "2",
            "--eval-batch-size",
            "64",
            "--dtype",
            "float32",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    summary_text = printed.split("Training Summary:\n")[1].split("\nMetrics")[0]
    assert f"trained preset are in {model_dir}" in printed
    saved = json.loads((model_dir / "metrics.json").read_text())
    assert json.loads(summary_text) == saved
    assert saved["total_training_steps"] == 4

    # The reported accuracy and loss cover exactly the 200 test reviews,
    # though the last batch of 64 holds 56 padding examples.
    classifier = keras_xlnet.XLNetClassifier.from_preset(
        str(model_dir / "preset")
    )
    classifier.preprocessor.sequence_length = 64
    texts, labels = imdb.read_aclimdb(aclimdb, "test")
    logits = classifier.predict(texts, batch_size=64, verbose=0)
    labels = np.array(labels)
    accuracy = float(np.mean(logits.argmax(-1) == labels))
    assert saved["eval_metrics"]["accuracy"] == pytest.approx(
        accuracy, abs=1e-6
    )
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    loss = -log_probabilities[np.arange(len(labels)), labels].mean()
    assert saved["eval_metrics"]["loss"] == pytest.approx(loss, abs=1e-5)


def test_without_data_or_network_stops_at_once(
    tiny_preset, tmp_path, monkeypatch, capsys
):
    def no_network(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    code = finetune_imdb.main(
        [
            "--preset",
            str(tiny_preset),
            "--model-dir",
            str(tmp_path / "run"),
            "--train-steps",
            "4",
            "--eval-every",
            "2",
            "--warmup-steps",
            "1",
        ]
    )
    assert code == 1
    message = capsys.readouterr().err
    assert "--data-dir" in message and "--demo" in message


def test_tfrecords_round_trip(aclimdb, tiny_preset, tmp_path):
    preprocessor = keras_xlnet.XLNetPreprocessor.from_preset(
        str(tiny_preset), sequence_length=48
    )
    texts, labels = imdb.read_aclimdb(aclimdb, "test")
    path = str(tmp_path / "test.tfrecord")
    imdb.write_tfrecords(path, preprocessor, texts[:20], labels[:20])
    records = list(imdb.read_tfrecords(path, 48))
    packed = preprocessor(texts[:20])
    for i, (inputs, label, weight) in enumerate(records):
        mask = np.asarray(packed["padding_mask"][i]).astype(bool)
        np.testing.assert_array_equal(inputs["padding_mask"].numpy(), mask)
        for key in ("token_ids", "segment_ids"):
            np.testing.assert_array_equal(
                inputs[key].numpy()[mask], np.asarray(packed[key][i])[mask]
            )
        assert int(label) == labels[i] and float(weight) == 1.0


SEGMENTS = ["--max-segments", "2", "--keep", "tail", "--head-length", "4"]


def run_demo(flags, cwd):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tools" / "finetune_imdb.py"),
            "--demo",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


REMAT_SEGMENTS = ["--model-dir", "elsewhere", "--remat"]
REMAT_SEGMENTS += ["--memory-gradient", "full", "--mode", "train"]


@pytest.mark.parametrize(
    "flags", [[], REMAT_SEGMENTS], ids=["plain", "remat_segments_train"]
)
def test_demo_from_the_command_line(tmp_path, flags):
    """The demo trains and evaluates (`--mode train_and_eval`), exporting
    for serving (`--export`); `--mode eval` on its folder reproduces its
    evaluation exactly and `--mode export_only` exports it again, offline;
    `--mode train` trains only."""
    jax_only()
    result = run_demo(
        [*flags, *(SEGMENTS if flags else ["--export"])], tmp_path
    )
    assert result.stdout.startswith("DEMO:")
    # The stated folders: --model-dir, else the demo's own.
    folder = tmp_path / ("elsewhere" if flags else "xlnet_imdb_demo")
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]
    assert f"trained preset are in {folder.name}" in result.stdout
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["total_training_steps"] == 60
    if flags:
        assert "eval_metrics" not in saved  # --mode train
    else:
        evaluated = run_demo(["--mode", "eval"], tmp_path)
        assert "eval/metrics.json" in evaluated.stdout
        again = json.loads((folder / "eval" / "metrics.json").read_text())
        assert again["evaluated"] == "checkpoint 3"
        assert again["total_training_steps"] == 60
        assert again["eval_metrics"] == saved["eval_metrics"]
        exported = run_demo(["--mode", "export_only"], tmp_path)
        exports = [printed_export(r.stdout) for r in (result, exported)]
        check_served_like_the_preset(
            [tmp_path / export for export in exports], folder / "preset"
        )
    # The checkpoint records what ran: the demo's model and schedule.
    record = json.loads(
        (folder / "checkpoints" / "3" / "run" / "metadata").read_text()
    )
    assert record["settings"]["preset"] == "demo"
    assert record["settings"]["train_steps"] == 60
    classifier = keras_xlnet.XLNetClassifier.from_preset(str(folder / "preset"))
    assert classifier.predict(["a great film"], verbose=0).shape == (1, 2)
    if flags:
        preprocessor = classifier.preprocessor
        assert (preprocessor.max_segments, preprocessor.keep) == (2, "tail")
        assert preprocessor.head_length == 4
        # The demo's 64 positions as two segments of 32.
        assert (classifier.segment_length, classifier.max_segments) == (32, 2)
        assert classifier.memory_gradient == "full"


def printed_export(stdout):
    """The serving export's folder named in a run's printed summary."""
    summary = stdout.split("Training Summary:\n")[1].split("\n}")[0] + "}"
    return json.loads(summary)["export"]


def check_served_like_the_preset(exports, preset):
    import tensorflow as tf

    texts = ["a great film", "dull, dull, dull.", "2,000 times better"]
    classifier = keras_xlnet.XLNetClassifier.from_preset(str(preset))
    expected = classifier.predict(texts, verbose=0)
    assert len(set(exports)) == len(exports)  # A new version each time.
    for folder in exports:
        assert folder.parent.name == "export"
        serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
        logits = serve(texts=tf.constant(texts))["logits"].numpy()
        np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_training_from_original_tfrecords(aclimdb, tiny_preset, tmp_path):
    jax_only()
    preprocessor = keras_xlnet.XLNetPreprocessor.from_preset(
        str(tiny_preset), sequence_length=32
    )
    for split in ("train", "test"):
        texts, labels = imdb.read_aclimdb(aclimdb, split)
        imdb.write_tfrecords(
            str(tmp_path / f"{split}.tfrecord"),
            preprocessor,
            texts[:40],
            labels[:40],
        )
    code = finetune_imdb.main(
        [
            "--preset",
            str(tiny_preset),
            "--train-tfrecord",
            str(tmp_path / "train.tfrecord"),
            "--eval-tfrecord",
            str(tmp_path / "test.tfrecord"),
            "--model-dir",
            str(tmp_path / "run"),
            "--sequence-length",
            "32",
            "--batch-size",
            "8",
            "--train-steps",
            "2",
            "--warmup-steps",
            "1",
            "--eval-every",
            "2",
            "--eval-batch-size",
            "16",
            "--dtype",
            "float32",
        ]
    )
    assert code == 0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["total_training_steps"] == 2
    assert 0.0 <= saved["eval_metrics"]["accuracy"] <= 1.0


def short_run(tmp_path):
    """Flags of a two-step run into `tmp_path / "run"`."""
    return [
        "--model-dir",
        tmp_path / "run",
        "--train-steps",
        "2",
        "--eval-every",
        "2",
        "--warmup-steps",
        "1",
    ]


@pytest.mark.backend_independent
def test_a_bad_mode_is_named(capsys):
    from keras_xlnet.training.settings import RunError

    with pytest.raises(SystemExit):
        finetune_imdb.main(["--mode", "serve"])
    assert "--mode: invalid choice: 'serve'" in capsys.readouterr().err
    with pytest.raises(RunError, match="mode must be one of"):
        ImdbConfig(mode="serve").check()


def run_finetune_tool(argv, capsys):
    code = finetune_imdb.main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--batch-size", "0"], "batch_size must be an integer of at least 1"),
        (
            ["--train-steps", "0"],
            "train_steps must be an integer of at least 1",
        ),
        (["--sequence-length", "0"], "sequence_length must be an integer"),
        (["--eval-every", "0"], "eval_every must be an integer of at least 1"),
        (["--learning-rate=-1e-5"], "learning_rate must be positive"),
        (["--max-segments", "0"], "max_segments must be an integer"),
        (
            ["--max-segments", "3"],
            "sequence_length=512 is not max_segments=3 whole segments",
        ),
        (["--head-length=-1"], "head_length must be an integer of at least 0"),
        (
            ["--bucket-width=-1"],
            "bucket_width must be an integer of at least 0",
        ),
        (["--memory-length=-1"], "`memory_length` must be a non-negative"),
        (
            ["--connect-timeout", "0"],
            "connect_timeout must be an integer of at least 1",
        ),
        (
            ["--max-segments", "2", "--train-tfrecord", "x"],
            "TFRecords hold one packed segment",
        ),
        (["--warmup-steps", "9000"], "warmup_steps (9000) exceeds"),
        (["--demo", "--batch-size", "2"], "drop --batch-size or drop --demo"),
        (
            ["--mode", "export_only"],
            "holds no checkpoint, and --preset xlnet_large_cased is not a "
            "fine-tuned classifier (a pretrained model",
        ),
        (["--mode", "eval", "--export"], "--export applies to training"),
        (
            ["--demo", "--train-steps", "8", "--data-dir", "x"],
            "drop --train-steps, --data-dir or drop --demo",
        ),
    ],
)
def test_bad_settings_end_in_one_error_line(flags, expected, tmp_path, capsys):
    code, err = run_finetune_tool(
        ["--model-dir", tmp_path / "run", *flags], capsys
    )
    assert code != 0
    assert err.startswith("error: ") and expected in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "model_dir, expected",
    [
        ("a_file", "is a file, not a folder"),
        ("a_file/run", "cannot be written"),
        ("/proc/keras_xlnet_run", "cannot be written"),
    ],
)
def test_an_unusable_model_dir_ends_in_one_error_line(
    model_dir, expected, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("not a folder")
    code, err = run_finetune_tool(["--demo", "--model-dir", model_dir], capsys)
    assert code == 1
    assert err.startswith(f"error: --model-dir {model_dir}") and expected in err
    assert len(err.splitlines()) == 1, err


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        finetune_imdb.main(["--demo", "--model-dir", "a_file", "--debug"])


def aclimdb_with(root, counts):
    """An aclImdb folder with `counts[(split, class)]` one-line reviews."""
    for (split, name), count in counts.items():
        folder = root / split / name
        folder.mkdir(parents=True)
        for i in range(count):
            (folder / f"{i}_1.txt").write_text("a fine film")
    return root


@pytest.mark.parametrize(
    "counts, empty",
    [
        (
            {
                ("train", "neg"): 0,
                ("train", "pos"): 3,
                ("test", "neg"): 1,
                ("test", "pos"): 1,
            },
            "train/neg",
        ),
        (
            {
                ("train", "neg"): 2,
                ("train", "pos"): 3,
                ("test", "neg"): 0,
                ("test", "pos"): 0,
            },
            "test/neg",
        ),
    ],
    ids=["one class empty", "empty split"],
)
def test_missing_reviews_end_in_one_error_line(
    counts, empty, tiny_preset, tmp_path, capsys
):
    data = aclimdb_with(tmp_path / "aclImdb", counts)
    code, err = run_finetune_tool(
        [
            "--preset",
            tiny_preset,
            "--data-dir",
            data,
            *short_run(tmp_path),
        ],
        capsys,
    )
    assert code == 1
    assert err.startswith("error: ") and f"{empty} holds no reviews" in err
    assert len(err.splitlines()) == 1


def test_corrupt_dataset_archive_is_deleted_with_a_clear_error(
    tiny_preset, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = tmp_path / ".cache" / "keras_xlnet"
    cache.mkdir(parents=True)
    archive = cache / "aclImdb_v1.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08 this is not a gzip stream")
    code, err = run_finetune_tool(
        [
            "--preset",
            tiny_preset,
            *short_run(tmp_path),
        ],
        capsys,
    )
    assert code == 1
    assert "is not a readable aclImdb archive" in err and "--data-dir" in err
    assert len(err.splitlines()) == 1, err
    assert not archive.exists()


def test_tfrecords_of_another_length_end_in_one_error_line(
    aclimdb, tiny_preset, tmp_path, capsys
):
    preprocessor = keras_xlnet.XLNetPreprocessor.from_preset(
        str(tiny_preset), sequence_length=32
    )
    texts, labels = imdb.read_aclimdb(aclimdb, "test")
    path = tmp_path / "train.tfrecord"
    imdb.write_tfrecords(str(path), preprocessor, texts[:8], labels[:8])
    code, err = run_finetune_tool(
        [
            "--preset",
            tiny_preset,
            "--train-tfrecord",
            path,
            "--eval-tfrecord",
            path,
            "--sequence-length",
            "48",
            *short_run(tmp_path),
        ],
        capsys,
    )
    assert code == 1
    assert "holds sequences of 32 ids" in err and "--sequence-length 48" in err
    assert len(err.splitlines()) == 1

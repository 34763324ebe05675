"""Two processes on 127.0.0.1 train as one process with their devices.

Each run is a few processes of `multiprocess_run.py`, bounded in time. JAX:
two processes with 2 CPU devices each (Gloo collectives) against one
process with 4. TensorFlow: two `MultiWorkerMirroredStrategy` workers with
one CPU each against one `MirroredStrategy` process with 2 logical CPUs.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from child_processes import DEADLINE
from child_processes import finish
from child_processes import free_ports
from child_processes import process_env
from child_processes import results
from child_processes import start_all

import keras_xlnet
from keras_xlnet.data import imdb
from keras_xlnet.models.xlnet_tokenizer import train_vocabulary
from keras_xlnet.recipes import imdb_demo

HERE = os.path.dirname(__file__)
SCRIPT = os.path.join(HERE, "multiprocess_run.py")
TOOL = os.path.join(HERE, "..", "..", "tools", "finetune_imdb.py")
BACKEND = keras.config.backend()
ALL_DEVICES = {"jax": 4, "tensorflow": 2}
# --distribution of the one-process reference and of several processes.
ALONE = {"jax": "data_parallel", "tensorflow": "mirrored"}
SEVERAL = {"jax": "data_parallel", "tensorflow": "multi_worker"}
LAYOUTS = {"jax": ["data_parallel", "model_parallel"]}.get(
    BACKEND, [SEVERAL.get(BACKEND)]
)

pytestmark = pytest.mark.skipif(
    BACKEND == "torch", reason="several processes run on JAX or TensorFlow"
)


def run(
    model_dir, vocabulary, mode="straight", count=2, layout=None, records=()
):
    """A run of `count` processes over `ALL_DEVICES` (one per process on
    TensorFlow), with `layout` or the backend's default, evaluating on
    `records` (a TFRecord path) if given."""
    layout = layout or (SEVERAL if count > 1 else ALONE)[BACKEND]
    devices = str(ALL_DEVICES[BACKEND] // count)
    command = [sys.executable, SCRIPT, str(model_dir), vocabulary, mode]
    return start_all(command + [layout, devices, *records], count)


@pytest.fixture(scope="module")
def vocabulary(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vocabulary")
    train, _ = imdb_demo.demo_data()
    return train_vocabulary(train[0], str(folder / "spiece"), 400)


@pytest.fixture(scope="module")
def test_tfrecord(tmp_path_factory, vocabulary):
    """The 11 test reviews of the runs as TFRecords (an odd count)."""
    _, test = imdb_demo.demo_data()
    preprocessor = keras_xlnet.XLNetTextClassifierPreprocessor(
        keras_xlnet.XLNetTokenizer(proto=vocabulary), sequence_length=16
    )
    path = str(tmp_path_factory.mktemp("records") / "test.tfrecord")
    imdb.write_tfrecords(path, preprocessor, test[0][:11], test[1][:11])
    return path


def preset_weights(model_dir):
    classifier = keras_xlnet.XLNetClassifier.from_preset(
        str(model_dir / "preset")
    )
    return classifier, classifier.get_weights()


def outside_checkpoints(folder):
    return [f for f in files(folder) if not f.startswith("checkpoints")]


def files(folder):
    """The files under `folder`, TensorBoard's named `<events>`."""
    return sorted(
        os.path.relpath(
            os.path.join(root, "<events>" if "tfevents" in name else name),
            folder,
        )
        for root, _, names in os.walk(folder)
        for name in names
    )


def killed_and_resumed(model_dir, vocabulary, records):
    """The results of two processes resumed after process 1 SIGKILLed
    itself at the checkpoint of step 5 (of 10)."""
    killed = run(model_dir, vocabulary, mode="kill", records=records)
    # The chief would wait for process 1 in the next step's collectives:
    # stop it too, as a cluster manager restarting the job would.
    try:
        killed[1].wait(timeout=DEADLINE)
    finally:
        killed[0].send_signal(signal.SIGKILL)
        finish(killed, deadline=60)
    assert killed[1].returncode == -signal.SIGKILL
    assert os.listdir(model_dir / "checkpoints") == ["1"]
    return results(
        finish(run(model_dir, vocabulary, mode="resume", records=records))
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory, vocabulary, test_tfrecord):
    """`name -> (model_dir, results)` of the one-process reference with all
    the devices ("one") and of two processes in each layout, run once per
    module, one run after the other (side by side, the collectives of
    starved processes slow them all down). The two data-parallel processes
    (JAX) or workers (TensorFlow) are killed half-way and resumed, and
    evaluate from TFRecords of the test reviews; the others read texts."""
    found = {}
    for name in ["one", *LAYOUTS]:
        model_dir = tmp_path_factory.mktemp(name)
        if name == "one":
            found[name] = (
                model_dir,
                results(finish(run(model_dir, vocabulary, count=1))),
            )
        elif name == SEVERAL[BACKEND]:
            found[name] = (
                model_dir,
                killed_and_resumed(model_dir, vocabulary, [test_tfrecord]),
            )
        else:
            found[name] = (
                model_dir,
                results(finish(run(model_dir, vocabulary, layout=name))),
            )
    return found


@pytest.mark.parametrize("layout", LAYOUTS)
def test_two_processes_train_as_one_process_with_their_devices(runs, layout):
    """Killed and resumed (data parallel) or straight (model parallel), two
    processes end where one process with their devices ends."""
    one_dir, (single,) = runs["one"]
    two_dir, two = runs[layout]
    resumed = layout == SEVERAL[BACKEND]
    # Steps and evaluations of the last run (the resumed one: steps 6-10).
    steps, evaluations = (5, 1) if resumed else (10, 2)

    assert [r["process"] for r in two] == [0, 1]
    # The model-parallel layout splits weights over both processes.
    assert all(bool(r["split"]) == (layout == "model_parallel") for r in two)
    if BACKEND == "tensorflow":
        # Each of the 2 replicas (one per worker; both in one process)
        # trained on its half of each batch of 8, and evaluated its half of
        # each of the 3 test batches of 4.
        assert all(
            r["rows"] == {"train": [4] * steps, "test": [2] * 3 * evaluations}
            for r in two
        )
        assert single["rows"] == {"train": [4] * 20, "test": [2] * 12}
    assert len(single["losses"]) == 10
    for other in two:
        assert len(other["losses"]) == steps
        np.testing.assert_allclose(
            other["losses"], single["losses"][-steps:], atol=1e-5
        )
    assert single["losses"][0] != pytest.approx(single["losses"][-1])
    _, expected = preset_weights(one_dir)
    classifier, weights = preset_weights(two_dir)
    for a, b in zip(expected, weights):
        np.testing.assert_allclose(a, b, atol=1e-5)

    # Only the chief wrote, besides its part of the checkpoints: the files
    # of the one process, one TensorBoard writer per split (and run).
    assert set(outside_checkpoints(two_dir)) == set(
        outside_checkpoints(one_dir)
    )
    assert "logs/train/<events>" in files(two_dir)
    assert sorted(os.listdir(two_dir / "checkpoints")) == ["1", "2"]
    # Model parallel: each process wrote the shards its devices hold, and
    # no variable was gathered for it (Orbax's per-process stores).
    written = {
        name
        for name in os.listdir(two_dir / "checkpoints" / "2" / "state")
        if name.startswith("ocdbt.process_")
    }
    if layout == "model_parallel":
        assert written == {"ocdbt.process_0", "ocdbt.process_1"}

    # The evaluation counted each of the 11 test reviews once: its metrics
    # are those of the final weights on the reviews, computed here.
    _, test = imdb_demo.demo_data()
    texts, labels = test[0][:11], np.array(test[1][:11])
    logits = classifier.predict(texts, verbose=0)
    log_probabilities = logits - np.log(
        np.sum(np.exp(logits), axis=-1, keepdims=True)
    )
    cross_entropy = -np.mean(log_probabilities[np.arange(11), labels])
    accuracy = np.mean(np.argmax(logits, axis=-1) == labels)
    metrics = json.loads((two_dir / "metrics.json").read_text())
    assert metrics["eval_metrics"]["loss"] == pytest.approx(
        cross_entropy, abs=1e-5
    )
    assert metrics["eval_metrics"]["accuracy"] == pytest.approx(accuracy)


def test_processes_that_see_other_checkpoints_stop_naming_them(
    tmp_path, vocabulary, runs
):
    """A --model-dir that is not shared storage: process 0 sees the
    checkpoints of a finished run, process 1 none."""
    finished_dir, _ = runs[SEVERAL[BACKEND]]
    shutil.copytree(finished_dir, tmp_path / "seen_by_0")
    (tmp_path / "seen_by_1").mkdir()
    outputs = finish(run(tmp_path / "seen_by_{index}", vocabulary, "resume"))
    expected = (
        "The processes disagree on the checkpoint to resume from (interval) "
        "(process 0: 2, process 1: 0)"
    )
    for code, _, err in outputs:
        assert code != 0 and expected in err, err[-2000:]


def test_a_process_without_its_coordinator_fails_in_bounded_time(tmp_path):
    command = [
        sys.executable,
        TOOL,
        "--demo",
        "--model-dir",
        str(tmp_path / "run"),
        "--connect-timeout",
        "3",
    ]
    port = free_ports(2)
    env = process_env(2, index=1, count=2, port=port)
    began = time.monotonic()
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    process = "1" if BACKEND == "jax" else "worker 1"
    expected = (
        f"error: Process {process} cannot reach the coordinator at "
        f"127.0.0.1:{port} within 3 s"
    )
    assert expected in done.stderr
    assert time.monotonic() - began < 60

"""The runner serves a task it knows nothing of: a regression task written
in the tests trains, resumes exactly after SIGKILL and exports.

The resumption of each backend's state (its random generators among them)
is proven by `test_fault_tolerance.py` on every backend; here, that the
runner resumes a task it does not know, once."""

import json
import os
import pathlib
import signal
import sys

import keras
import numpy as np
import pytest
from child_processes import finish
from child_processes import start
from regression_task import RegressionTask
from regression_task import config

from keras_xlnet.training import runner
from keras_xlnet.training.settings import RunError

SCRIPT = os.path.join(os.path.dirname(__file__), "regression_run.py")


def run(model_dir, mode):
    return start([sys.executable, SCRIPT, str(model_dir), mode])


def exported(model_dir):
    return keras.saving.load_model(model_dir / "preset" / "model.keras")


def test_a_new_task_trains_evaluates_and_exports(tmp_path):
    task = RegressionTask(config(str(tmp_path / "run")))
    summary = runner.run(task)
    assert summary["total_training_steps"] == 12
    # The evaluation covers the 13 test examples once (3 filling ones
    # weigh 0): the exported model's mean absolute error on them.
    model = exported(tmp_path / "run")
    x, y = task.test
    error = np.mean(np.abs(model.predict(x, verbose=0)[:, 0] - y))
    assert abs(summary["eval_metrics"]["mae"] - error) < 1e-5
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved == summary
    # It learned: the trained model fits the test examples better than the
    # model the run started from (built as the runner builds it).
    keras.utils.set_random_seed(task.config.seed)
    initial = task.build_model("float32")
    initial_error = np.mean(np.abs(initial.predict(x, verbose=0)[:, 0] - y))
    assert error < initial_error


def test_eval_mode_evaluates_the_newest_checkpoint(tmp_path):
    """Of the run's own optimizer (accumulation adds variables), however
    the evaluation's flags set it; an empty folder is refused."""
    train = RegressionTask(config(str(tmp_path / "run")))
    train.config.accumulation_steps = 2
    runner.run(train)
    task = RegressionTask(config(str(tmp_path / "run"), mode="eval"))
    summary = runner.run(task)
    x, y = task.test
    model = exported(tmp_path / "run")
    error = np.mean(np.abs(model.predict(x, verbose=0)[:, 0] - y))
    assert abs(summary["eval_metrics"]["mae"] - error) < 1e-5
    assert summary["evaluated"] == "checkpoint 3"
    saved = tmp_path / "run" / "eval" / "metrics.json"
    assert json.loads(saved.read_text()) == summary
    empty = RegressionTask(config(str(tmp_path / "empty"), mode="eval"))
    with pytest.raises(RunError, match="--mode eval: .* holds no checkpoint"):
        runner.run(empty)


class ServedRegression(RegressionTask):
    def export_for_serving(self, model, folder):
        np.save(os.path.join(folder, "kernel.npy"), model.get_weights()[0])


def test_export_only_mode_exports_the_newest_checkpoint(tmp_path):
    """Into a new version folder of `<model_dir>/export` each time; a task
    without a serving export is refused by name."""
    runner.run(RegressionTask(config(str(tmp_path / "run"))))
    task = ServedRegression(config(str(tmp_path / "run"), mode="export_only"))
    first, second = runner.run(task), runner.run(task)
    assert first["exported"] == "checkpoint 3"
    folders = [pathlib.Path(s["export"]) for s in (first, second)]
    assert folders[0] != folders[1]
    assert {f.parent for f in folders} == {tmp_path / "run" / "export"}
    kernel = exported(tmp_path / "run").get_weights()[0]
    for folder in folders:
        np.testing.assert_array_equal(np.load(folder / "kernel.npy"), kernel)
    plain = RegressionTask(config(str(tmp_path / "run"), mode="export_only"))
    with pytest.raises(RunError, match="no export for serving"):
        runner.run(plain)


@pytest.mark.backend_independent
def test_a_new_task_resumes_exactly_after_sigkill(tmp_path):
    straight, killed = finish(
        [
            run(tmp_path / "straight", "straight"),
            run(tmp_path / "killed", "kill"),
        ]
    )
    assert straight[0] == 0, straight[2][-2000:]
    assert killed[0] == -signal.SIGKILL, killed[2][-2000:]
    assert os.listdir(tmp_path / "killed" / "checkpoints") == ["1"]
    ((resumed, _, error),) = finish([run(tmp_path / "killed", "resume")])
    assert resumed == 0, error[-2000:]
    for a, b in zip(
        exported(tmp_path / "straight").get_weights(),
        exported(tmp_path / "killed").get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    summaries = [
        json.loads((tmp_path / name / "metrics.json").read_text())
        for name in ("straight", "killed")
    ]
    assert summaries[0]["eval_metrics"] == summaries[1]["eval_metrics"]
    assert summaries[0]["train_loss"] == summaries[1]["train_loss"]

"""A killed run, resumed, ends where a straight run ends."""

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import jax_only

import keras_xlnet
from keras_xlnet.training import finetune

SCRIPT = os.path.join(os.path.dirname(__file__), "killable_run.py")


def run(model_dir, mode):
    return subprocess.run(
        [sys.executable, SCRIPT, str(model_dir), mode],
        capture_output=True,
        text=True,
        timeout=600,
    )


def weights(model_dir):
    classifier = keras_xlnet.XLNetClassifier.from_preset(
        str(model_dir / "preset")
    )
    return classifier.get_weights()


def test_sigkill_then_resume_equals_a_straight_run(tmp_path):
    jax_only()
    straight = run(tmp_path / "straight", "straight")
    assert straight.returncode == 0, straight.stderr[-2000:]

    killed = run(tmp_path / "killed", "kill")
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "killed" / "backup" / "latest.weights.h5").exists()
    resumed = run(tmp_path / "killed", "resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    for a, b in zip(
        weights(tmp_path / "straight"), weights(tmp_path / "killed")
    ):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_corrupt_latest_checkpoint_falls_back_with_a_warning(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "latest.weights.h5").write_bytes(b"not an HDF5 file")
    (backup / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    import h5py

    with h5py.File(backup / "latest.weights.h5.bkp", "w"):
        pass
    (backup / "training_metadata.json.bkp").write_text(
        '{"epoch": 1, "batch": 0}'
    )
    with pytest.warns(UserWarning, match="previous one"):
        assert finetune.restorable_epoch(str(backup)) == 1
    shutil.rmtree(backup)

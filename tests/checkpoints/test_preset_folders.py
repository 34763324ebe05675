"""Damaged preset folders: an error naming the file, never a random head."""

import shutil

import keras_hub
import numpy as np
import pytest
from conftest import numpy

import keras_xlnet


@pytest.fixture
def preset(fixture_preset, tmp_path):
    """A fresh copy of the converted Model Garden fixture (with its head)."""
    folder = tmp_path / "preset"
    shutil.copytree(fixture_preset[0], folder)
    return folder


def test_missing_task_weights_are_refused(preset, fixture_preset):
    (preset / "task.weights.h5").unlink()
    with pytest.raises(keras_xlnet.CheckpointError, match="no task.weights.h5"):
        keras_xlnet.XLNetClassifier.from_preset(str(preset))
    with pytest.raises(keras_xlnet.CheckpointError, match="head would be"):
        keras_hub.models.TextClassifier.from_preset(str(preset))
    # A new head on the preset's backbone is what `num_classes` asks for.
    _, inputs, expected = fixture_preset
    fresh = keras_xlnet.XLNetClassifier.from_preset(str(preset), num_classes=2)
    np.testing.assert_allclose(
        numpy(fresh.backbone(inputs))[0],
        expected["sequence_output"][0],
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "file, load",
    [
        ("model.weights.h5", keras_xlnet.XLNetBackbone.from_preset),
        ("task.weights.h5", keras_xlnet.XLNetClassifier.from_preset),
        ("config.json", keras_xlnet.XLNetBackbone.from_preset),
        ("config.json", keras_hub.models.Backbone.from_preset),
        ("tokenizer.json", keras_xlnet.XLNetTokenizer.from_preset),
        ("task.json", keras_xlnet.XLNetClassifier.from_preset),
    ],
)
def test_truncated_files_are_named(preset, file, load):
    path = preset / file
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(keras_xlnet.CheckpointError) as error:
        load(str(preset))
    assert file in str(error.value) and "damaged" in str(error.value)

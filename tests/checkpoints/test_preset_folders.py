"""Damaged preset folders: an error naming the file, never a random head."""

import json
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


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(num_layers="2"), r"`num_layers` must be a positive integer.*'2'"),
        (dict(num_heads=None), "`num_heads` must be a positive integer"),
        (dict(num_heads=...), r"lacks \['num_heads'\]"),
        (dict(dropout=1.5), r"`dropout` must be a number in \[0, 1\)"),
        (dict(memory_length=-3), "`memory_length` must be a non-negative"),
    ],
    ids=["string", "null", "missing", "rate", "memory"],
)
def test_a_config_with_a_wrong_value_is_named(preset, change, message):
    path = preset / "config.json"
    config = json.loads(path.read_text())
    for key, value in change.items():
        if value is ...:
            del config["config"][key]
        else:
            config["config"][key] = value
    path.write_text(json.dumps(config))
    for load in (
        keras_xlnet.XLNetBackbone.from_preset,
        keras_hub.models.Backbone.from_preset,
    ):
        with pytest.raises(keras_xlnet.CheckpointError, match=message) as error:
            load(str(preset))
        assert "config.json" in str(error.value)

"""The TF Model Garden fixtures: three layouts, converted and reloaded."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import REFERENCE_LAYOUTS
from conftest import REPO_ROOT
from conftest import jax_only
from conftest import max_diff_on_real_tokens
from conftest import numpy
from conftest import reference_fixture
from conftest import shared_path

import keras_xlnet

sys.path.insert(0, str(REPO_ROOT / "tools"))
import convert_checkpoint as convert_tool  # noqa: E402


@pytest.mark.parametrize("layout", REFERENCE_LAYOUTS)
def test_converted_preset_reproduces_reference(layout, tmp_path):
    folder, inputs, expected = reference_fixture(layout)
    preset = tmp_path / "preset"
    assert convert_tool.main([str(folder), str(preset)]) == 0

    classifier = keras_xlnet.XLNetClassifier.from_preset(str(preset))
    np.testing.assert_allclose(
        classifier.predict(inputs, verbose=0), expected["logits"], atol=1e-4
    )
    backbone = keras_xlnet.XLNetBackbone.from_preset(str(preset))
    diff = max_diff_on_real_tokens(
        backbone(inputs), expected["sequence_output"], inputs["padding_mask"]
    )
    assert diff <= 1e-5


@pytest.mark.parametrize(
    "folder_name, layout, has_mask_embedding",
    [
        ("tf1_original", "tf1", True),
        ("tf2_keras_xlnet_tfm230", "tf2_keras_xlnet_tfm230", True),
        ("tf2_xlnetbase_tfm240", "tf2_xlnetbase_tfm240", False),
    ],
)
def test_layout_detection_and_report(folder_name, layout, has_mask_embedding):
    folder, _, _ = reference_fixture(folder_name)
    if has_mask_embedding:
        loaded = keras_xlnet.load_checkpoint(folder)
        assert loaded.zero_filled == []
    else:
        # tf-models-official >= 2.4 classifiers do not save `mask_emb`.
        with pytest.warns(UserWarning, match="mask_embedding"):
            loaded = keras_xlnet.load_checkpoint(folder)
        assert loaded.zero_filled == ["query_stream_embedding/mask_embedding"]
    assert loaded.layout == layout
    assert loaded.classifier.num_classes == 2
    ignored = [] if layout == "tf1" else ["_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert loaded.ignored == ignored


def test_memory_and_uni_attention_fixture():
    folder = shared_path("fixtures", "cyberzhg_tf1", "test_checkpoint_tune")
    backbone = keras_xlnet.load_checkpoint(
        folder, attention_type="uni", memory_length=5
    ).backbone
    token_ids = np.load(folder / "input_ids.npy")
    memory = [np.load(folder / f"mems_{i}.npy") for i in range(2)]
    outputs = backbone.encode(
        token_ids,
        np.ones_like(token_ids),
        np.load(folder / "seg_ids.npy"),
        memory=memory,
    )
    np.testing.assert_allclose(
        numpy(outputs["sequence_output"]),
        np.load(folder / "tune_output.npy"),
        atol=1e-5,
    )
    for i, new_memory in enumerate(outputs["new_memory"]):
        np.testing.assert_allclose(
            numpy(new_memory),
            np.load(folder / f"tune_new_mems_{i}.npy"),
            atol=1e-5,
        )


def test_tied_biases_checkpoint_loads_for_every_layer():
    # untie_r=false: r_{w,r,s}_bias are [N, H], shared by all layers.
    folder = shared_path("fixtures", "cyberzhg_tf1", "test_checkpoint_empty")
    loaded = keras_xlnet.load_checkpoint(folder)
    biases = [
        numpy(block.attention.content_bias)
        for block in loaded.backbone.encoder_blocks
    ]
    np.testing.assert_array_equal(biases[0], biases[1])


def run_convert_tool(*args):
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "convert_checkpoint.py")]
        + [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_command_line_tool(tmp_path):
    jax_only()
    folder, _, _ = reference_fixture("tf1_original")
    result = run_convert_tool(folder, tmp_path / "preset")
    assert result.returncode == 0, result.stderr
    assert "tf1, backbone + classifier" in result.stdout
    assert (tmp_path / "preset" / "task.weights.h5").exists()
    # A second conversion into the same folder is refused.
    result = run_convert_tool(folder, tmp_path / "preset")
    assert result.returncode == 1
    assert "exists" in result.stderr

"""Bad checkpoints fail loudly, naming the tensor and the problem."""

import json
import shutil
import sys

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT
from conftest import reference_fixture

import keras_xlnet
from keras_xlnet.checkpoints.readers import TFCheckpointReader

sys.path.insert(0, str(REPO_ROOT / "tools"))


def write_tf1_checkpoint(folder, tensors, config):
    """Writes a name-based TF checkpoint (the release layout) and config."""
    import tensorflow as tf

    folder.mkdir()
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(folder / "xlnet_model.ckpt"),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[name]) for name in names],
    )
    (folder / "xlnet_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def reference_tensors():
    folder, _, _ = reference_fixture("tf1_original")
    reader = TFCheckpointReader(str(folder / "xlnet_model.ckpt"))
    tensors = {key: reader.read(key) for key in reader.keys()}
    config = json.loads((folder / "xlnet_config.json").read_text())
    return tensors, config


def test_rewritten_reference_still_loads(tmp_path, reference_tensors):
    tensors, config = reference_tensors
    folder = write_tf1_checkpoint(tmp_path / "ok", tensors, config)
    assert keras_xlnet.load_checkpoint(folder).classifier is not None


def test_missing_tensor(tmp_path, reference_tensors):
    tensors, config = reference_tensors
    del tensors["model/transformer/layer_1/rel_attn/q/kernel"]
    folder = write_tf1_checkpoint(tmp_path / "missing", tensors, config)
    with pytest.raises(keras_xlnet.CheckpointError, match="layer_1/rel_attn/q"):
        keras_xlnet.load_checkpoint(folder)


def test_unknown_tensor(tmp_path, reference_tensors):
    tensors, config = reference_tensors
    tensors["model/transformer/layer_0/rel_attn/extra"] = np.zeros(3, "f")
    folder = write_tf1_checkpoint(tmp_path / "extra", tensors, config)
    with pytest.raises(keras_xlnet.CheckpointError, match="rel_attn/extra"):
        keras_xlnet.load_checkpoint(folder)


def test_wrong_shape(tmp_path, reference_tensors):
    tensors, config = reference_tensors
    key = "model/transformer/layer_0/ff/layer_1/bias"
    tensors[key] = np.zeros(31, "float32")
    folder = write_tf1_checkpoint(tmp_path / "shape", tensors, config)
    with pytest.raises(
        keras_xlnet.CheckpointError, match=r"ff/layer_1/bias.*\(31,\)"
    ):
        keras_xlnet.load_checkpoint(folder)


def test_config_disagrees_with_weights(tmp_path, reference_tensors):
    tensors, config = reference_tensors
    folder = write_tf1_checkpoint(
        tmp_path / "config", tensors, {**config, "d_inner": 48}
    )
    with pytest.raises(keras_xlnet.CheckpointError, match="config disagrees"):
        keras_xlnet.load_checkpoint(folder)


def test_config_with_fewer_layers(tmp_path, reference_tensors):
    tensors, config = reference_tensors
    folder = write_tf1_checkpoint(
        tmp_path / "layers", tensors, {**config, "n_layer": 1}
    )
    with pytest.raises(keras_xlnet.CheckpointError, match="layer_1"):
        keras_xlnet.load_checkpoint(folder)


def test_truncated_data_file(tmp_path):
    source, _, _ = reference_fixture("tf1_original")
    folder = tmp_path / "truncated"
    shutil.copytree(source, folder)
    data = folder / "xlnet_model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(
        keras_xlnet.CheckpointError, match="truncated or corrupt"
    ):
        keras_xlnet.load_checkpoint(folder)


def test_missing_config(tmp_path):
    source, _, _ = reference_fixture("tf1_original")
    folder = tmp_path / "no_config"
    shutil.copytree(source, folder)
    (folder / "xlnet_config.json").unlink()
    with pytest.raises(keras_xlnet.CheckpointError, match="xlnet_config.json"):
        keras_xlnet.load_checkpoint(folder)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(keras_xlnet.CheckpointError, match="neither"):
        keras_xlnet.load_checkpoint(tmp_path / "nothing")


def test_unknown_activation(tmp_path, reference_tensors):
    tensors, config = reference_tensors
    folder = write_tf1_checkpoint(
        tmp_path / "act", tensors, {**config, "ff_activation": "swish"}
    )
    with pytest.raises(ValueError, match="swish"):
        keras_xlnet.load_checkpoint(folder)


def test_release_zip(tmp_path):
    source, inputs, expected = reference_fixture("tf1_original")
    archive = shutil.make_archive(
        str(tmp_path / "xlnet_cased_tiny"), "zip", source.parent, source.name
    )
    classifier = keras_xlnet.load_checkpoint(archive).classifier
    np.testing.assert_allclose(
        classifier.predict(inputs, verbose=0), expected["logits"], atol=1e-4
    )


def test_pytorch_bin_is_read_with_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.XLNetConfig(
        vocab_size=40, d_model=16, n_layer=1, n_head=2, d_inner=32
    )
    torch.manual_seed(0)
    model = transformers.XLNetModel(config).eval()
    model.save_pretrained(tmp_path / "hf", safe_serialization=False)
    assert (tmp_path / "hf" / "pytorch_model.bin").exists()
    backbone = keras_xlnet.load_checkpoint(tmp_path / "hf").backbone
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(backbone.token_embedding.embeddings),
        model.word_embedding.weight.detach().numpy(),
    )
    # A pickle holding more than tensors is refused, not executed.
    torch.save({"payload": object()}, tmp_path / "hf" / "pytorch_model.bin")
    with pytest.raises(keras_xlnet.CheckpointError, match="weights_only"):
        keras_xlnet.load_checkpoint(tmp_path / "hf")


def test_flipped_bit_fails_the_tensor_checksum(tmp_path):
    source, _, _ = reference_fixture("tf1_original")
    folder = tmp_path / "flipped"
    shutil.copytree(source, folder)
    data = folder / "xlnet_model.ckpt.data-00000-of-00001"
    content = bytearray(data.read_bytes())
    content[1000] ^= 0x01
    data.write_bytes(bytes(content))
    with pytest.raises(keras_xlnet.CheckpointError, match="Checksum"):
        keras_xlnet.load_checkpoint(folder)


def run_convert_tool(argv, capsys):
    """`tools/convert_checkpoint.py argv`: `(exit code, stderr)`."""
    import convert_checkpoint as convert_tool

    code = convert_tool.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_convert_tool_reports_bad_inputs_in_one_line(
    tmp_path, reference_tensors, capsys
):
    tensors, config = reference_tensors
    good = write_tf1_checkpoint(tmp_path / "good", tensors, config)
    (tmp_path / "broken.json").write_text('{"n_layer": 2,')
    (tmp_path / "not_spm.model").write_bytes(b"not a sentencepiece model")
    unknown = write_tf1_checkpoint(
        tmp_path / "unknown", {"some/other/model": np.zeros(2, "f")}, config
    )
    cases = {
        "unreadable --config": (
            [good, tmp_path / "o1", "--config", tmp_path / "broken.json"],
            "broken.json as JSON",
        ),
        "config lacking a field": (
            [good, tmp_path / "o2", "--config", tmp_path / "not_spm.model"],
            "not_spm.model as JSON",
        ),
        "--vocabulary not SentencePiece": (
            [good, tmp_path / "o3", "--vocabulary", tmp_path / "not_spm.model"],
            "not_spm.model is not a SentencePiece model",
        ),
        "unknown layout": ([unknown, tmp_path / "o4"], "some/other/model"),
        "missing source": ([tmp_path / "nothing", tmp_path / "o5"], "nothing"),
        "output folder under a file": (
            [good, tmp_path / "broken.json" / "o6"],
            "o6' cannot be created",
        ),
    }
    for case, (argv, expected) in cases.items():
        code, err = run_convert_tool(argv, capsys)
        assert code == 1, case
        assert err.startswith("error: ") and expected in err, (case, err)
        assert "Traceback" not in err and len(err.splitlines()) == 1, case
    assert not list(tmp_path.glob("o*"))

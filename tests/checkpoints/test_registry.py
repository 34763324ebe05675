"""Built-in presets: the real download path against a local HTTP server."""

import http.server
import io
import json
import pathlib
import shutil
import socket
import threading
import time
import zipfile

import keras
import keras_hub
import numpy as np
import pytest
from conftest import HuggingFacePeer
from conftest import numpy
from conftest import real_vocabulary
from conftest import reference_fixture

import keras_xlnet
from keras_xlnet.checkpoints import registry


class ReleaseServer(http.server.ThreadingHTTPServer):
    """Serves files from memory on 127.0.0.1, with HTTP range requests.

    `cut_after` stops one transfer after that many bytes (the connection
    drops, as on a flaky network); `requests` records every request's path
    and Range header.
    """

    def __init__(self, files):
        self.files = files
        self.requests = []
        self.cut_after = None
        super().__init__(("127.0.0.1", 0), _RangeHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, name):
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        name = self.path.lstrip("/")
        server.requests.append((name, self.headers.get("Range")))
        if name not in server.files:
            self.send_error(404)
            return
        body = server.files[name]
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header(
                "Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}"
            )
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if server.cut_after is not None:
            payload = payload[: server.cut_after]
            server.cut_after = None
        self.wfile.write(payload)


def release_zip():
    """A release-style zip: the tf1 fixture plus the real vocabulary."""
    folder, _, _ = reference_fixture("tf1_original")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in folder.iterdir():
            if path.name.startswith("xlnet_"):
                archive.write(path, f"xlnet_cased_tiny/{path.name}")
        archive.write(real_vocabulary(), "xlnet_cased_tiny/spiece.model")
    return buffer.getvalue()


@pytest.fixture
def test_preset(monkeypatch, tmp_path):
    """Registers preset `tiny_test` pointing at a local server."""
    server = ReleaseServer({"tiny.zip": release_zip()})
    entry = {
        "name": "tiny_test",
        "description": "test",
        "parameter_count": 0,
        "sources": [{"kind": "release_zip", "url": server.url("tiny.zip")}],
    }
    monkeypatch.setattr(registry, "load_registry", lambda: {"tiny_test": entry})
    monkeypatch.setenv("KERAS_XLNET_CACHE", str(tmp_path / "cache"))
    yield server
    server.shutdown()


def test_download_convert_cache_and_reuse(test_preset, capsys):
    _, inputs, expected = reference_fixture("tf1_original")
    with pytest.warns(UserWarning, match="32000 pieces"):
        classifier = keras_xlnet.XLNetClassifier.from_preset("tiny_test")
    assert "tiny.zip" in capsys.readouterr().err  # The progress bar.
    np.testing.assert_allclose(
        numpy(classifier(inputs)), expected["logits"], atol=1e-4
    )
    assert test_preset.requests == [("tiny.zip", None)]
    # The vocabulary travelled into the preset: raw strings work.
    assert classifier.preprocessor.tokenizer.vocabulary_size() == 32000

    again = keras_xlnet.XLNetBackbone.from_preset("tiny_test")
    tokenizer = keras_xlnet.XLNetTokenizer.from_preset("tiny_test")
    preprocessor = keras_xlnet.XLNetPreprocessor.from_preset("tiny_test")
    assert test_preset.requests == [("tiny.zip", None)]  # No new request.
    assert again.vocabulary_size == 64
    assert list(map(int, tokenizer("Hello, my dog is cute"))) == [
        17,
        11368,
        19,
        94,
        2288,
        27,
        10920,
    ]  # Known ids of the real vocabulary (shared/data/PROVENANCE.md).
    assert isinstance(preprocessor, keras_xlnet.XLNetPreprocessor)


def test_interrupted_download_resumes_where_it_stopped(test_preset):
    size = len(test_preset.files["tiny.zip"])
    test_preset.cut_after = size // 2
    with pytest.raises(keras_xlnet.PresetUnavailableError, match="resume"):
        keras_xlnet.XLNetBackbone.from_preset("tiny_test")
    cache = pathlib.Path(registry.cache_dir())
    assert not (cache / "presets" / "tiny_test").exists()
    (partial,) = cache.rglob("*.part")
    assert partial.stat().st_size == size // 2
    with pytest.warns(UserWarning):
        keras_xlnet.XLNetBackbone.from_preset("tiny_test")
    assert test_preset.requests == [
        ("tiny.zip", None),
        ("tiny.zip", f"bytes={size // 2}-"),
    ]


def test_corrupted_byte_is_detected_and_nothing_is_cached(test_preset):
    data = bytearray(test_preset.files["tiny.zip"])
    data[200] ^= 0xFF  # Inside the first compressed member.
    test_preset.files["tiny.zip"] = bytes(data)
    with pytest.raises(keras_xlnet.PresetUnavailableError, match="CRC"):
        keras_xlnet.XLNetClassifier.from_preset("tiny_test")
    cache = pathlib.Path(registry.cache_dir())
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_offline_without_cache_fails_fast_and_names_the_urls(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("KERAS_XLNET_CACHE", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    start = time.monotonic()
    with pytest.raises(keras_xlnet.PresetUnavailableError) as error:
        keras_xlnet.XLNetClassifier.from_preset(
            "xlnet_large_cased", num_classes=2
        )
    assert time.monotonic() - start < 10
    message = str(error.value)
    for url in (
        "storage.googleapis.com/xlnet/released_models/cased_L-24_H-1024_A-16",
        "cloud-tpu-checkpoints/xlnet/keras_xlnet/xlnet_model.ckpt",
        "huggingface.co/xlnet/xlnet-large-cased",
        "tools/convert_checkpoint.py",
    ):
        assert url in message
    assert len(message.splitlines()) < 10  # A message, not a traceback wall.


@pytest.mark.parametrize("name", ["xlnet_base_cased", "xlnet_large_cased"])
def test_registry_parameter_counts_match_built_models(name):
    from keras_xlnet.checkpoints import configs

    entry = registry.load_registry()[name]
    backbone = keras_xlnet.XLNetBackbone(
        **configs.from_xlnet_config(entry["xlnet_config"])
    )
    assert backbone.count_params() == entry["parameter_count"]
    assert name in keras_xlnet.XLNetBackbone.presets
    assert name in keras_hub.models.Backbone.presets


def huggingface_cache(root, repo, source_folder):
    """Lays out `source_folder` as `huggingface_hub`'s cache of `repo`."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    base = root / f"models--{repo.replace('/', '--')}"
    snapshot = base / "snapshots" / revision
    shutil.copytree(source_folder, snapshot)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(revision)
    return root


def test_huggingface_uri_offline_from_the_hub_cache(
    monkeypatch, tmp_path, tiny_vocabulary
):
    import huggingface_hub

    vocabulary_size = keras_xlnet.XLNetTokenizer(
        proto=tiny_vocabulary
    ).vocabulary_size()
    peer = HuggingFacePeer(
        tmp_path / "hf", task="classifier", vocab_size=vocabulary_size
    )
    shutil.copy(tiny_vocabulary, peer.folder / "spiece.model")
    hub_cache = huggingface_cache(
        tmp_path / "hub", "someone/tiny-xlnet", peer.folder
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(
        huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache)
    )
    monkeypatch.setenv("KERAS_XLNET_CACHE", str(tmp_path / "cache"))

    classifier = keras_xlnet.XLNetClassifier.from_preset(
        "hf://someone/tiny-xlnet"
    )
    texts = ["the film was great", "a dull story"]
    packed = classifier.preprocessor(texts)
    expected = peer(
        {
            k: keras.ops.convert_to_numpy(v).astype("int64")
            for k, v in packed.items()
        }
    ).logits.numpy()
    np.testing.assert_allclose(
        classifier.predict(texts, verbose=0), expected, atol=1e-5
    )


def test_keras_hub_base_classes_return_our_classes(
    tmp_path, tiny_text_classifier
):
    classifier = tiny_text_classifier
    backbone = classifier.backbone
    classifier.save_to_preset(tmp_path / "preset")
    preset = str(tmp_path / "preset")

    loaded_backbone = keras_hub.models.Backbone.from_preset(preset)
    assert isinstance(loaded_backbone, keras_xlnet.XLNetBackbone)
    fresh = keras_hub.models.TextClassifier.from_preset(preset, num_classes=2)
    assert isinstance(fresh, keras_xlnet.XLNetClassifier)
    same = keras_hub.models.TextClassifier.from_preset(preset)
    np.testing.assert_allclose(
        same.predict(["great film"], verbose=0),
        classifier.predict(["great film"], verbose=0),
        atol=1e-6,
    )
    np.testing.assert_array_equal(
        numpy(loaded_backbone.token_embedding.embeddings),
        numpy(backbone.token_embedding.embeddings),
    )


def test_upload_preset_round_trip(monkeypatch, tmp_path, tiny_text_classifier):
    import huggingface_hub

    classifier = tiny_text_classifier
    classifier.save_to_preset(tmp_path / "preset")
    hub = tmp_path / "hub"

    def upload_folder(repo_id, folder_path, **kwargs):
        shutil.copytree(folder_path, hub / repo_id)

    def create_repo(repo_id, **kwargs):
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    monkeypatch.setattr(huggingface_hub, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub, "file_exists", lambda **k: False)
    monkeypatch.setattr(huggingface_hub, "upload_folder", upload_folder)
    keras_hub.upload_preset("hf://someone/xlnet-test", str(tmp_path / "preset"))
    # What was uploaded is a preset that loads (with its model card).
    assert (hub / "someone" / "xlnet-test" / "README.md").exists()
    restored = keras_xlnet.XLNetClassifier.from_preset(
        str(hub / "someone" / "xlnet-test")
    )
    np.testing.assert_allclose(
        restored.predict(["great film"], verbose=0),
        classifier.predict(["great film"], verbose=0),
        atol=1e-6,
    )


def test_tf_checkpoint_source_with_vocabulary(monkeypatch, tmp_path):
    folder, inputs, expected = reference_fixture("tf2_keras_xlnet_tfm230")
    files = {
        f"ckpt/xlnet_model.ckpt{suffix}": (
            folder / f"xlnet_model.ckpt{suffix}"
        ).read_bytes()
        for suffix in (".index", ".data-00000-of-00001")
    }
    files["spiece.model"] = open(real_vocabulary(), "rb").read()
    server = ReleaseServer(files)
    entry = {
        "name": "tiny_tf2",
        "description": "test",
        "parameter_count": 0,
        "xlnet_config": json.loads((folder / "xlnet_config.json").read_text()),
        "sources": [
            {"kind": "release_zip", "url": server.url("missing.zip")},
            {
                "kind": "tf_checkpoint",
                "url": server.url("ckpt/xlnet_model.ckpt"),
                "shards": 1,
                "vocabulary_url": server.url("spiece.model"),
            },
        ],
    }
    monkeypatch.setattr(registry, "load_registry", lambda: {"tiny_tf2": entry})
    monkeypatch.setenv("KERAS_XLNET_CACHE", str(tmp_path / "cache"))
    try:
        with pytest.warns(UserWarning, match="32000 pieces"):
            classifier = keras_xlnet.XLNetClassifier.from_preset("tiny_tf2")
    finally:
        server.shutdown()
    np.testing.assert_allclose(
        numpy(classifier(inputs)), expected["logits"], atol=1e-4
    )
    assert server.requests[0] == ("missing.zip", None)  # 404, then next.

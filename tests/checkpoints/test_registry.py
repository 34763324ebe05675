"""Built-in presets: the real download path against a local HTTP server."""

import io
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import zipfile

import keras
import keras_hub
import numpy as np
import pytest
from conftest import HuggingFacePeer
from conftest import ReleaseServer
from conftest import numpy
from conftest import real_vocabulary
from conftest import reference_fixture

import keras_xlnet
from keras_xlnet import presets
from keras_xlnet.checkpoints import registry

# shared/data/PROVENANCE.md: the released cased SentencePiece model and
# known ids of it.
VOCABULARY_SHA256 = (
    "1f8c1c0bc2854d1af911a8550288c1258af5ba50277f3a5c829b98eb86fc5646"
)
HELLO_IDS = [17, 11368, 19, 94, 2288, 27, 10920]  # "Hello, my dog is cute"


def release_zip(padding_bytes=0):
    """A release-style zip: the tf1 fixture plus the real vocabulary, and
    optionally an incompressible member standing for large weights."""
    folder, _, _ = reference_fixture("tf1_original")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in folder.iterdir():
            if path.name.startswith("xlnet_"):
                archive.write(path, f"xlnet_cased_tiny/{path.name}")
        archive.write(real_vocabulary(), "xlnet_cased_tiny/spiece.model")
        if padding_bytes:
            archive.writestr(
                "xlnet_cased_tiny/weights.bin", os.urandom(padding_bytes)
            )
    return buffer.getvalue()


def registry_entry(name, sources, **overrides):
    """A registry entry for the tiny Model Garden fixture's architecture."""
    folder, _, _ = reference_fixture("tf1_original")
    entry = {
        "name": name,
        "description": "test",
        # Embedding 64 x 16, mask_emb 16, and per layer: q/k/v/r/o 5 x 16 x
        # 2 x 8, three bias vectors 3 x 2 x 8, seg_embed 2 x 2 x 8, two layer
        # norms 2 x 32, FFN 16 x 32 + 32 + 32 x 16 + 16.
        "parameter_count": 64 * 16 + 16 + 2 * (1280 + 48 + 32 + 64 + 1072),
        "xlnet_config": json.loads((folder / "xlnet_config.json").read_text()),
        "vocabulary_sha256": VOCABULARY_SHA256,
        "sources": sources,
    }
    entry.update(overrides)
    return entry


def use_registry(monkeypatch, tmp_path, *entries):
    """Replaces the registry by `entries`, with an empty cache."""
    registry_entries = {entry["name"]: entry for entry in entries}
    monkeypatch.setattr(presets, "load_registry", lambda: registry_entries)
    monkeypatch.setenv("KERAS_XLNET_CACHE", str(tmp_path / "cache"))


def offline(monkeypatch):
    """Every connection attempt fails as without network."""

    def no_network(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)


@pytest.fixture
def test_preset(monkeypatch, tmp_path):
    """Registers preset `tiny_test` pointing at a local server."""
    server = ReleaseServer({"tiny.zip": release_zip()})
    source = {"kind": "release_zip", "url": server.url("tiny.zip")}
    use_registry(monkeypatch, tmp_path, registry_entry("tiny_test", [source]))
    yield server
    server.shutdown()


def test_download_convert_cache_and_reuse(test_preset, capsys):
    _, inputs, expected = reference_fixture("tf1_original")
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
    assert list(map(int, tokenizer("Hello, my dog is cute"))) == HELLO_IDS
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
    offline(monkeypatch)
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


@pytest.mark.parametrize(
    "name, load, parameters",
    [
        ("xlnet_base_cased", keras_hub.models.Backbone, 116_718_336),
        ("xlnet_large_cased", keras_xlnet.XLNetBackbone, 360_268_800),
    ],
)
def test_load_weights_false_needs_only_the_registry(
    monkeypatch, tmp_path, name, load, parameters, zero_initializers
):
    """The published parameter counts of XLNet-Base and -Large, offline,
    with an empty cache; nothing is written."""
    offline(monkeypatch)
    monkeypatch.setenv("KERAS_XLNET_CACHE", str(tmp_path / "cache"))
    backbone = load.from_preset(name, load_weights=False)
    assert isinstance(backbone, keras_xlnet.XLNetBackbone)
    assert backbone.count_params() == parameters
    assert presets.load_registry()[name]["parameter_count"] == parameters
    assert not (tmp_path / "cache").exists()
    assert name in keras_xlnet.XLNetBackbone.presets
    assert name in keras_hub.models.Backbone.presets


def test_tokenizer_preset_transfers_only_the_vocabulary(monkeypatch, tmp_path):
    archive = release_zip(padding_bytes=4 << 20)
    server = ReleaseServer({"tiny.zip": archive})
    source = {"kind": "release_zip", "url": server.url("tiny.zip")}
    use_registry(monkeypatch, tmp_path, registry_entry("tiny_test", [source]))
    try:
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset("tiny_test")
        requests = list(server.requests)
        preprocessor = keras_xlnet.XLNetPreprocessor.from_preset("tiny_test")
    finally:
        server.shutdown()
    assert isinstance(tokenizer, keras_xlnet.XLNetTokenizer)
    assert list(map(int, tokenizer("Hello, my dog is cute"))) == HELLO_IDS
    assert preprocessor.tokenizer.vocabulary_size() == 32000
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        member = zipped.getinfo("xlnet_cased_tiny/spiece.model")
        directory = sum(
            46 + len(info.filename) + len(info.extra)
            for info in zipped.infolist()
        )
    # The end record (22 bytes), the directory, the member's local header
    # and its compressed bytes: nothing of the weights.
    member_bytes = (
        30 + len(member.filename) + len(member.extra) + member.compress_size
    )
    assert server.bytes_sent <= 22 + 20 + directory + member_bytes
    assert server.bytes_sent < len(archive) / 4
    assert all(r[1] is not None for r in requests)  # Ranges only.
    assert server.requests == requests  # The vocabulary is cached.
    assert not (tmp_path / "cache" / "presets" / "tiny_test").exists()


def test_vocabulary_from_the_whole_zip_when_ranges_are_ignored(test_preset):
    test_preset.ignore_ranges = True
    tokenizer = keras_xlnet.XLNetTokenizer.from_preset("tiny_test")
    assert list(map(int, tokenizer("Hello, my dog is cute"))) == HELLO_IDS
    # The whole zip was fetched once and stays for the weights.
    requests_for_vocabulary = len(test_preset.requests)
    keras_xlnet.XLNetBackbone.from_preset("tiny_test")
    assert len(test_preset.requests) == requests_for_vocabulary


def test_vocabulary_with_another_checksum_is_refused(monkeypatch, tmp_path):
    server = ReleaseServer({"tiny.zip": release_zip()})
    source = {"kind": "release_zip", "url": server.url("tiny.zip")}
    entry = registry_entry("tiny_test", [source], vocabulary_sha256="0" * 64)
    use_registry(monkeypatch, tmp_path, entry)
    try:
        with pytest.raises(
            keras_xlnet.PresetUnavailableError, match="sha256 differs"
        ):
            keras_xlnet.XLNetTokenizer.from_preset("tiny_test")
    finally:
        server.shutdown()
    assert not list((tmp_path / "cache" / "vocabularies").rglob("*.model"))


def test_wrong_architecture_is_refused_and_nothing_cached(
    monkeypatch, tmp_path
):
    server = ReleaseServer({"tiny.zip": release_zip()})
    source = {"kind": "release_zip", "url": server.url("tiny.zip")}
    entry = registry_entry("tiny_test", [source])
    entry["xlnet_config"] = {**entry["xlnet_config"], "n_layer": 3}
    entry["parameter_count"] += 2496
    use_registry(monkeypatch, tmp_path, entry)
    try:
        with pytest.raises(keras_xlnet.PresetUnavailableError) as error:
            keras_xlnet.XLNetBackbone.from_preset("tiny_test")
    finally:
        server.shutdown()
    assert "num_layers=2 (registry: 3)" in str(error.value)
    assert "6,032 parameters (registry: 8,528)" in str(error.value)
    cache = tmp_path / "cache"
    assert not [p for p in cache.rglob("*") if p.is_file()]
    assert not (cache / "presets" / "tiny_test").exists()


def test_keras_hub_base_classes_load_registry_names_before_caching(
    test_preset,
):
    """`keras_hub.models.*.from_preset(name)` converts on first use, into
    the cache named by `KERAS_XLNET_CACHE` when called."""
    _, inputs, expected = reference_fixture("tf1_original")
    classifier = keras_hub.models.TextClassifier.from_preset("tiny_test")
    assert isinstance(classifier, keras_xlnet.XLNetClassifier)
    np.testing.assert_allclose(
        numpy(classifier(inputs)), expected["logits"], atol=1e-4
    )
    assert (
        pathlib.Path(registry.cache_dir()) / "presets" / "tiny_test"
    ).is_dir()
    backbone = keras_hub.models.Backbone.from_preset("tiny_test")
    assert isinstance(backbone, keras_xlnet.XLNetBackbone)
    assert len(test_preset.requests) == 1


@pytest.mark.backend_independent
def test_models_do_not_import_the_converters():
    code = (
        "import sys, keras_xlnet.models; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith('keras_xlnet.checkpoints')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert result.stdout.strip() == "[]"


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
    sources = [
        {"kind": "release_zip", "url": server.url("missing.zip")},
        {
            "kind": "tf_checkpoint",
            "url": server.url("ckpt/xlnet_model.ckpt"),
            "shards": 1,
            "vocabulary_url": server.url("spiece.model"),
        },
    ]
    use_registry(monkeypatch, tmp_path, registry_entry("tiny_tf2", sources))
    try:
        classifier = keras_xlnet.XLNetClassifier.from_preset("tiny_tf2")
    finally:
        server.shutdown()
    np.testing.assert_allclose(
        numpy(classifier(inputs)), expected["logits"], atol=1e-4
    )
    assert server.requests[0] == ("missing.zip", None)  # 404, then next.

"""Built-in presets: fetch, verify, convert and cache them.

A preset of the registry (`presets/*.json`, read by `keras_xlnet.presets`)
is converted once from the official weights into a KerasHub preset folder
under `$KERAS_XLNET_CACHE` (default `~/.cache/keras_xlnet`, read at each
call), after its architecture and exact parameter count have been checked
against the registry. Its vocabulary alone can be fetched without the
weights. `hf://` ids of XLNets in Hugging Face format are converted once too.
"""

import glob
import json
import os
import shutil
import tempfile
import zipfile

from keras_xlnet import presets
from keras_xlnet.checkpoints import configs
from keras_xlnet.checkpoints.convert import convert_checkpoint
from keras_xlnet.checkpoints.downloads import DownloadError
from keras_xlnet.checkpoints.downloads import download
from keras_xlnet.checkpoints.downloads import sha256_of
from keras_xlnet.checkpoints.readers import CheckpointError
from keras_xlnet.checkpoints.remote_zip import RangeRequestsUnsupported
from keras_xlnet.checkpoints.remote_zip import read_remote_member

HUGGINGFACE_URL = "https://huggingface.co/{repo}/resolve/main/{file}"
VOCABULARY_FILE = "spiece.model"
# The backbone arguments that fix the weights' shapes.
ARCHITECTURE = (
    "vocabulary_size",
    "num_layers",
    "num_heads",
    "hidden_dim",
    "intermediate_dim",
    "head_dim",
)


class PresetUnavailableError(RuntimeError):
    """No source of a preset could be fetched and nothing is cached."""


def cache_dir():
    default = os.path.join(os.path.expanduser("~"), ".cache", "keras_xlnet")
    return os.environ.get("KERAS_XLNET_CACHE", default)


def preset_folder(name):
    return os.path.join(cache_dir(), "presets", name)


def is_cached(name):
    """Whether preset `name` has been converted into the cache."""
    return os.path.exists(os.path.join(preset_folder(name), "config.json"))


def _download_folder(name, source):
    """Where one source's files are downloaded (and resumed)."""
    return os.path.join(cache_dir(), "downloads", name, source["kind"])


def _check_vocabulary(path, entry):
    """Raises `CheckpointError` unless `path` has the registry's sha256."""
    expected = entry.get("vocabulary_sha256")
    if expected is not None and sha256_of(path) != expected:
        raise CheckpointError(
            f"The vocabulary {path} is not the one of preset "
            f"{entry['name']!r} (sha256 differs from {expected})."
        )


def _release_zip(name, source):
    return download(
        source["url"],
        os.path.join(
            _download_folder(name, source), os.path.basename(source["url"])
        ),
        source.get("sha256"),
    )


def _check_zip(archive, url):
    """Deletes `archive` and raises if a member fails its CRC check."""
    with zipfile.ZipFile(archive) as zipped:
        corrupt = zipped.testzip()
    if corrupt is not None:
        os.remove(archive)
        raise DownloadError(
            f"{url}: CRC check failed for {corrupt}; the corrupt archive was "
            "deleted."
        )


def _convert_release_zip(source, name, entry, output_dir):
    archive = _release_zip(name, source)
    _check_zip(archive, source["url"])
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(folder)
        configs_found = glob.glob(
            os.path.join(folder, "**", "xlnet_config.json"), recursive=True
        )
        if not configs_found:
            raise CheckpointError(f"{archive} holds no xlnet_config.json.")
        release = os.path.dirname(configs_found[0])
        vocabulary = os.path.join(release, VOCABULARY_FILE)
        _check_vocabulary(vocabulary, entry)
        return _convert(release, output_dir, vocabulary)


def _convert(source, output_dir, vocabulary, config=None):
    """`convert_checkpoint` with the preset's vocabulary, checked against
    the registry's checksum beforehand (which vouches for its size too)."""
    return convert_checkpoint(
        source,
        output_dir,
        vocabulary=vocabulary,
        config=config,
        allow_larger_vocabulary=True,
    )


def _tf_vocabulary(source, name):
    return download(
        source["vocabulary_url"],
        os.path.join(
            _download_folder(name, source),
            os.path.basename(source["vocabulary_url"]),
        ),
    )


def _convert_tf_checkpoint(source, name, entry, output_dir):
    folder = _download_folder(name, source)
    prefix = os.path.join(folder, os.path.basename(source["url"]))
    shards = source.get("shards", 1)
    suffixes = [".index"] + [
        f".data-{i:05d}-of-{shards:05d}" for i in range(shards)
    ]
    for suffix in suffixes:
        download(source["url"] + suffix, prefix + suffix)
    vocabulary = _tf_vocabulary(source, name)
    _check_vocabulary(vocabulary, entry)
    return _convert(prefix, output_dir, vocabulary, entry["xlnet_config"])


def _huggingface_file(source, name, file):
    url = HUGGINGFACE_URL.format(repo=source["repo"], file=file)
    return download(url, os.path.join(_download_folder(name, source), file))


def _convert_huggingface(source, name, entry, output_dir):
    _huggingface_file(source, name, "config.json")
    vocabulary = _huggingface_file(source, name, VOCABULARY_FILE)
    _check_vocabulary(vocabulary, entry)
    errors = []
    for weights in ("model.safetensors", "pytorch_model.bin"):
        try:
            _huggingface_file(source, name, weights)
            break
        except DownloadError as error:
            errors.append(str(error))
    else:
        raise DownloadError("; ".join(errors))
    return _convert(_download_folder(name, source), output_dir, vocabulary)


_CONVERTERS = {
    "release_zip": _convert_release_zip,
    "tf_checkpoint": _convert_tf_checkpoint,
    "huggingface": _convert_huggingface,
}


def check_architecture(entry, backbone):
    """Raises `CheckpointError` unless `backbone` is the registry's model."""
    expected = configs.from_xlnet_config(entry["xlnet_config"])
    mismatches = [
        f"{key}={getattr(backbone, key)} (registry: {expected[key]})"
        for key in ARCHITECTURE
        if expected.get(key) is not None
        and getattr(backbone, key) != expected[key]
    ]
    count = backbone.count_params()
    if count != entry["parameter_count"]:
        mismatches.append(
            f"{count:,} parameters (registry: {entry['parameter_count']:,})"
        )
    if mismatches:
        raise CheckpointError(
            f"The checkpoint is not preset {entry['name']!r}: it has "
            f"{', '.join(mismatches)}."
        )


def _convert_source(source, name, entry):
    """Converts one source and moves the checked preset into the cache."""
    if source["kind"] not in _CONVERTERS:
        raise ValueError(f"unknown source kind {source['kind']!r}")
    output_dir = preset_folder(name)
    os.makedirs(os.path.dirname(output_dir), exist_ok=True)
    with tempfile.TemporaryDirectory(
        prefix=".converting-", dir=os.path.dirname(output_dir)
    ) as staging:
        converted = os.path.join(staging, name)
        loaded = _CONVERTERS[source["kind"]](source, name, entry, converted)
        check_architecture(entry, loaded.backbone)
        os.replace(converted, output_dir)
    return output_dir


def _unavailable(name, what, failures, hint):
    tried = "\n".join(f"  {failure}" for failure in failures)
    return PresetUnavailableError(
        f"Could not fetch {what} of preset {name!r}; tried:\n{tried}\n{hint}"
    )


def resolve_registry_preset(name):
    """The cached preset folder of registry preset `name`, converted on
    first use from the first source that can be fetched."""
    if is_cached(name):
        return preset_folder(name)
    entry = presets.load_registry()[name]
    failures = []
    for source in entry["sources"]:
        try:
            return _convert_source(source, name, entry)
        except DownloadError as error:
            # Partial files stay to be resumed.
            failures.append(str(error))
        except CheckpointError as error:
            # Downloaded, but corrupt or not what was expected: drop it.
            shutil.rmtree(_download_folder(name, source), ignore_errors=True)
            failures.append(str(error))
    raise _unavailable(
        name,
        "the weights",
        failures,
        "Without network access, convert local files instead, e.g. "
        "`python tools/convert_checkpoint.py xlnet_cased_L-24_H-1024_A-16 "
        "./my_preset --vocabulary xlnet_cased_L-24_H-1024_A-16/spiece.model`"
        " and call `from_preset('./my_preset')`, or put a converted preset "
        f"in {preset_folder(name)}.",
    )


def _zip_vocabulary(source, name, destination):
    """The vocabulary member of a release zip, by range requests when the
    server allows them, else from the whole (cached) zip."""
    try:
        data = read_remote_member(source["url"], "/" + VOCABULARY_FILE)
    except RangeRequestsUnsupported:
        archive = _release_zip(name, source)
        _check_zip(archive, source["url"])
        with zipfile.ZipFile(archive) as zipped:
            members = [
                member
                for member in zipped.namelist()
                if member.endswith("/" + VOCABULARY_FILE)
            ]
            if not members:
                raise CheckpointError(f"{archive} holds no {VOCABULARY_FILE}.")
            data = zipped.read(members[0])
    with open(destination, "wb") as file:
        file.write(data)
    return destination


def _fetch_vocabulary_from(source, name, destination):
    kind = source["kind"]
    if kind == "tf_checkpoint":
        shutil.copy(_tf_vocabulary(source, name), destination)
    elif kind == "release_zip":
        _zip_vocabulary(source, name, destination)
    elif kind == "huggingface":
        shutil.copy(
            _huggingface_file(source, name, VOCABULARY_FILE), destination
        )
    else:
        raise ValueError(f"unknown source kind {kind!r}")


# Separately published vocabularies first, then the release zip's member.
_VOCABULARY_PREFERENCE = {
    "tf_checkpoint": 0,
    "release_zip": 1,
    "huggingface": 2,
}


def fetch_vocabulary(name):
    """The SentencePiece model of registry preset `name`, without weights.

    Fetched once (a separately published file, else only the release
    zip's member), checked against the registry's sha256 and kept under the
    cache.
    """
    folder = os.path.join(cache_dir(), "vocabularies", name)
    path = os.path.join(folder, VOCABULARY_FILE)
    if os.path.exists(path):
        return path
    os.makedirs(folder, exist_ok=True)
    entry = presets.load_registry()[name]
    failures = []
    sources = sorted(
        entry["sources"], key=lambda s: _VOCABULARY_PREFERENCE[s["kind"]]
    )
    for source in sources:
        partial = os.path.join(folder, f".{source['kind']}.partial")
        try:
            _fetch_vocabulary_from(source, name, partial)
            _check_vocabulary(partial, entry)
            os.replace(partial, path)
            return path
        except (DownloadError, CheckpointError) as error:
            failures.append(str(error))
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    raise _unavailable(
        name,
        "the vocabulary",
        failures,
        "Without network access, build the tokenizer from a local file: "
        "`XLNetTokenizer(proto='spiece.model')`.",
    )


def resolve_huggingface(uri):
    """Converts an `hf://owner/repo` XLNet in Hugging Face format once.

    Files come through `huggingface_hub` (its cache, `HF_HUB_OFFLINE`,
    tokens). Returns the converted preset folder.
    """
    import huggingface_hub

    repo = uri.removeprefix("hf://")
    config_path = huggingface_hub.hf_hub_download(repo, "config.json")
    with open(config_path, encoding="utf-8") as file:
        configs.from_huggingface_config(json.load(file), f"{uri} config.json")
    snapshot = os.path.dirname(config_path)
    output_dir = os.path.join(
        cache_dir(),
        "huggingface",
        repo.replace("/", "--"),
        os.path.basename(snapshot),  # The revision.
    )
    if os.path.exists(os.path.join(output_dir, "config.json")):
        return output_dir
    for weights in ("model.safetensors", "pytorch_model.bin"):
        try:
            huggingface_hub.hf_hub_download(repo, weights)
            break
        except huggingface_hub.errors.EntryNotFoundError:
            continue
    try:
        vocabulary = huggingface_hub.hf_hub_download(repo, VOCABULARY_FILE)
    except huggingface_hub.errors.EntryNotFoundError:
        vocabulary = None
    os.makedirs(os.path.dirname(output_dir), exist_ok=True)
    convert_checkpoint(snapshot, output_dir, vocabulary=vocabulary)
    return output_dir

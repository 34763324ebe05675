"""Built-in presets: find, download, verify, convert and cache them.

`resolve(preset)` turns a preset name of the registry (`presets/*.json`) or
an `hf://` id of a Hugging Face XLNet into a local KerasHub preset folder,
converting the official weights once into the cache
(`$KERAS_XLNET_CACHE`, default `~/.cache/keras_xlnet`). Anything else (a
local folder, `kaggle://...`, a KerasHub preset on the Hub) is returned as
is for KerasHub to load.
"""

import functools
import glob
import importlib.resources
import json
import os
import shutil
import tempfile
import zipfile

from keras_xlnet.checkpoints import configs
from keras_xlnet.checkpoints.convert import convert_checkpoint
from keras_xlnet.checkpoints.downloads import DownloadError
from keras_xlnet.checkpoints.downloads import download
from keras_xlnet.checkpoints.readers import CheckpointError

HUGGINGFACE_URL = "https://huggingface.co/{repo}/resolve/main/{file}"


class PresetUnavailableError(RuntimeError):
    """No source of a preset could be fetched and nothing is cached."""


def cache_dir():
    default = os.path.join(os.path.expanduser("~"), ".cache", "keras_xlnet")
    return os.environ.get("KERAS_XLNET_CACHE", default)


@functools.cache
def load_registry():
    """The registry entries, by preset name (read once)."""
    files = importlib.resources.files("keras_xlnet.presets")
    entries = {}
    for resource in files.iterdir():
        if resource.name.endswith(".json"):
            entry = json.loads(resource.read_text(encoding="utf-8"))
            entries[entry["name"]] = entry
    return entries


def preset_folder(name):
    return os.path.join(cache_dir(), "presets", name)


def _download_folder(name, source):
    """Where one source's files are downloaded (and resumed)."""
    return os.path.join(cache_dir(), "downloads", name, source["kind"])


def _convert_release_zip(source, name, output_dir):
    archive = download(
        source["url"],
        os.path.join(
            _download_folder(name, source), os.path.basename(source["url"])
        ),
        source.get("sha256"),
    )
    with zipfile.ZipFile(archive) as zipped:
        corrupt = zipped.testzip()
        if corrupt is not None:
            os.remove(archive)
            raise DownloadError(
                f"{source['url']}: CRC check failed for {corrupt}; the "
                "corrupt archive was deleted."
            )
        with tempfile.TemporaryDirectory() as folder:
            zipped.extractall(folder)
            configs_found = glob.glob(
                os.path.join(folder, "**", "xlnet_config.json"), recursive=True
            )
            if not configs_found:
                raise CheckpointError(f"{archive} holds no xlnet_config.json.")
            release = os.path.dirname(configs_found[0])
            convert_checkpoint(
                release,
                output_dir,
                vocabulary=os.path.join(release, "spiece.model"),
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
    vocabulary = download(
        source["vocabulary_url"],
        os.path.join(folder, os.path.basename(source["vocabulary_url"])),
    )
    convert_checkpoint(
        prefix, output_dir, vocabulary=vocabulary, config=entry["xlnet_config"]
    )


def _convert_huggingface(source, name, output_dir):
    folder = _download_folder(name, source)
    paths = {}
    for file in ("config.json", "spiece.model"):
        url = HUGGINGFACE_URL.format(repo=source["repo"], file=file)
        paths[file] = download(url, os.path.join(folder, file))
    errors = []
    for weights in ("model.safetensors", "pytorch_model.bin"):
        url = HUGGINGFACE_URL.format(repo=source["repo"], file=weights)
        try:
            download(url, os.path.join(folder, weights))
            break
        except DownloadError as error:
            errors.append(str(error))
    else:
        raise DownloadError("; ".join(errors))
    convert_checkpoint(folder, output_dir, vocabulary=paths["spiece.model"])


def resolve_registry_preset(name, entry):
    """The cached preset folder of `name`, converted on first use."""
    output_dir = preset_folder(name)
    if os.path.exists(os.path.join(output_dir, "config.json")):
        return output_dir
    os.makedirs(os.path.dirname(output_dir), exist_ok=True)
    failures = []
    for source in entry["sources"]:
        try:
            if source["kind"] == "release_zip":
                _convert_release_zip(source, name, output_dir)
            elif source["kind"] == "tf_checkpoint":
                _convert_tf_checkpoint(source, name, entry, output_dir)
            elif source["kind"] == "huggingface":
                _convert_huggingface(source, name, output_dir)
            else:
                raise ValueError(f"unknown source kind {source['kind']!r}")
            return output_dir
        except DownloadError as error:
            # Partial files stay to be resumed; a failed conversion leaves
            # no preset folder behind (it is renamed into place at the end).
            failures.append(f"  {error}")
        except CheckpointError as error:
            # Downloaded, but corrupt or not what was expected: drop it.
            shutil.rmtree(_download_folder(name, source), ignore_errors=True)
            failures.append(f"  {error}")
    tried = "\n".join(failures)
    raise PresetUnavailableError(
        f"Could not fetch preset {name!r}; tried:\n{tried}\n"
        "Without network access, convert local files instead, e.g. "
        "`python tools/convert_checkpoint.py xlnet_cased_L-24_H-1024_A-16 "
        "./my_preset --vocabulary xlnet_cased_L-24_H-1024_A-16/spiece.model`"
        " and call `from_preset('./my_preset')`, or put a converted preset "
        f"in {output_dir}."
    )


def resolve_huggingface(uri):
    """Converts an `hf://owner/repo` XLNet in Hugging Face format once.

    Files come through `huggingface_hub` (its cache, `HF_HUB_OFFLINE`,
    tokens). Returns the URI unchanged when the repository already holds a
    KerasHub preset.
    """
    import huggingface_hub

    repo = uri.removeprefix("hf://")
    config_path = huggingface_hub.hf_hub_download(repo, "config.json")
    with open(config_path, encoding="utf-8") as file:
        config = json.load(file)
    if "registered_name" in config:
        return uri
    configs.from_huggingface_config(config, f"{uri} config.json")
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
        vocabulary = huggingface_hub.hf_hub_download(repo, "spiece.model")
    except huggingface_hub.errors.EntryNotFoundError:
        vocabulary = None
    os.makedirs(os.path.dirname(output_dir), exist_ok=True)
    convert_checkpoint(snapshot, output_dir, vocabulary=vocabulary)
    return output_dir


def resolve(preset):
    """A local preset folder for `preset`, or `preset` unchanged."""
    if not isinstance(preset, str):
        return preset
    registry = load_registry()
    if preset in registry:
        return resolve_registry_preset(preset, registry[preset])
    if preset.startswith("hf://"):
        return resolve_huggingface(preset)
    return preset


def register_with_keras_hub(backbone_cls):
    """Lists the registry's presets in KerasHub (`Backbone.presets`)."""
    from keras_hub.src.utils.preset_utils import register_presets

    register_presets(
        {
            name: {
                "metadata": {
                    "description": entry["description"],
                    "params": entry["parameter_count"],
                    "path": "xlnet",
                },
                # Loading by name goes through `resolve`; KerasHub's own
                # lookup finds the converted copy once it is cached.
                "kaggle_handle": preset_folder(name),
            }
            for name, entry in load_registry().items()
        },
        backbone_cls,
    )

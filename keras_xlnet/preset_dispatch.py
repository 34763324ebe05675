"""KerasHub's preset lookup, taught the XLNet presets.

Every `from_preset` of KerasHub (`Backbone`, `Task`, `Preprocessor`,
`Tokenizer`, and so of our subclasses) asks `get_preset_loader(preset)` for a
loader. `install()` puts `get_preset_loader` below in its place: a registry
name gets the registry's loader, an `hf://` XLNet in Hugging Face format is
converted once, a local preset folder of ours gets a loader that names a
damaged file, and anything else goes to KerasHub's own lookup unchanged.
The converters (`keras_xlnet.checkpoints`) are imported only when one of
these presets is asked for, so model classes never depend on them.
"""

import importlib
import json
import os

from keras_hub.src.utils import preset_utils

from keras_xlnet import presets

# The KerasHub modules whose `from_preset` calls `get_preset_loader`.
_CALLERS = (
    "keras_hub.src.utils.preset_utils",
    "keras_hub.src.models.backbone",
    "keras_hub.src.models.task",
    "keras_hub.src.models.preprocessor",
    "keras_hub.src.tokenizers.tokenizer",
)
_keras_hub_get_preset_loader = preset_utils.get_preset_loader


def _is_huggingface_xlnet(preset):
    if not preset.startswith(preset_utils.HF_PREFIX):
        return False
    if not preset_utils.check_file_exists(preset, preset_utils.CONFIG_FILE):
        return False  # KerasHub's lookup reports it.
    config = preset_utils.load_json(preset, preset_utils.CONFIG_FILE)
    return (
        "registered_name" not in config and config.get("model_type") == "xlnet"
    )


def _local_config(preset):
    """The `config.json` of a local preset folder, or None elsewhere."""
    path = os.path.join(str(preset), preset_utils.CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        from keras_xlnet.checkpoints.readers import CheckpointError

        raise CheckpointError(
            f"{path} cannot be read as JSON ({error}): the preset is "
            "damaged; convert or download it again."
        ) from None


def get_preset_loader(preset):
    """KerasHub's `get_preset_loader`, extended to the XLNet presets."""
    if isinstance(preset, str) and preset in presets.load_registry():
        from keras_xlnet.checkpoints.preset_loader import RegistryPresetLoader

        return RegistryPresetLoader(preset)
    if isinstance(preset, str) and _is_huggingface_xlnet(preset):
        from keras_xlnet.checkpoints.preset_loader import huggingface_loader

        return huggingface_loader(preset)
    config = _local_config(preset)
    if config and config.get("registered_name", "").startswith("keras_xlnet>"):
        from keras_xlnet.checkpoints.preset_loader import CheckedPresetLoader

        return CheckedPresetLoader(preset, config)
    return _keras_hub_get_preset_loader(preset)


def install(backbone_cls):
    """Routes KerasHub's preset lookup through `get_preset_loader` and lists
    the registry's presets under `backbone_cls.presets` (and so under
    `keras_hub.models.Backbone.presets`)."""
    for name in _CALLERS:
        module = importlib.import_module(name)
        if module.get_preset_loader is _keras_hub_get_preset_loader:
            module.get_preset_loader = get_preset_loader
    preset_utils.register_presets(
        {
            name: {
                "metadata": {
                    "description": entry["description"],
                    "params": entry["parameter_count"],
                    "path": "xlnet",
                },
                # KerasHub reads the handle only in `get_file`, which the
                # lookup above never reaches for these names; the first
                # source says where the weights come from.
                "kaggle_handle": entry["sources"][0].get("url", ""),
            }
            for name, entry in presets.load_registry().items()
        },
        backbone_cls,
    )

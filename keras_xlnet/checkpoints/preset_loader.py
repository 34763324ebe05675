"""KerasHub preset loaders for the registry presets, `hf://` XLNets and
preset folders of ours."""

import contextlib
import json
import os

from keras_hub.src.utils.preset_utils import CONFIG_FILE
from keras_hub.src.utils.preset_utils import MODEL_WEIGHTS_FILE
from keras_hub.src.utils.preset_utils import PREPROCESSOR_CONFIG_FILE
from keras_hub.src.utils.preset_utils import TASK_CONFIG_FILE
from keras_hub.src.utils.preset_utils import TASK_WEIGHTS_FILE
from keras_hub.src.utils.preset_utils import TOKENIZER_CONFIG_FILE
from keras_hub.src.utils.preset_utils import KerasPresetLoader
from keras_hub.src.utils.preset_utils import PresetLoader
from keras_hub.src.utils.preset_utils import check_config_class
from keras_hub.src.utils.preset_utils import check_file_exists
from keras_hub.src.utils.preset_utils import load_json

from keras_xlnet import presets
from keras_xlnet.checkpoints import configs
from keras_xlnet.checkpoints import registry
from keras_xlnet.checkpoints.readers import CheckpointError
from keras_xlnet.models.xlnet_backbone import XLNetBackbone
from keras_xlnet.models.xlnet_backbone import check_backbone_config


@contextlib.contextmanager
def _damaged(preset, file):
    """Reports an unreadable `file` of `preset` as a `CheckpointError`."""
    try:
        yield
    except CheckpointError:
        raise
    except (OSError, json.JSONDecodeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise CheckpointError(
            f"{os.path.join(str(preset), file)} cannot be read "
            f"({type(error).__name__}: {first_line}): the preset is damaged; "
            "convert or download it again."
        ) from None


class CheckedPresetLoader(KerasPresetLoader):
    """KerasHub's loader of a preset folder of ours, with errors that name
    the damaged file, a configuration checked before anything is built,
    and no classifier with a silently random head."""

    def __init__(self, preset, config):
        path = os.path.join(str(preset), CONFIG_FILE)
        if not isinstance(config, dict) or not isinstance(
            config.get("config"), dict
        ):
            raise CheckpointError(
                f"{path} is not a KerasHub config (an object with a "
                "`config` object): the preset is damaged."
            )
        if config.get("class_name") == XLNetBackbone.__name__:
            try:
                check_backbone_config(config["config"])
            except ValueError as error:
                raise CheckpointError(f"{path}: {error}") from None
        super().__init__(preset, config)

    def _load_backbone_weights(self, backbone):
        with _damaged(self.preset, MODEL_WEIGHTS_FILE):
            super()._load_backbone_weights(backbone)

    def load_tokenizer(self, cls, config_file=TOKENIZER_CONFIG_FILE, **kwargs):
        with _damaged(self.preset, config_file):
            return super().load_tokenizer(cls, config_file, **kwargs)

    def load_preprocessor(
        self, cls, config_file=PREPROCESSOR_CONFIG_FILE, **kwargs
    ):
        with _damaged(self.preset, config_file):
            return super().load_preprocessor(cls, config_file, **kwargs)

    def load_task(self, cls, load_weights, load_task_weights, **kwargs):
        with _damaged(self.preset, f"{TASK_CONFIG_FILE} / {TASK_WEIGHTS_FILE}"):
            if load_weights and load_task_weights:
                self._check_task_weights(cls)
            return super().load_task(
                cls, load_weights, load_task_weights, **kwargs
            )

    def _check_task_weights(self, cls):
        if not check_file_exists(self.preset, TASK_CONFIG_FILE):
            return
        task_class = check_config_class(
            load_json(self.preset, TASK_CONFIG_FILE)
        )
        if issubclass(task_class, cls) and not check_file_exists(
            self.preset, TASK_WEIGHTS_FILE
        ):
            raise CheckpointError(
                f"{self.preset} holds {TASK_CONFIG_FILE} but no "
                f"{TASK_WEIGHTS_FILE}: its head would be random. Restore the "
                "file, or pass `num_classes=` to build a new head on the "
                "preset's backbone."
            )


def folder_loader(folder):
    """The loader of a local preset folder of ours."""
    with _damaged(folder, CONFIG_FILE):
        return CheckedPresetLoader(folder, load_json(folder, CONFIG_FILE))


def huggingface_loader(uri):
    """The loader of an `hf://` XLNet in Hugging Face format, converted once."""
    return folder_loader(registry.resolve_huggingface(uri))


class RegistryPresetLoader(PresetLoader):
    """Loads a registry preset, fetching only what the call needs.

    Weights are downloaded and converted once into the cache, after which
    every call reads the converted folder. Before that, `load_weights=False`
    builds the architecture from the registry alone, and a tokenizer or
    preprocessor fetches the vocabulary alone.
    """

    def __init__(self, name):
        self.entry = presets.load_registry()[name]
        super().__init__(
            name, configs.from_xlnet_config(self.entry["xlnet_config"])
        )

    def _converted(self):
        return folder_loader(registry.resolve_registry_preset(self.preset))

    def _needs_converted(self, load_weights):
        return load_weights or registry.is_cached(self.preset)

    def check_backbone_class(self):
        return XLNetBackbone

    def load_backbone(self, cls, load_weights, **kwargs):
        if self._needs_converted(load_weights):
            return self._converted().load_backbone(cls, load_weights, **kwargs)
        backbone_kwargs, kwargs = self.get_backbone_kwargs(**kwargs)
        return cls(**{**self.config, **kwargs, **backbone_kwargs})

    def load_tokenizer(self, cls, config_file=TOKENIZER_CONFIG_FILE, **kwargs):
        if registry.is_cached(self.preset):
            return self._converted().load_tokenizer(cls, config_file, **kwargs)
        return cls(proto=registry.fetch_vocabulary(self.preset), **kwargs)

    def load_task(self, cls, load_weights, load_task_weights, **kwargs):
        if self._needs_converted(load_weights):
            return self._converted().load_task(
                cls, load_weights, load_task_weights, **kwargs
            )
        return super().load_task(cls, load_weights, load_task_weights, **kwargs)

    def load_preprocessor(
        self, cls, config_file=PREPROCESSOR_CONFIG_FILE, **kwargs
    ):
        if registry.is_cached(self.preset):
            return self._converted().load_preprocessor(
                cls, config_file, **kwargs
            )
        return super().load_preprocessor(cls, config_file, **kwargs)

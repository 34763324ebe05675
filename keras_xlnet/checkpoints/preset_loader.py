"""KerasHub preset loaders for the registry presets and `hf://` XLNets."""

from keras_hub.src.utils.preset_utils import CONFIG_FILE
from keras_hub.src.utils.preset_utils import PREPROCESSOR_CONFIG_FILE
from keras_hub.src.utils.preset_utils import TOKENIZER_CONFIG_FILE
from keras_hub.src.utils.preset_utils import KerasPresetLoader
from keras_hub.src.utils.preset_utils import PresetLoader
from keras_hub.src.utils.preset_utils import load_json

from keras_xlnet import presets
from keras_xlnet.checkpoints import configs
from keras_xlnet.checkpoints import registry
from keras_xlnet.models.xlnet_backbone import XLNetBackbone


def folder_loader(folder):
    """KerasHub's own loader of a local preset folder."""
    return KerasPresetLoader(folder, load_json(folder, CONFIG_FILE))


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

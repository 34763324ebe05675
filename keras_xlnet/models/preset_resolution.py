"""`from_preset` that also knows the registry's presets and `hf://` XLNets."""

from keras_xlnet.checkpoints import registry


class ResolvesXLNetPresets:
    """Mixin: resolves a preset before KerasHub's own `from_preset` runs.

    Registry names (`xlnet_base_cased`, `xlnet_large_cased`) are downloaded,
    verified and converted once into the cache; `hf://` ids of XLNets in
    Hugging Face format are converted once; local folders, `kaggle://`
    handles and KerasHub presets on the Hub load as in KerasHub.
    """

    @classmethod
    def from_preset(cls, preset, *args, **kwargs):
        return super().from_preset(registry.resolve(preset), *args, **kwargs)

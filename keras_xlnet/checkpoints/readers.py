"""Readers of the tensors stored in TensorFlow and Hugging Face checkpoints."""

import json
import os

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not match the model."""


class TFCheckpointReader:
    """Tensors of a TF1 (name-based) or TF2 (object-based) checkpoint.

    TF2 keys lose their `/.ATTRIBUTES/VARIABLE_VALUE` suffix. Tensors are
    read one at a time, so a large checkpoint never sits in memory whole.
    """

    SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"

    def __init__(self, prefix):
        import tensorflow as tf

        self.path = prefix
        try:
            self._reader = tf.train.load_checkpoint(prefix)
        except Exception as error:  # TF raises several error types here.
            raise CheckpointError(
                f"Cannot open TensorFlow checkpoint {prefix!r}: {error}"
            ) from error
        self._keys = {
            key.removesuffix(self.SUFFIX): key
            for key in self._reader.get_variable_to_shape_map()
        }
        self._shapes = self._reader.get_variable_to_shape_map()

    def keys(self):
        return sorted(self._keys)

    def shape(self, key):
        return tuple(self._shapes[self._keys[key]])

    def read(self, key):
        try:
            return np.asarray(self._reader.get_tensor(self._keys[key]))
        except Exception as error:
            raise CheckpointError(
                f"Cannot read tensor {key!r} from {self.path!r} (the .data "
                f"file may be truncated or corrupt): {error}"
            ) from error


class SafetensorsReader:
    """Tensors of a Hugging Face `model.safetensors` file (memory-mapped)."""

    def __init__(self, path):
        from safetensors import safe_open

        self.path = path
        try:
            self._file = safe_open(path, framework="numpy")
        except Exception as error:
            raise CheckpointError(
                f"Cannot open safetensors file {path!r}: {error}"
            ) from error

    def keys(self):
        return sorted(self._file.keys())

    def shape(self, key):
        return tuple(self._file.get_slice(key).get_shape())

    def read(self, key):
        return np.asarray(self._file.get_tensor(key))


class TorchStateDictReader:
    """Tensors of a `pytorch_model.bin`, unpickled with `weights_only=True`.

    Only plain tensors can be loaded this way, so an untrusted file cannot
    run code. Needs PyTorch.
    """

    def __init__(self, path):
        try:
            import torch
        except ImportError as error:
            raise CheckpointError(
                f"{path!r} is a PyTorch pickle; reading it needs PyTorch "
                "(`pip install torch`). Prefer a `model.safetensors` file."
            ) from error
        self.path = path
        try:
            self._tensors = torch.load(
                path, map_location="cpu", weights_only=True
            )
        except Exception as error:
            raise CheckpointError(
                f"Cannot load {path!r} with `weights_only=True`: {error}"
            ) from error

    def keys(self):
        return sorted(self._tensors)

    def shape(self, key):
        return tuple(self._tensors[key].shape)

    def read(self, key):
        return self._tensors[key].float().numpy()


def open_huggingface_folder(folder):
    """Returns `(reader, config_dict)` for a `save_pretrained` folder."""
    config_path = os.path.join(folder, "config.json")
    with open(config_path, encoding="utf-8") as config_file:
        config = json.load(config_file)
    if config.get("model_type") != "xlnet":
        raise CheckpointError(
            f"{config_path} describes a {config.get('model_type')!r} model, "
            "not 'xlnet'."
        )
    safetensors_path = os.path.join(folder, "model.safetensors")
    torch_path = os.path.join(folder, "pytorch_model.bin")
    if os.path.exists(safetensors_path):
        return SafetensorsReader(safetensors_path), config
    if os.path.exists(torch_path):
        return TorchStateDictReader(torch_path), config
    raise CheckpointError(
        f"{folder!r} has a config.json but neither model.safetensors nor "
        "pytorch_model.bin (sharded Hugging Face checkpoints are not "
        "supported)."
    )

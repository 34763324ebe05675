"""The preset registry: one JSON file per preset, shipped in the wheel.

Each file holds the preset's description, its exact parameter count, the
original `xlnet_config.json`, the sha256 of its SentencePiece vocabulary and
its sources in order of preference. Reading it needs nothing but the standard
library, so that KerasHub can list and dispatch the presets without importing
the converters (`keras_xlnet.checkpoints.registry` fetches and converts).
"""

import functools
import importlib.resources
import json


@functools.cache
def load_registry():
    """The registry entries, by preset name (read once)."""
    entries = {}
    for resource in importlib.resources.files(__name__).iterdir():
        if resource.name.endswith(".json"):
            entry = json.loads(resource.read_text(encoding="utf-8"))
            entries[entry["name"]] = entry
    return entries

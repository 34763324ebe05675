"""The preset registry: one JSON file per preset, shipped in the wheel.

Each file holds the preset's description, its exact parameter count, the
original `xlnet_config.json` and its sources in order of preference. See
`keras_xlnet.checkpoints.registry`.
"""

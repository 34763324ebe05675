"""Serving artifacts of fine-tuned models: SavedModel, ONNX."""

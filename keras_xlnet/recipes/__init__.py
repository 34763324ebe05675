"""Recipes: one small module per task, each handing the training runner
(`keras_xlnet.training.runner`) its model, data and metrics."""

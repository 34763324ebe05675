"""IMDB data: aclImdb folders, the original TFRecords, tf.data pipelines."""

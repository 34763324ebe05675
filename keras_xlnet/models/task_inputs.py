"""The in-memory inputs of a task's `fit`, `evaluate` and `predict`.

Keras shuffles arrays before each epoch of `fit` (`shuffle=True` by
default). KerasHub's tasks batch lists, arrays and tensors in their given
order into a dataset, and Keras then ignores `shuffle`: a class-sorted list
of reviews trains on batches of one class, the same batches every epoch.
`training_arguments` restores Keras' behaviour. A `tf.data` or Grain
dataset is the user's to shuffle, as in Keras.
"""

import keras
import numpy as np
import tensorflow as tf


def is_in_memory(x):
    """Whether `x` holds its examples (a list, a tuple of lists for pairs,
    a dict, an array or a tensor), rather than producing them (a dataset,
    a generator, a `PyDataset`)."""
    if isinstance(x, (list, tuple, dict, np.ndarray)):
        return True
    return tf.is_tensor(x) or keras.ops.is_tensor(x)


def _first_leaf(x):
    while isinstance(x, (tuple, dict)) and x:
        x = next(iter(x.values())) if isinstance(x, dict) else x[0]
    return x


def example_count(x):
    """The number of examples of in-memory `x`."""
    leaf = _first_leaf(x)
    if isinstance(leaf, (list, dict)):
        return len(leaf)
    return int(leaf.shape[0])


def _is_one_value(leaf):
    if isinstance(leaf, (str, bytes)):
        return True
    shape = getattr(leaf, "shape", None)
    return shape is not None and len(shape) == 0


def check_examples(x, method):
    """Refuses a bare string (or any single value where a batch is
    expected) and in-memory inputs without any example, which fail later
    with a misleading message."""
    if _is_one_value(_first_leaf(x)):
        raise ValueError(
            f"`{method}` takes a batch of texts: a list of strings (or a "
            "tuple of two lists for pairs). Received one string (or one "
            "value); pass `[text]`."
        )
    if is_in_memory(x) and example_count(x) == 0:
        raise ValueError(f"`{method}` received no examples (an empty input).")


def _map_leaves(values, function):
    """`function` over the leaves of tuples and dicts; as in `tf.data`, a
    list is one leaf (of strings, say), and `None` stays `None`."""
    if isinstance(values, tuple):
        return tuple(_map_leaves(value, function) for value in values)
    if isinstance(values, dict):
        return {k: _map_leaves(v, function) for k, v in values.items()}
    return None if values is None else function(values)


def _sliced(values, start, stop):
    return _map_leaves(values, lambda leaf: leaf[start:stop])


def _split_for_validation(data, validation_split):
    """`(training, validation)` parts of `data`: the last
    `validation_split` of the examples validate, as in Keras."""
    count = example_count(data[0])
    split_at = int(count * (1.0 - validation_split))
    if split_at in (0, count):
        raise ValueError(
            f"validation_split={validation_split} of {count} examples "
            "leaves no training or no validation example."
        )
    return _sliced(data, 0, split_at), _sliced(data, split_at, None)


def _as_slices(values):
    """Leaves `tf.data` can slice: lists stay lists (of strings), tensors
    of any backend become numpy arrays."""

    def convert(leaf):
        if isinstance(leaf, (list, np.ndarray)) or tf.is_tensor(leaf):
            return leaf
        return keras.ops.convert_to_numpy(leaf)

    return _map_leaves(values, convert)


def _batches(x, y, sample_weight, batch_size, shuffle):
    """A `tf.data` pipeline of `(x, y, sample_weight)` batches; shuffled,
    in a new order each epoch, seeded from numpy's global generator (which
    `keras.utils.set_random_seed` seeds)."""
    data = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
    data = data if isinstance(data, tuple) else (data,)
    dataset = tf.data.Dataset.from_tensor_slices(_as_slices(data))
    if shuffle:
        dataset = dataset.shuffle(
            example_count(x),
            seed=int(np.random.randint(2**31 - 1)),
            reshuffle_each_iteration=True,
        )
    return dataset.batch(batch_size or 32)


def training_arguments(
    x,
    y=None,
    batch_size=None,
    sample_weight=None,
    validation_split=None,
    validation_data=None,
    shuffle=True,
    **kwargs,
):
    """The arguments of KerasHub's `fit` that train as `keras.Model.fit`
    does: in-memory examples in a new order each epoch unless
    `shuffle=False`, after taking `validation_split` off their end unless
    `validation_data` is given."""
    check_examples(x, "fit")
    if is_in_memory(x):
        if validation_split and validation_data is None:
            data, validation = _split_for_validation(
                (x, y, sample_weight), validation_split
            )
            x, y, sample_weight = data
            validation_data = _batches(*validation, batch_size, shuffle=False)
        validation_split = None  # Keras ignores it beside validation_data.
        if shuffle:
            x = _batches(x, y, sample_weight, batch_size, shuffle=True)
            y = sample_weight = batch_size = None
            shuffle = False  # Done: the dataset shuffles itself.
    return dict(
        x=x,
        y=y,
        batch_size=batch_size,
        sample_weight=sample_weight,
        validation_split=validation_split,
        validation_data=validation_data,
        shuffle=shuffle,
        **kwargs,
    )

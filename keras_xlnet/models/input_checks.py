"""Checks of token ids and labels where a batch enters a task.

Inside a compiled step a bad value cannot raise on JAX: an id past the
embedding reads NaN there, a negative id reads a row from the end of the
table on every backend, and a label past `num_classes` trains on silently.
So batches are checked on the host, where they enter: in the `tf.data` or
Grain preprocessing that KerasHub's `fit`, `evaluate` and `predict` apply,
and in the `*_on_batch` methods. Inside a `tf.data` graph the checks are
TensorFlow assertions, which fail the iteration with the same message.
"""

import contextlib

import keras
import numpy as np

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - TF is a dependency.
    tf = None


# The most positions a packed input may take (128 segments of 512): a larger
# setting is refused at once instead of packing until memory runs out.
MAX_SEQUENCE_LENGTH = 65536


def is_count(value, minimum=0):
    """Whether a setting is an integer (not a bool) of at least `minimum`."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= minimum
    )


def _in_tf_graph(values):
    return (
        tf is not None and tf.is_tensor(values) and not tf.executing_eagerly()
    )


def _check_range(values, upper, message):
    """`values` unchanged, after checking `0 <= values < upper`; in a
    TensorFlow graph the returned tensor carries the assertions."""
    if _in_tf_graph(values):
        wide = tf.cast(
            values, "float64" if values.dtype.is_floating else "int64"
        )
        assertions = [
            tf.debugging.assert_non_negative(wide, message=message),
            tf.debugging.assert_less(
                wide, tf.cast(upper, wide.dtype), message=message
            ),
        ]
        with tf.control_dependencies(assertions):
            return tf.identity(values)
    array = np.asarray(values)
    if array.size and (array.min() < 0 or array.max() >= upper):
        outside = array[(array < 0) | (array >= upper)]
        raise ValueError(f"{message} Received: {sorted(set(outside.tolist()))}")
    return values


def check_token_ids(token_ids, vocabulary_size):
    return _check_range(
        token_ids,
        vocabulary_size,
        f"`token_ids` must lie in [0, {vocabulary_size}), the rows of the "
        "backbone's embedding: is the tokenizer the model's?",
    )


def segment_layout_problem(length, segment_length, max_segments):
    """Why `length` positions are not at most `max_segments` whole
    segments of `segment_length` (or one shorter segment); None if they
    are."""
    if length <= segment_length:
        return None
    if length % segment_length:
        return (
            f"An input of {length} positions is not a whole number of "
            f"segments of {segment_length}: pack it with "
            f"`XLNetTextClassifierPreprocessor(sequence_length=n * "
            f"{segment_length}, max_segments=n)`."
        )
    if length > segment_length * max_segments:
        return (
            f"An input of {length // segment_length} segments of "
            f"{segment_length} exceeds the classifier's "
            f"max_segments={max_segments}."
        )
    return None


def check_segment_layout(token_ids, segment_length, max_segments):
    """`token_ids` unchanged, after checking that their length is whole
    segments (see `segment_layout_problem`); in a TensorFlow graph of
    unknown length the returned tensor carries the assertion."""
    length = token_ids.shape[-1]
    if length is not None:
        problem = segment_layout_problem(length, segment_length, max_segments)
        if problem:
            raise ValueError(problem)
        return token_ids
    if not _in_tf_graph(token_ids):
        return token_ids
    length = tf.shape(token_ids)[-1]
    whole = tf.logical_and(
        tf.equal(length % segment_length, 0),
        length <= segment_length * max_segments,
    )
    assertion = tf.debugging.Assert(
        tf.logical_or(length <= segment_length, whole),
        [
            f"The input length is not at most {max_segments} whole segments "
            f"of {segment_length} (or one shorter segment):",
            length,
        ],
    )
    with tf.control_dependencies([assertion]):
        return tf.identity(token_ids)


def _dtype_of(values):
    dtype = getattr(values, "dtype", None)
    if dtype is None:
        dtype = np.asarray(values).dtype
    if tf is not None and isinstance(dtype, tf.dtypes.DType):
        return dtype.name
    if isinstance(dtype, np.dtype) and dtype.kind in "OUS":
        return "string"
    return keras.backend.standardize_dtype(dtype)


def _is_numeric(dtype):
    return any(kind in dtype for kind in ("int", "float", "bool"))


def _check_values(values, problem, message):
    """`values` unchanged, after checking that `problem(values)` (a boolean
    mask, numpy or TensorFlow) holds nowhere; in a TensorFlow graph the
    returned tensor carries the assertion."""
    if _in_tf_graph(values):
        assertion = tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(problem(values, tf))), [message]
        )
        with tf.control_dependencies([assertion]):
            return tf.identity(values)
    array = np.asarray(values)
    bad = problem(array, np)
    if np.any(bad):
        raise ValueError(
            f"{message} Received: {sorted(set(array[bad].tolist()))}"
        )
    return values


def _not_finite(values, xp):
    if xp is np:
        return ~np.isfinite(values)
    return tf.logical_not(tf.math.is_finite(values))


def _not_whole(values, xp):
    if xp is np:
        return values != np.floor(values)
    return tf.not_equal(values, tf.floor(values))


def _shape(values):
    shape = getattr(values, "shape", None)
    if shape is None:
        return np.shape(values)
    rank = getattr(shape, "rank", len(shape))
    return None if rank is None else tuple(shape)


def check_labels(labels, num_classes):
    """Labels must be numbers; with several classes, class indices (any
    numeric dtype, `[batch]` or `[batch, 1]`) must be finite whole numbers
    naming a class, and one-hot or probability rows (`[batch, classes]`)
    finite. A one-output model (regression, a sigmoid) takes any finite
    number."""
    dtype = _dtype_of(labels)
    if not _is_numeric(dtype):
        raise ValueError(
            f"Labels must be class indices in [0, {num_classes}) (integers) "
            f"or one-hot rows; received labels of dtype {dtype}."
        )
    if dtype == "bool":
        return labels
    shape = _shape(labels)
    indices = (
        num_classes > 1
        and shape is not None
        and (len(shape) < 2 or shape[-1] == 1)
    )
    if "float" in dtype:
        labels = _check_values(
            labels, _not_finite, "Labels must be finite numbers."
        )
        if not indices:
            return labels
        labels = _check_values(
            labels,
            _not_whole,
            f"Labels must be whole class indices in [0, {num_classes}).",
        )
    elif not indices:
        return labels
    return _check_range(
        labels,
        num_classes,
        f"Labels must lie in [0, {num_classes}), the classifier's classes.",
    )


def check_sample_weight(sample_weight):
    """Sample weights must be finite and non-negative: one NaN would turn
    every weight of the model into NaN in one step."""
    dtype = _dtype_of(sample_weight)
    if not _is_numeric(dtype):
        raise ValueError(
            f"`sample_weight` must be numbers; received dtype {dtype}."
        )

    def bad(values, xp):
        if xp is not np:
            values = tf.cast(values, "float32")
        return xp.logical_or(_not_finite(values, xp), values < 0)

    return _check_values(
        sample_weight,
        bad,
        "`sample_weight` must be finite and non-negative.",
    )


def _all_variables(model):
    optimizer = getattr(model, "optimizer", None)
    return (
        list(model.variables)
        + (list(optimizer.variables) if optimizer is not None else [])
        + list(model.metrics_variables)
    )


@contextlib.contextmanager
def variables_kept_on_error(model):
    """Keeps `model` usable after a check fails inside `fit`/`evaluate`/
    `predict`.

    Keras' JAX trainer detaches the variables' values while its loop runs
    and reattaches them at the end; an error raised by the data in between
    would leave them detached (the next call fails with "'NoneType' object
    is not callable"). On an error this reattaches the last synced state,
    else the values from before the call; variables created during the call
    (optimizer slots, counters, metric totals) start again at zero.
    """
    before = {id(v): v._value for v in _all_variables(model)}
    try:
        yield
    except Exception:
        if hasattr(model, "jax_state_sync"):
            model.jax_state_sync()
        for variable in _all_variables(model):
            if variable._value is None:
                variable._value = before.get(id(variable))
            if variable._value is None:
                variable._value = keras.ops.zeros(
                    variable.shape, variable.dtype
                )
        raise


_CHECK_INSIDE_MODELS = False


def enable_input_checks(enabled=True):
    """Debug switch: also check token ids inside the backbone, on every call.

    Batches that enter through `fit`, `evaluate`, `predict` and the
    `*_on_batch` methods of `XLNetClassifier` are always checked. With this
    switch the backbone itself checks every call, also direct calls, the
    backbone's own `predict` and a user's compiled functions: on JAX through
    a host callback inside the compiled program, in TensorFlow graphs
    through assertions, elsewhere on the host. It is read when a model is
    called or traced, costs a host round trip per call on JAX, and is meant
    for debugging: after such an error inside a compiled JAX step, reload
    the model (Keras hands the weights' buffers to the step).

    Example:
    ```python
    keras_xlnet.enable_input_checks()
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32,
    )
    bad = {
        "token_ids": np.array([[7, 100, 4, 3]]),
        "padding_mask": np.ones((1, 4)),
        "segment_ids": np.array([[0, 0, 0, 2]]),
    }
    try:
        backbone.predict(bad, verbose=0)
    except Exception as error:  # ValueError, or the backend's error type.
        message = str(error)
    "`token_ids` must lie in [0, 100)" in message
    # True
    keras_xlnet.enable_input_checks(False)
    ```
    """
    global _CHECK_INSIDE_MODELS
    _CHECK_INSIDE_MODELS = bool(enabled)


def check_token_ids_inside_model(token_ids, vocabulary_size):
    """`check_token_ids` wherever the backbone runs, when switched on."""
    if not _CHECK_INSIDE_MODELS:
        return token_ids
    if keras.config.backend() == "jax":
        import jax
        import jax.experimental

        if isinstance(token_ids, jax.core.Tracer):
            # A compiled JAX program cannot raise; a host callback can. Its
            # result is used, so the callback is never pruned.
            return jax.experimental.io_callback(
                lambda ids: check_token_ids(np.asarray(ids), vocabulary_size),
                jax.ShapeDtypeStruct(token_ids.shape, token_ids.dtype),
                token_ids,
            )
    return check_token_ids(token_ids, vocabulary_size)


@keras.saving.register_keras_serializable(package="keras_xlnet")
class XLNetTokenIdCheck(keras.layers.Layer):
    """Passes `token_ids` through, checked when `enable_input_checks()` is
    on (read when the model is called or traced).

    Args:
        vocabulary_size: int, the rows of the embedding that follows.
    """

    def __init__(self, vocabulary_size, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.built = True

    def call(self, token_ids):
        return check_token_ids_inside_model(token_ids, self.vocabulary_size)

    def compute_output_spec(self, token_ids):
        return keras.KerasTensor(token_ids.shape, dtype=token_ids.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary_size": self.vocabulary_size})
        return config

"""The training data stream: full permutations per pass, exact resume.

Every pass over the training data is a full permutation of the whole split,
fixed by `(seed, pass)` alone, as XLNet's original preprocessing shuffles
all examples before it writes them. The stream of one run is therefore a
function of its position: a resumed run that skips the batches already
trained on reads what an uninterrupted run reads next.

Two sources: `InMemoryExamples` (arrays of examples, any order: each pass
is a true permutation) and `RecordFiles` (TFRecord files that cannot be
read at random: the files in a permuted order, interleaved, then shuffled
in a buffer; their writer must shuffle the examples, as
`tools/preprocess_imdb.py` and the original code do).
"""

import numpy as np
import tensorflow as tf

# Examples a pass over TFRecord files shuffles at once (the original's).
SHUFFLE_BUFFER = 2048
# With grouping, examples are sorted by length within groups of this many
# batches of one pass (Hugging Face's mega-batches).
GROUP_BATCHES = 10


def pass_seed(seed, index):
    """The seed of pass `index` of a run seeded with `seed`."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class InMemoryExamples:
    """Examples held in memory, one row of each array per example.

    Args:
        *columns: arrays (or lists) of equal length, for example the texts
            and their labels.
    """

    def __init__(self, *columns):
        self.columns = [_as_array(column) for column in columns]
        sizes = {len(column) for column in self.columns}
        if len(sizes) != 1:
            raise ValueError(
                f"The columns of the examples differ in length: {sizes}."
            )
        (self.size,) = sizes

    def one_pass(self, index, seed):
        """Pass `index`: every example once, in a permutation fixed by
        `(seed, index)`."""
        order = np.random.default_rng(pass_seed(seed, index)).permutation(
            self.size
        )
        return tf.data.Dataset.from_tensor_slices(
            tuple(column[order] for column in self.columns)
        )


def _as_array(column):
    """`column` as an array; strings as objects (a fixed-width unicode
    array of long texts would take their longest length each)."""
    if isinstance(column, np.ndarray):
        return column
    column = list(column)
    if column and isinstance(column[0], (str, bytes)):
        return np.array(column, dtype=object)
    return np.asarray(column)


class RecordFiles:
    """Parsed TFRecord files, `size` examples in all.

    A pass reads the files in an order fixed by `(seed, pass)`,
    interleaves them record by record and shuffles `SHUFFLE_BUFFER`
    examples at a time: the order is random only as far as the files were
    shuffled when they were written.
    """

    def __init__(self, files, parse, size):
        self.files, self.parse, self.size = list(files), parse, size

    def one_pass(self, index, seed):
        rng = np.random.default_rng(pass_seed(seed, index))
        files = [self.files[i] for i in rng.permutation(len(self.files))]
        records = tf.data.Dataset.from_tensor_slices(files).interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(files), 16),
            block_length=1,
            deterministic=True,
        )
        return (
            records.map(self.parse)
            .shuffle(SHUFFLE_BUFFER, seed=int(rng.integers(2**31)))
            .prefetch(tf.data.AUTOTUNE)
        )


def training_batches(
    source,
    pack,
    micro_batch_size,
    total_examples,
    seed,
    skip_batches=0,
    group=None,
):
    """Packed training micro-batches of `source`, from `skip_batches` on.

    Args:
        source: `InMemoryExamples` or `RecordFiles` of `(features, label)`.
        pack: maps a batch of features to the model's inputs.
        micro_batch_size: examples per batch.
        total_examples: examples the whole run reads (passes follow each
            other until then).
        seed: the run's seed.
        skip_batches: batches already read (a resumed run).
        group: optional `(examples per group, trim)`: each pass is cut into
            groups, each group packed and sorted by length (longest first),
            and each batch mapped through `trim` (for example
            `length_buckets.trim_padding`).
    """
    from keras_xlnet.data import length_buckets

    if source.size == 0:
        raise ValueError("The training data hold no examples.")
    first_pass, offset = divmod(skip_batches * micro_batch_size, source.size)
    # One pass at least, even when all is skipped (a run resumed at its end).
    last_pass = max(first_pass + 1, -(-total_examples // source.size))
    stream = None
    for index in range(first_pass, last_pass):
        one_pass = source.one_pass(index, seed)
        skip = offset if index == first_pass else 0
        if group:
            size = group[0]
            one_pass = (
                one_pass.skip(skip // size * size)
                .batch(size)
                .map(lambda x, y: (pack(x), y))
                .map(length_buckets.sort_by_length)
                .unbatch()
            )
            skip %= size
        one_pass = one_pass.skip(skip)
        stream = one_pass if stream is None else stream.concatenate(one_pass)
    stream = stream.batch(micro_batch_size, drop_remainder=True)
    if group:
        return stream.map(group[1])
    return stream.map(lambda x, y: (pack(x), y))


def padded_to_whole_batches(dataset, size, batch_size, filler):
    """`dataset` of `size` `(x, y, weight)` examples, followed by copies of
    `filler` (an example of weight 0) up to a multiple of `batch_size`, so
    that every process of a run takes part in every batch."""
    missing = -size % batch_size
    if not missing:
        return dataset
    return dataset.concatenate(
        tf.data.Dataset.from_tensors(filler).repeat(missing)
    )

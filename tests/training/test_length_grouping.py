"""Training on length-grouped batches (`--group-by-length`)."""

import dataclasses
import types

import keras
import numpy as np
import pytest

from keras_xlnet.recipes import imdb
from keras_xlnet.recipes import imdb_demo
from keras_xlnet.training import runner
from keras_xlnet.training.settings import RunError

SEQUENCE_LENGTH = 64
BUCKET_WIDTH = 16


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """24 bundled reviews labelled with their index, and a preprocessor."""
    train, _ = imdb_demo.demo_data()
    texts = train[0][:24]
    preprocessor = imdb_demo.demo_classifier(texts).preprocessor
    preprocessor.sequence_length = SEQUENCE_LENGTH
    return texts, preprocessor


def grouped_config(**changes):
    settings = dict(
        sequence_length=SEQUENCE_LENGTH,
        batch_size=2,  # Groups of 20 examples: a pass is 20 + 4.
        train_steps=24,  # 48 examples: two passes.
        warmup_steps=1,
        eval_every=24,
        group_by_length=True,
        bucket_width=BUCKET_WIDTH,
    )
    return imdb.ImdbConfig(**{**settings, **changes})


def read_batches(config, texts, preprocessor, skip_batches=0):
    """`(packed inputs, example indices)` of every training batch."""
    task = imdb.ImdbTask(
        config, train=(texts, np.arange(len(texts))), test=([], [])
    )
    model = types.SimpleNamespace(preprocessor=preprocessor)
    dataset = task.training_batches(model, skip_batches)
    return [
        ({k: v.numpy() for k, v in x.items()}, y.numpy()) for x, y in dataset
    ]


@pytest.mark.backend_independent
def test_each_example_once_per_pass_sorted_within_groups(demo):
    texts, preprocessor = demo
    batches = read_batches(grouped_config(), texts, preprocessor)
    assert len(batches) == 24
    indices = np.concatenate([y for _, y in batches])
    for one_pass in (indices[:24], indices[24:]):
        assert sorted(one_pass) == list(range(24))
    assert list(indices[:24]) != list(indices[24:])  # Reshuffled.

    # Longest first within each group of 10 batches and in a pass's rest.
    full = {i: preprocessor(texts[i]) for i in range(24)}
    lengths = [int(np.sum(full[i]["padding_mask"])) for i in indices]
    for start, end in ((0, 20), (20, 24), (24, 44), (44, 48)):
        assert lengths[start:end] == sorted(lengths[start:end], reverse=True)

    # Each batch keeps the last columns of the full packing: a multiple of
    # the bucket width (at most the sequence length) covering its longest.
    widths = set()
    for (x, y), longest in zip(batches, lengths[::2]):
        width = x["token_ids"].shape[1]
        widths.add(width)
        assert width == min(
            -(-longest // BUCKET_WIDTH) * BUCKET_WIDTH, SEQUENCE_LENGTH
        )
        for row, index in enumerate(y):
            for key, values in full[index].items():
                np.testing.assert_array_equal(
                    x[key][row], np.asarray(values)[-width:]
                )
    assert 1 < len(widths) <= SEQUENCE_LENGTH // BUCKET_WIDTH


@pytest.mark.backend_independent
def test_plain_batches_are_full_length_and_unsorted(demo):
    texts, preprocessor = demo
    config = grouped_config(group_by_length=False)
    batches = read_batches(config, texts, preprocessor)
    indices = np.concatenate([y for _, y in batches])
    assert sorted(indices[:24]) == list(range(24))
    assert {x["token_ids"].shape[1] for x, _ in batches} == {SEQUENCE_LENGTH}


@pytest.mark.backend_independent
@pytest.mark.parametrize("group_by_length", [False, True])
@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_skipped_batches_continue_the_same_stream(
    demo, group_by_length, accumulation_steps
):
    texts, preprocessor = demo
    config = grouped_config(
        batch_size=4,
        train_steps=12,
        group_by_length=group_by_length,
        accumulation_steps=accumulation_steps,
    )
    batches = read_batches(config, texts, preprocessor)
    assert len(batches) == 12 * accumulation_steps
    # Mid-pass, at a pass's end, in the second pass, at the last batch.
    for skip in (3, 6, 7, 11):
        skip *= accumulation_steps
        resumed = read_batches(config, texts, preprocessor, skip)
        assert len(resumed) >= len(batches) - skip > 0
        for (x, y), (x_resumed, y_resumed) in zip(batches[skip:], resumed):
            np.testing.assert_array_equal(y, y_resumed)
            np.testing.assert_array_equal(
                x["token_ids"], x_resumed["token_ids"]
            )


def test_compiled_programs_are_bounded_by_the_bucket_count(tmp_path):
    """Each new batch shape traces the training step once (JAX, TF); the
    shapes are at most `sequence_length / bucket_width`. With remat and
    gradient accumulation, as they combine with grouping."""
    if keras.config.backend() == "torch":
        pytest.skip("PyTorch runs the step eagerly: nothing is traced")
    train, test = imdb_demo.demo_data()
    config = grouped_config(
        batch_size=4,
        train_steps=12,
        eval_every=6,
        accumulation_steps=2,
        remat=True,
        model_dir=str(tmp_path / "run"),
        dtype="float32",
        distribution="none",
        verbose=0,
    )
    traces = []
    built = []

    def build(dtype):
        classifier = imdb_demo.demo_classifier(train[0], dtype=dtype)
        built.append(classifier)
        step = classifier.train_step

        def counted_step(*args):
            traces.append(1)
            return step(*args)

        classifier.train_step = counted_step
        return classifier

    task = imdb.ImdbTask(config, build, train, test)
    summary = runner.run(task)
    assert summary["total_training_steps"] == 12
    train_ds = task.training_batches(built[0], 0)
    widths = {x["token_ids"].shape[1] for x, _ in train_ds}
    assert 1 < len(widths) <= SEQUENCE_LENGTH // BUCKET_WIDTH
    if keras.config.backend() == "jax":
        assert len(traces) == len(widths)
    else:  # TensorFlow may relax a shape and trace fewer times.
        assert 1 <= len(traces) <= len(widths)


def test_grouping_needs_a_bucket_width():
    config = dataclasses.replace(grouped_config(), bucket_width=0)
    with pytest.raises(RunError, match="bucket_width must be"):
        config.check()

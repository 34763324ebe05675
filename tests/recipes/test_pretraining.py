"""Continued pretraining: the data stream of the original pretraining, the
task on the runner and `tools/pretrain.py`, offline."""

import dataclasses
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT
from conftest import imdb_texts
from conftest import jax_only
from conftest import real_vocabulary

import keras_xlnet
from keras_xlnet.data.pretraining_stream import PretrainingStream
from keras_xlnet.data.pretraining_stream import split_a_and_b
from keras_xlnet.models.xlnet_permutation_lm import permutation_lm_loss
from keras_xlnet.recipes import pretraining
from keras_xlnet.recipes import pretraining_demo
from keras_xlnet.recipes.pretraining import PretrainConfig
from keras_xlnet.training import runner
from keras_xlnet.training.settings import RunError

sys.path.insert(0, str(REPO_ROOT / "tools"))
import pretrain  # noqa: E402

SMALL = dict(sequence_length=32, reuse_length=16, perm_size=8, num_predict=6)


@pytest.fixture(scope="module")
def preprocessor():
    tokenizer = keras_xlnet.XLNetTokenizer(proto=real_vocabulary())
    return keras_xlnet.XLNetPermutationLMPreprocessor(tokenizer, **SMALL)


@pytest.fixture(scope="module")
def reviews():
    """100 real reviews as documents, one sentence per line."""
    return [
        text.replace(". ", ".\n").replace("<br /><br />", "\n")
        for text in imdb_texts()[:100]
    ]


@pytest.mark.backend_independent
def test_documents_are_cut_at_blank_lines(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.txt").write_text("c1\nc2\n\n\nd1\n")
    (tmp_path / "one.txt").write_text("a1\na2\n \t\nb1")
    (tmp_path / "notes.md").write_text("not text")
    documents = pretraining.read_documents(tmp_path)
    # Files in sorted path order ("b/two.txt" before "one.txt").
    assert documents == ["c1\nc2", "d1", "a1\na2", "b1"]
    train, held_out = pretraining.split_documents([str(i) for i in range(21)])
    assert held_out == ["0", "10", "20"] and len(train) == 18
    with pytest.raises(RunError, match="holds no .txt files"):
        pretraining.read_documents(tmp_path / "b" / "missing")


@pytest.mark.backend_independent
def test_documents_come_from_lists_tf_data_or_grain():
    import grain
    import tensorflow as tf

    texts = ["first line\nsecond", "über"]
    assert pretraining.as_texts(tf.data.Dataset.from_tensor_slices(texts)) == (
        texts
    )
    assert pretraining.as_texts(grain.MapDataset.source(texts)) == texts
    with pytest.raises(RunError, match="must be strings; received int"):
        pretraining.as_texts(["text", 7])


class ScriptedRng:
    """A generator whose draws are given: `random()` returns `coin`,
    `choice` picks `cuts[pick]`, `integers` returns `start`."""

    def __init__(self, coin, pick=0, start=0):
        self.coin, self.pick, self.start = coin, pick, start

    def random(self):
        return self.coin

    def choice(self, cuts):
        return cuts[self.pick]

    def integers(self, low, high):
        assert low <= self.start < high
        return self.start


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "rng, expected",
    [
        # B continues A (one sentence); B, longer, loses its last pieces.
        (ScriptedRng(0.7, pick=0), (14, 21, 21, 44)),
        # A of four sentences is the longer one: A is cut.
        (ScriptedRng(0.7, pick=3), (14, 37, 42, 49)),
        # A random B from piece 50, widened to whole sentences (49..70),
        # then cut to the 16 pieces A leaves.
        (ScriptedRng(0.2, pick=1, start=50), (14, 28, 49, 65)),
    ],
)
def test_a_and_b_as_the_original_splits_them(rng, expected):
    """Hand-computed cases of `_split_a_and_b`: sentences of 7 pieces, A
    from piece 14, 30 pieces for A and B. A can end at pieces 21, 28, 35
    or 42 (the boundaries within 30 pieces)."""
    sentence_ids = np.repeat(np.arange(20) % 2, 7).astype(bool)
    assert split_a_and_b(sentence_ids, 14, 30, rng) == expected


def stream_tokens(documents, tokenizer):
    """The stream the original writes: each line's pieces, `<eod>` after
    each document."""
    tokens = []
    for document in documents:
        for line in document.splitlines():
            tokens.extend(int(i) for i in tokenizer(line))
        tokens.append(tokenizer.token_to_id("<eod>"))
    return np.array(tokens)


@pytest.mark.backend_independent
def test_sentences_alternate_and_eod_ends_its_document(preprocessor):
    """As the original's `create_data`: each line a sentence, ids
    alternating; `<eod>` takes the id of the sentence before it."""
    documents = ["Hello there.\nSecond line.", "Next doc."] * 3
    stream = PretrainingStream(documents, preprocessor, 1, False, seed=0)
    tokenizer = preprocessor.tokenizer
    pieces = [tokenizer.id_to_token(int(i)) for i in stream.rows[0, :13]]
    assert pieces == [
        "▁", "Hello", "▁there", ".", "▁Second", "▁line", ".", "<eod>",
        "▁Next", "▁", "doc", ".", "<eod>",
    ]  # fmt: skip
    expected = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    np.testing.assert_array_equal(stream.sentence_ids[0, :13], expected)


@pytest.mark.backend_independent
@pytest.mark.parametrize("bi_data", [False, True])
def test_each_step_continues_the_rows_of_the_last(
    preprocessor, reviews, bi_data
):
    """Row `r` of step `k` starts with pieces `k * reuse_length ..` of the
    `r`-th slice of the stream (backward rows: the forward rows read from
    the end), so a step's memory is the text just before it."""
    stream = PretrainingStream(reviews, preprocessor, 4, bi_data, seed=0)
    tokens = stream_tokens(reviews, preprocessor.tokenizer)
    forward = 2 if bi_data else 4
    length = len(tokens) // forward
    rows = tokens[: length * forward].reshape(forward, length)
    if bi_data:
        rows = np.concatenate([rows, rows[:, ::-1]])
    np.testing.assert_array_equal(stream.rows, rows)
    assert stream.steps_per_pass == (length - 32) // 16 + 1
    sep = preprocessor.tokenizer.sep_token_id
    cls = preprocessor.tokenizer.cls_token_id
    for step in (0, 1, stream.steps_per_pass - 1, stream.steps_per_pass):
        batch = stream.batch(step)
        begin = 16 * (step % stream.steps_per_pass)
        token_ids = batch["token_ids"]
        np.testing.assert_array_equal(
            token_ids[:, :16], rows[:, begin : begin + 16]
        )
        assert (token_ids[:, -2:] == [sep, cls]).all()
        assert ((token_ids == sep).sum(axis=1) == 2).all()
        assert batch["padding_mask"].all()
        # The targets are the pieces the target mapping picks; rows past
        # the targets (fewer where a draw fell on <sep> or <cls>, as in
        # the original) pick nothing and weigh 0.
        mapping, target_mask = batch["target_mapping"], batch["target_mask"]
        picked = np.einsum("bpl,bl->bp", mapping, token_ids)
        np.testing.assert_array_equal(picked, batch["target_ids"])
        np.testing.assert_array_equal(mapping.sum(axis=2), target_mask)
        assert (np.diff(target_mask, axis=1) <= 0).all()
    # A new pass draws other targets for the same text.
    again = stream.batch(stream.steps_per_pass)
    first = stream.batch(0)
    np.testing.assert_array_equal(
        again["token_ids"][:, :16], first["token_ids"][:, :16]
    )
    assert not np.array_equal(again["target_mapping"], first["target_mapping"])


@pytest.mark.backend_independent
def test_the_dataset_gives_the_stream_from_any_batch(preprocessor, reviews):
    stream = PretrainingStream(reviews, preprocessor, 2, False, seed=5)
    x, y, target_mask = next(iter(stream.dataset(start=3)))
    expected = stream.batch(3)
    for name, value in x.items():
        np.testing.assert_array_equal(value.numpy(), expected[name])
    np.testing.assert_array_equal(y.numpy(), expected["target_ids"])
    np.testing.assert_array_equal(target_mask.numpy(), expected["target_mask"])


@pytest.mark.backend_independent
def test_too_little_text_and_odd_batches_are_refused(preprocessor):
    with pytest.raises(ValueError, match="fewer than the 32 one example"):
        PretrainingStream(["a short text"], preprocessor, 2, False, seed=0)
    with pytest.raises(ValueError, match="even batch size"):
        PretrainingStream(["text"], preprocessor, 3, True, seed=0)
    with pytest.raises(RunError, match="must be even"):
        PretrainConfig(batch_size=3).check()
    with pytest.raises(RunError, match="perm_size=100 must divide"):
        PretrainConfig(perm_size=100).check()


@pytest.mark.backend_independent
def test_evaluation_batches_are_filled_with_weightless_examples(
    preprocessor, reviews
):
    config = PretrainConfig(eval_batch_size=4, **SMALL)
    task = pretraining.PretrainTask(config, documents=reviews[:21])
    model = keras_xlnet.XLNetPermutationLM(
        keras_xlnet.XLNetBackbone(
            vocabulary_size=32000,
            num_layers=1,
            num_heads=2,
            hidden_dim=8,
            intermediate_dim=8,
        ),
        preprocessor=preprocessor,
    )
    (batch,) = list(task.evaluation_batches(model))
    x, y, weights = (np.asarray(part) for part in batch[:1] + batch[1:])
    expected = preprocessor(reviews[0:21:10])
    np.testing.assert_array_equal(y[:3], expected[1])
    np.testing.assert_array_equal(weights[:3], expected[2])
    assert (weights[3] == 0).all()


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--batch-size", "3"], "the batch per step must be even"),
        (["--perm-size", "100"], "perm_size=100 must divide reuse_length"),
        (["--memory-length", "-1"], "memory_length must be an integer"),
        (["--num-predict", "0"], "`num_predict` must be a positive integer"),
        ([], "Pass --data-dir, a folder of .txt files."),
        (["--data-dir", "nowhere"], "--data-dir nowhere holds no .txt"),
        (["--demo", "--num-predict", "5"], "drop --num-predict or drop"),
    ],
)
def test_bad_settings_end_in_one_error_line(flags, expected, tmp_path, capsys):
    code = pretrain.main(["--model-dir", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("error: ") and expected in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def run_demo(flags, cwd):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "pretrain.py"), *flags],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def demo_loss(language_model, stream, batches):
    """The mean permutation-LM loss over the stream's first batches (each
    without memory)."""
    losses = []
    for index in range(batches):
        batch = stream.batch(index)
        logits = language_model.lm_outputs(batch)["logits"]
        loss = permutation_lm_loss()(
            batch["target_ids"], logits, batch["target_mask"]
        )
        losses.append(float(keras.ops.convert_to_numpy(loss)))
    return float(np.mean(losses))


def test_the_demo_lowers_the_loss_and_its_preset_fine_tunes(tmp_path):
    """`tools/pretrain.py --demo` trains a tiny model from scratch on the
    bundled reviews: over 20 batches of its training text (forward, no
    memory) the trained model's loss is at least 0.5 below the fresh
    model's (measured: 5.94 -> 5.02). Its preset loads into
    `XLNetClassifier`, which fine-tunes."""
    jax_only()
    result = run_demo(["--demo"], tmp_path)
    assert result.stdout.startswith("DEMO:")
    folder = tmp_path / pretraining_demo.MODEL_DIR
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["total_training_steps"] == 300
    config = PretrainConfig(**{**pretraining_demo.SETTINGS, "bi_data": False})
    documents = pretraining_demo.demo_documents()
    fresh = pretraining_demo.demo_language_model(config, documents)
    trained = keras_xlnet.XLNetPermutationLM.from_preset(str(folder / "preset"))
    stream = PretrainingStream(
        pretraining.split_documents(documents)[0],
        trained.preprocessor,
        config.batch_size,
        bi_data=False,
        seed=1,
    )
    before, after = demo_loss(fresh, stream, 20), demo_loss(trained, stream, 20)
    print(f"demo loss: fresh {before:.3f}, trained {after:.3f}")
    assert after < before - 0.5
    classifier = keras_xlnet.XLNetClassifier.from_preset(
        str(folder / "preset"), num_classes=2
    )
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = classifier.fit(
        ["a great film", "dull, dull, dull."], [1, 0], epochs=2, verbose=0
    )
    assert np.isfinite(history.history["loss"]).all()


class SyntheticDomain:
    """A made-up language: two groups of 16 words and 6 fillers. Each
    domain document keeps to one group (80 % of its words, the rest
    fillers), so only the domain text tells which words belong
    together."""

    SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        words = []
        while len(words) < 38:
            word = "".join(self.rng.choice(self.SYLLABLES, 3))
            if word not in words:
                words.append(word)
        self.groups = [words[:16], words[16:32]]
        self.fillers = words[32:]

    def sentence(self, words):
        return " ".join(
            self.rng.choice(words)
            if self.rng.random() < 0.8
            else self.rng.choice(self.fillers)
            for _ in range(self.rng.integers(6, 11))
        )

    def documents(self, count):
        return [
            "\n".join(self.sentence(self.groups[i % 2]) for _ in range(4))
            for i in range(count)
        ]

    def labelled(self, count, words_of_group):
        """`count` sentences labelled by group, each of the group's words
        `words_of_group` (a slice) and fillers."""
        labels = self.rng.integers(0, 2, count)
        texts = [self.sentence(self.groups[y][words_of_group]) for y in labels]
        return texts, labels


def test_pretraining_on_a_domain_helps_fine_tuning_on_it(tmp_path):
    """A tiny model pretrained on the domain text (300 steps) and then
    fine-tuned on 16 labelled sentences that use 4 words of each group
    classifies sentences of the other 12 words at least 30 points better
    than the same model fine-tuned without that pretraining (measured with
    domain seeds 0, 1, 2: 100 / 100 / 100 % against 58 / 46 / 38 %)."""
    jax_only()
    from keras_xlnet.models.xlnet_tokenizer import train_vocabulary
    from keras_xlnet.recipes import imdb_demo

    domain = SyntheticDomain(seed=0)
    documents = domain.documents(300)
    tokenizer = keras_xlnet.XLNetTokenizer(
        proto=train_vocabulary(documents, tmp_path / "domain", 200)
    )
    config = PretrainConfig(
        model_dir=str(tmp_path / "pretrained"),
        memory_length=16,
        batch_size=8,
        train_steps=300,
        warmup_steps=30,
        learning_rate=3e-3,
        eval_every=300,
        dtype="float32",
        verbose=0,
        **SMALL,
    )

    def language_model(dtype):
        return keras_xlnet.XLNetPermutationLM(
            imdb_demo.demo_backbone(tokenizer, dtype=dtype),
            preprocessor=keras_xlnet.XLNetPermutationLMPreprocessor(
                tokenizer, **config.sampling_settings()
            ),
        )

    pretraining.run(config, language_model, documents)
    train_texts, train_labels = domain.labelled(16, slice(0, 4))
    test_texts, test_labels = domain.labelled(200, slice(4, None))

    def accuracy_after_fine_tuning(backbone):
        keras.utils.set_random_seed(0)
        classifier = keras_xlnet.XLNetClassifier(
            backbone,
            num_classes=2,
            preprocessor=keras_xlnet.XLNetTextClassifierPreprocessor(
                tokenizer, sequence_length=32
            ),
        )
        classifier.compile(
            optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"]
        )
        classifier.fit(
            train_texts, train_labels, batch_size=8, epochs=20, verbose=0
        )
        _, train_accuracy = classifier.evaluate(
            train_texts, train_labels, verbose=0
        )
        assert train_accuracy == 1.0  # Both learn the labelled words.
        return classifier.evaluate(test_texts, test_labels, verbose=0)[1]

    pretrained = keras_xlnet.XLNetClassifier.from_preset(
        str(tmp_path / "pretrained" / "preset"), num_classes=2
    ).backbone
    with_pretraining = accuracy_after_fine_tuning(pretrained)
    without = accuracy_after_fine_tuning(imdb_demo.demo_backbone(tokenizer))
    print(f"unseen words: {with_pretraining:.3f} pretrained, {without:.3f} not")
    assert with_pretraining >= 0.9 and with_pretraining > without + 0.3


def test_eval_mode_evaluates_a_checkpoint_or_the_preset(tmp_path):
    """`--mode eval` restores the checkpoint into the model of its run
    (the carried memory's rows are the run's batch), whatever the batch
    settings given now, and reproduces the run's evaluation."""
    jax_only()
    settings = dict(
        pretraining_demo.SETTINGS,
        model_dir=str(tmp_path / "run"),
        train_steps=2,
        warmup_steps=1,
        eval_every=2,
        verbose=0,
    )
    trained = runner.run(pretraining_demo.demo_task(PretrainConfig(**settings)))
    config = PretrainConfig(
        **{**settings, "mode": "eval", "batch_size": 4, "accumulation_steps": 2}
    )
    evaluated = runner.run(pretraining_demo.demo_task(config))
    assert evaluated["evaluated"] == "checkpoint 1"
    assert evaluated["eval_metrics"] == trained["eval_metrics"]
    # Without a checkpoint: the preset as it is (here the demo's fresh
    # model), a baseline.
    fresh = dataclasses.replace(config, model_dir=str(tmp_path / "none"))
    baseline = runner.run(pretraining_demo.demo_task(fresh))
    assert baseline["evaluated"] == "preset"
    assert baseline["eval_metrics"] != trained["eval_metrics"]

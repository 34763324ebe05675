"""XLNetPermutationLM against the Model Garden's pretraining fixtures and
Hugging Face's XLNetLMHeadModel: logits, loss, memory, generation."""

import sys

import keras
import numpy as np
import pytest
from conftest import REPO_ROOT
from conftest import TINY_CONFIG
from conftest import numpy
from conftest import reference_fixture
from keras_hub.src.tests.test_case import TestCase

import keras_xlnet
from keras_xlnet.models.xlnet_permutation_lm import permutation_lm_loss

sys.path.insert(0, str(REPO_ROOT / "tools"))
import convert_checkpoint as convert_tool  # noqa: E402

PRETRAIN_LAYOUTS = [
    "tf1_original_pretrain",
    "tf2_keras_xlnet_tfm230_pretrain",
    "tf2_xlnetbase_tfm240_pretrain",
]


def two_stream(inputs):
    return {
        name: inputs[name]
        for name in (
            "token_ids",
            "padding_mask",
            "segment_ids",
            "perm_mask",
            "target_mapping",
        )
    }


def loss_of(logits, target_ids, target_mask):
    return float(numpy(permutation_lm_loss()(target_ids, logits, target_mask)))


@pytest.mark.parametrize("folder_name", PRETRAIN_LAYOUTS)
def test_pretraining_fixture_converts_and_reproduces(folder_name, tmp_path):
    """Logits, query and content streams, new memory and loss of the
    Model Garden's pretraining model, from each layout's checkpoint."""
    folder, inputs, expected = reference_fixture(folder_name)
    preset = tmp_path / "preset"
    assert convert_tool.main([str(folder), str(preset)]) == 0
    # The run's memory settings (run_config.json): mem_len 4, reuse_len 6.
    lm = keras_xlnet.XLNetPermutationLM.from_preset(str(preset))
    lm.backbone.memory_length, lm.backbone.reuse_length = 4, 6
    assert isinstance(lm, keras_xlnet.XLNetPermutationLM)
    memory = [inputs["mems"][layer] for layer in range(2)]
    outputs = lm.lm_outputs(two_stream(inputs), memory=memory)
    for name, key in [
        ("logits", "lm_logits"),
        ("query_output", "query_output"),
        ("sequence_output", "sequence_output"),
    ]:
        np.testing.assert_allclose(
            numpy(outputs[name]), expected[key], atol=1e-5, err_msg=name
        )
    np.testing.assert_allclose(
        np.stack([numpy(m) for m in outputs["new_memory"]]),
        expected["new_mems"],
        atol=1e-5,
    )
    loss = loss_of(
        outputs["logits"], inputs["target_ids"], inputs["target_mask"]
    )
    np.testing.assert_allclose(loss, expected["lm_loss"], rtol=1e-5)
    # Without memory input the model is the task's `predict`.
    no_memory = lm.lm_outputs(two_stream(inputs))["logits"]
    np.testing.assert_allclose(
        lm.predict(two_stream(inputs), verbose=0), numpy(no_memory), atol=1e-5
    )


def test_the_lm_bias_is_loaded_from_each_layout():
    biases = []
    for folder_name in PRETRAIN_LAYOUTS:
        folder, _, _ = reference_fixture(folder_name)
        loaded = keras_xlnet.load_checkpoint(folder)
        assert loaded.classifier is None
        biases.append(numpy(loaded.language_model.lm_head.bias))
        assert not any("lm" in key for key in loaded.ignored)
    assert np.abs(biases[0]).max() > 0.1  # Random values, not zeros.
    for bias in biases[1:]:
        np.testing.assert_array_equal(bias, biases[0])


def hf_lm_inputs(rng, batch=2, length=7, predictions=3, vocabulary=99):
    """Batch-major inputs with a left-padded row, a random perm mask and
    target mapping, as Hugging Face takes them."""
    token_ids = rng.integers(10, vocabulary, (batch, length))
    padding_mask = np.ones((batch, length), "int32")
    padding_mask[1, :2] = 0
    token_ids[1, :2] = 5
    segment_ids = np.zeros((batch, length), "int32")
    segment_ids[:, length // 2 :] = 1
    segment_ids[1, :2] = 3
    perm_mask = (rng.random((batch, length, length)) < 0.4).astype("float32")
    target_mapping = np.zeros((batch, predictions, length), "float32")
    for row in range(batch):
        positions = rng.choice(np.arange(2, length), predictions, False)
        target_mapping[row, np.arange(predictions), np.sort(positions)] = 1
    return {
        "token_ids": token_ids.astype("int32"),
        "padding_mask": padding_mask,
        "segment_ids": segment_ids,
        "perm_mask": perm_mask,
        "target_mapping": target_mapping,
    }


def test_logits_loss_and_memory_equal_huggingface(hf_peer):
    """A `save_pretrained` folder of `XLNetLMHeadModel`: query-stream
    logits with perm mask, target mapping and memory, the loss for given
    labels, and the new memory."""
    peer = hf_peer("lm", mem_len=5, reuse_len=4)
    lm = keras_xlnet.load_checkpoint(
        peer.folder, memory_length=5, reuse_length=4
    ).language_model
    rng = np.random.default_rng(0)
    inputs = hf_lm_inputs(rng)
    memory = [rng.normal(size=(2, 3, 32)).astype("float32") for _ in range(2)]
    labels = rng.integers(0, 99, (2, 3))
    reference = peer(
        inputs,
        memory=memory,
        perm_mask=inputs["perm_mask"],
        target_mapping=inputs["target_mapping"],
        labels=labels,
    )
    outputs = lm.lm_outputs(inputs, memory=memory)
    np.testing.assert_allclose(
        numpy(outputs["logits"]), reference.logits.numpy(), atol=1e-5
    )
    loss = loss_of(outputs["logits"], labels, np.ones((2, 3), "float32"))
    np.testing.assert_allclose(loss, float(reference.loss), rtol=1e-5)
    for ours, theirs in zip(outputs["new_memory"], reference.mems):
        np.testing.assert_allclose(
            numpy(ours), np.transpose(theirs.numpy(), (1, 0, 2)), atol=1e-5
        )


def test_a_loss_weighted_by_target_mask_equals_huggingface_ignoring(hf_peer):
    """Padded targets (`target_mask` 0) are Hugging Face's ignored labels."""
    peer = hf_peer("lm")
    lm = keras_xlnet.load_checkpoint(peer.folder).language_model
    inputs = hf_lm_inputs(np.random.default_rng(1))
    labels = np.array([[11, 12, 13], [14, 15, 16]])
    target_mask = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    reference = peer(
        inputs,
        perm_mask=inputs["perm_mask"],
        target_mapping=inputs["target_mapping"],
        labels=np.where(target_mask > 0, labels, -100),
    )
    logits = lm.predict(inputs, verbose=0)
    loss = loss_of(logits, labels, target_mask)
    np.testing.assert_allclose(loss, float(reference.loss), rtol=1e-5)


def test_lm_projection_and_untied_output_are_refused(tmp_path, hf_peer):
    import torch

    folder, _, _ = reference_fixture("tf2_keras_xlnet_tfm230_pretrain")
    from keras_xlnet.checkpoints import layouts

    with pytest.raises(keras_xlnet.CheckpointError, match="use_proj=True"):
        layouts.check_lm_projection(
            ["model/lmloss_layer/proj_layer/kernel/.ATTRIBUTES/VARIABLE_VALUE"]
        )
    peer = hf_peer("lm")
    peer.model.config.tie_word_embeddings = False
    with torch.no_grad():
        peer.model.lm_loss.weight = torch.nn.Parameter(
            peer.model.lm_loss.weight.clone() + 1
        )
    untied = tmp_path / "untied"
    peer.model.save_pretrained(untied, safe_serialization=True)
    with pytest.raises(keras_xlnet.CheckpointError, match="lm_loss.weight"):
        keras_xlnet.load_checkpoint(untied)
    assert folder.exists()


def test_a_preset_without_lm_head_starts_with_a_zero_bias(fixture_preset):
    """The classifier fixture holds no LM bias: the documented zero bias;
    its classifier stays loadable from a converted LM preset too."""
    preset, _, _ = fixture_preset
    lm = keras_xlnet.XLNetPermutationLM.from_preset(preset)
    np.testing.assert_array_equal(numpy(lm.lm_head.bias), 0)


def test_an_lm_preset_loads_into_the_classifier(tmp_path):
    folder, _, _ = reference_fixture("tf1_original_pretrain")
    preset = tmp_path / "preset"
    keras_xlnet.convert_checkpoint(folder, preset)
    classifier = keras_xlnet.XLNetClassifier.from_preset(
        str(preset), num_classes=3, preprocessor=None
    )
    lm = keras_xlnet.XLNetPermutationLM.from_preset(str(preset))
    np.testing.assert_array_equal(
        numpy(classifier.backbone.token_embedding.embeddings),
        numpy(lm.backbone.token_embedding.embeddings),
    )


class XLNetPermutationLMHarnessTest(TestCase):
    """KerasHub's own task checks: predict and fit on raw strings, tf.data
    and split preprocessing, compile defaults, saving."""

    @pytest.fixture(autouse=True)
    def _vocabulary(self, tiny_vocabulary):
        self.vocabulary = tiny_vocabulary

    def setUp(self):
        tokenizer = keras_xlnet.XLNetTokenizer(proto=self.vocabulary)
        self.preprocessor = keras_xlnet.XLNetPermutationLMPreprocessor(
            tokenizer,
            sequence_length=12,
            reuse_length=4,
            perm_size=4,
            num_predict=3,
        )
        self.backbone = keras_xlnet.XLNetBackbone(
            **{**TINY_CONFIG, "vocabulary_size": tokenizer.vocabulary_size()}
        )
        self.init_kwargs = {
            "backbone": self.backbone,
            "preprocessor": self.preprocessor,
        }
        self.train_data = (["the film was great", "a dull story, 1,000 times"],)
        self.input_data = self.preprocessor(*self.train_data)[0]

    def test_task_basics(self):
        self.run_task_test(
            cls=keras_xlnet.XLNetPermutationLM,
            init_kwargs=self.init_kwargs,
            train_data=self.train_data,
            expected_output_shape=(2, 3, self.backbone.vocabulary_size),
        )

    def test_saved_model(self):
        self.run_model_saving_test(
            cls=keras_xlnet.XLNetPermutationLM,
            init_kwargs=self.init_kwargs,
            input_data=self.input_data,
        )


# === Generation ===


def hf_generate(peer, prompt_ids, new_tokens):
    import torch

    with torch.no_grad():
        output = peer.model.generate(
            torch.tensor(prompt_ids, dtype=torch.long),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            use_mems=True,
            pad_token_id=5,
        )
    return output.numpy()


def test_greedy_generation_equals_huggingface(hf_peer):
    """20 new tokens on two prompts, token for token, on every backend;
    on JAX and TensorFlow the compiled step is traced once for the whole
    generation."""
    peer = hf_peer("lm", initializer_range=1.0)
    lm = keras_xlnet.load_checkpoint(peer.folder).language_model
    lm.compile(sampler="greedy")
    new_tokens = 20
    for prompt in ([[17, 40, 23, 61, 8]], [[30, 31]]):
        expected = hf_generate(peer, prompt, new_tokens)
        length = len(prompt[0]) + new_tokens
        token_ids = np.full((1, length), 5, "int32")
        token_ids[0, : len(prompt[0])] = prompt[0]
        padding_mask = np.arange(length)[None, :] < len(prompt[0])
        traces = []
        original = lm._generation_step

        def counted(*args, original=original):
            traces.append(1)
            return original(*args)

        lm._generation_step = counted
        lm.generate_function = None
        generated = lm.generate(
            {"token_ids": token_ids, "padding_mask": padding_mask},
            stop_token_ids=None,
        )
        del lm._generation_step
        np.testing.assert_array_equal(generated["token_ids"], expected)
        assert len(set(expected[0, len(prompt[0]) :])) > 2  # Not a loop.
        if keras.config.backend() != "torch":  # torch runs eagerly.
            assert len(traces) == 1


def test_training_updates_the_backbone_and_the_bias():
    """Every weight trains on every backend (the two-stream pass runs
    outside the functional graph, so tracking is checked)."""
    backbone = keras_xlnet.XLNetBackbone(**TINY_CONFIG)
    lm = keras_xlnet.XLNetPermutationLM(backbone)
    assert len(lm.trainable_weights) == len(backbone.trainable_weights) + 1
    inputs = hf_lm_inputs(np.random.default_rng(2))
    before = [numpy(w).copy() for w in lm.trainable_weights]
    lm.compile(optimizer=keras.optimizers.SGD(0.1))
    lm.fit(inputs, np.array([[11, 12, 13], [14, 15, 16]]), verbose=0)
    changed = [
        not np.array_equal(b, numpy(w))
        for b, w in zip(before, lm.trainable_weights)
    ]
    # Only the segment embedding of unused rows may stay (zero gradient).
    assert sum(changed) >= len(changed) - 2, changed


@pytest.mark.parametrize("bi_data", [False, True])
def test_training_steps_follow_the_pretraining_stream(bi_data):
    """`use_pretraining_stream`: each training step attends to the memory
    the previous step left, and with `bi_data` reads its second half
    backward, as chained `lm_outputs` calls of a `bi_data` backbone with
    the same weights give it (learning rate 0, so the weights stay);
    prediction and evaluation read forward, without memory."""
    config = dict(
        TINY_CONFIG,
        memory_length=5,
        reuse_length=4,
        dropout=0.0,
        attention_dropout=0.0,
    )
    lm = keras_xlnet.XLNetPermutationLM(keras_xlnet.XLNetBackbone(**config))
    lm.use_pretraining_stream(
        batch_size=2, memory_length=5, reuse_length=4, bi_data=bi_data
    )
    reference = keras_xlnet.XLNetPermutationLM(
        keras_xlnet.XLNetBackbone(**config, bi_data=bi_data)
    )
    reference.set_weights(lm.get_weights()[:-1])  # All but the memory.
    rng = np.random.default_rng(3)
    batches = []
    for _ in range(3):
        inputs = hf_lm_inputs(rng)
        inputs["padding_mask"][:] = 1
        batches.append((inputs, rng.integers(10, 99, (2, 3))))
    # Zeros before the first step, as the original's initial memory.
    memory, expected_losses = [np.zeros((2, 5, 32), "float32")] * 2, []
    for inputs, targets in batches:
        outputs = reference.lm_outputs(inputs, memory=memory)
        expected_losses.append(
            loss_of(outputs["logits"], targets, np.ones((2, 3)))
        )
        memory = outputs["new_memory"]
    lm.compile(optimizer=keras.optimizers.SGD(0.0))
    losses = []
    for x, y in batches:
        lm.reset_metrics()
        losses.append(float(lm.train_on_batch(x, y, return_dict=True)["loss"]))
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5)
    np.testing.assert_allclose(
        numpy(lm.carried_memory.memory),
        np.stack([numpy(m) for m in memory]),
        atol=1e-5,
    )
    assert np.abs(numpy(memory[0])).sum() > 0
    # Prediction and evaluation: forward, no memory; training unchanged.
    forward = numpy(lm.lm_outputs(batches[0][0])["logits"])
    np.testing.assert_allclose(
        lm.predict(batches[0][0], verbose=0), forward, atol=1e-5
    )
    evaluated = lm.evaluate(*batches[0], verbose=0, return_dict=True)
    expected = loss_of(forward, batches[0][1], np.ones((2, 3)))
    np.testing.assert_allclose(evaluated["loss"], expected, rtol=1e-5)
    assert not lm.backbone.position_encoding.bi_data


@pytest.mark.parametrize("sampler", ["greedy", "top_k", "top_p", "beam"])
def test_generate_takes_and_returns_strings(tiny_vocabulary, sampler):
    """KerasHub's `generate` on every backend with its samplers: strings
    in, strings out, each the prompt continued; greedy strings are the
    detokenized greedy ids."""
    tokenizer = keras_xlnet.XLNetTokenizer(proto=tiny_vocabulary)
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(
        **{**TINY_CONFIG, "vocabulary_size": tokenizer.vocabulary_size()}
    )
    preprocessor = keras_xlnet.XLNetPermutationLMPreprocessor(
        tokenizer,
        sequence_length=16,
        reuse_length=8,
        perm_size=8,
        num_predict=4,
    )
    lm = keras_xlnet.XLNetPermutationLM(backbone, preprocessor=preprocessor)
    lm.compile(sampler=sampler)
    prompts = ["the film was", "a great plot"]
    texts = lm.generate(prompts, max_length=24, stop_token_ids=None)
    assert isinstance(texts, list) and len(texts) == 2
    for prompt, text in zip(prompts, texts):
        assert text.startswith(prompt) and len(text) > len(prompt)
    if sampler == "greedy":
        inputs = preprocessor.generate_preprocess(prompts, 24)
        lm.preprocessor = None  # Ids in, ids out (KerasHub's way).
        ids = lm.generate(inputs, stop_token_ids=None)
        assert preprocessor.generate_postprocess(ids) == texts


def test_generation_stops_at_a_stop_token(hf_peer):
    """The row ends with its first stop token (kept, as KerasHub keeps
    it); later positions are masked out."""
    peer = hf_peer("lm", initializer_range=1.0)
    lm = keras_xlnet.load_checkpoint(peer.folder).language_model
    lm.compile(sampler="greedy")
    token_ids = np.full((1, 12), 5, "int32")
    token_ids[0, :3] = [17, 40, 23]
    inputs = {"token_ids": token_ids, "padding_mask": token_ids != 5}
    full = numpy(lm.generate(inputs, stop_token_ids=None)["token_ids"])[0]
    # The first new token that is not among the ones before it.
    end = next(i for i in range(4, 12) if full[i] not in full[3:i])
    stopped = lm.generate(inputs, stop_token_ids=[int(full[end])])
    mask = numpy(stopped["padding_mask"])[0]
    np.testing.assert_array_equal(mask, np.arange(12) <= end)
    np.testing.assert_array_equal(
        numpy(stopped["token_ids"])[0, : end + 1], full[: end + 1]
    )


def test_the_stream_layout_decides_bi_data_and_is_set_once():
    """A backbone made with `bi_data=True` reads forward outside training
    steps and saves as forward; a second layout is refused."""
    config = dict(TINY_CONFIG, dropout=0.0, attention_dropout=0.0)
    lm = keras_xlnet.XLNetPermutationLM(
        keras_xlnet.XLNetBackbone(**config, bi_data=True)
    )
    forward = keras_xlnet.XLNetPermutationLM(
        keras_xlnet.XLNetBackbone(**config)
    )
    forward.set_weights(lm.get_weights())
    lm.use_pretraining_stream(batch_size=2)
    assert lm.backbone.get_config()["bi_data"] is False
    inputs = hf_lm_inputs(np.random.default_rng(4))
    np.testing.assert_allclose(
        lm.predict(inputs, verbose=0),
        forward.predict(inputs, verbose=0),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="called on this model already"):
        lm.use_pretraining_stream(batch_size=2)

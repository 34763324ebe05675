"""XLNetBackbone behaviour: serialisation, dtypes, shapes, export, errors."""

import keras
import numpy as np
import pytest
from conftest import TINY_CONFIG
from conftest import max_diff_on_real_tokens
from conftest import numpy
from conftest import packed_batch
from conftest import right_padded
from keras_hub.src.tests.test_case import TestCase

import keras_xlnet

TINY = dict(TINY_CONFIG, dropout=0.0, attention_dropout=0.0)


def random_backbone(dtype=None, **overrides):
    keras.utils.set_random_seed(0)
    backbone = keras_xlnet.XLNetBackbone(**{**TINY, **overrides}, dtype=dtype)
    # Larger weights than the default init, so that every term matters.
    rng = np.random.default_rng(0)
    for variable in backbone.weights:
        if "layer_norm" not in variable.path:
            variable.assign(
                rng.normal(0, 0.3, variable.shape).astype(variable.dtype)
            )
    return backbone


def test_parameter_count_of_xlnet_large(zero_initializers):
    backbone = keras_xlnet.XLNetBackbone(
        vocabulary_size=32000,
        num_layers=24,
        num_heads=16,
        hidden_dim=1024,
        intermediate_dim=4096,
    )
    assert backbone.count_params() == 360_268_800


def test_get_config_round_trip_reproduces_outputs():
    backbone = random_backbone()
    inputs = packed_batch()
    clone = keras_xlnet.XLNetBackbone.from_config(backbone.get_config())
    clone.set_weights(backbone.get_weights())
    np.testing.assert_array_equal(numpy(clone(inputs)), numpy(backbone(inputs)))
    assert clone.get_config() == backbone.get_config()


def test_keras_file_round_trip(tmp_path):
    backbone = random_backbone(memory_length=4)
    inputs = packed_batch()
    path = tmp_path / "backbone.keras"
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, keras_xlnet.XLNetBackbone)
    np.testing.assert_allclose(
        numpy(restored(inputs)), numpy(backbone(inputs)), atol=1e-6
    )
    # The query-stream weight, outside the functional graph, survives too.
    np.testing.assert_array_equal(
        numpy(restored.query_stream_embedding.mask_embedding),
        numpy(backbone.query_stream_embedding.mask_embedding),
    )


def test_preset_round_trip(tmp_path):
    backbone = random_backbone()
    backbone.save_to_preset(tmp_path / "preset")
    restored = keras_xlnet.XLNetBackbone.from_preset(str(tmp_path / "preset"))
    inputs = packed_batch()
    np.testing.assert_allclose(
        numpy(restored(inputs)), numpy(backbone(inputs)), atol=1e-6
    )


def test_one_instance_runs_any_length_and_batch():
    backbone = random_backbone()
    short = packed_batch(lengths=(5, 3), total=5)
    long = packed_batch(lengths=(12, 7, 2), total=12)
    assert tuple(backbone(short).shape) == (2, 5, 32)
    assert tuple(backbone(long).shape) == (3, 12, 32)
    # Results do not depend on what else is in the batch or on padding.
    alone = {key: value[1:2, -7:] for key, value in long.items()}
    np.testing.assert_allclose(
        numpy(backbone(alone))[0], numpy(backbone(long))[1, -7:], atol=1e-5
    )


def test_padding_side_does_not_change_real_tokens():
    backbone = random_backbone()
    left = packed_batch(lengths=(9, 4))
    right = right_padded(left)
    np.testing.assert_allclose(
        numpy(backbone(right))[1, :4], numpy(backbone(left))[1, -4:], atol=1e-5
    )


# The outputs are in the 16-bit compute dtype, whose spacing at the
# outputs' magnitude (2 to 4) is 1.6e-2 (bfloat16) and 2.0e-3 (float16):
# the bounds allow about 3 units of the last place after two layers.
@pytest.mark.parametrize(
    "policy, bound", [("mixed_bfloat16", 4e-2), ("mixed_float16", 8e-3)]
)
def test_mixed_precision_is_finite_and_close(policy, bound):
    keras.utils.set_random_seed(0)
    reference = keras_xlnet.XLNetBackbone(**TINY)
    mixed = keras_xlnet.XLNetBackbone(**TINY, dtype=policy)
    mixed.set_weights(reference.get_weights())
    # Row 1 is fully padded, row 2 has a single real token.
    inputs = packed_batch(lengths=(9, 0, 1))
    expected = numpy(reference(inputs))
    outputs = mixed(inputs)
    compute_dtype = policy.removeprefix("mixed_")
    assert keras.backend.standardize_dtype(outputs.dtype) == compute_dtype
    actual = numpy(outputs)
    assert np.isfinite(actual).all()
    assert np.abs(expected).max() < 4
    assert (
        max_diff_on_real_tokens(actual, expected, inputs["padding_mask"])
        < bound
    )
    # KerasHub's contract: every sublayer computes in the policy's dtype
    # (layer norms keep their statistics in float32 inside).
    block = mixed.encoder_blocks[0]
    assert block.inner_dense.compute_dtype == compute_dtype
    assert block.layer_norm.compute_dtype == compute_dtype
    assert block.layer_norm.gamma.dtype == "float32"


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_with_large_weights_stays_finite(policy):
    reference = random_backbone()
    mixed = random_backbone(dtype=policy)
    mixed.set_weights(reference.get_weights())
    outputs = mixed.encode(
        **packed_batch(lengths=(9, 0, 1)),
        memory=[np.ones((3, 2, 32), "float32")] * 2,
    )
    assert np.isfinite(numpy(outputs["sequence_output"])).all()


def test_bfloat16_policy_runs():
    backbone = random_backbone(dtype="bfloat16")
    outputs = numpy(backbone(packed_batch()))
    assert np.isfinite(outputs).all()


def test_dropout_only_in_training():
    backbone = random_backbone(dropout=0.5, attention_dropout=0.5)
    inputs = packed_batch()
    evaluation = numpy(backbone(inputs, training=False))
    np.testing.assert_array_equal(evaluation, numpy(backbone(inputs)))
    assert (
        np.abs(numpy(backbone(inputs, training=True)) - evaluation).max() > 1e-2
    )


def test_bi_data_needs_an_even_batch():
    backbone = random_backbone(bi_data=True)
    with pytest.raises(ValueError, match="even batch size"):
        backbone(packed_batch(lengths=(9, 6, 3)))


def test_constructor_errors():
    with pytest.raises(ValueError, match="attention_type"):
        keras_xlnet.XLNetBackbone(**TINY, attention_type="causal")
    with pytest.raises(ValueError, match="Unknown activation 'swish'"):
        keras_xlnet.XLNetBackbone(**TINY, activation="swish")


def test_encode_checks_memory_depth():
    backbone = random_backbone()
    inputs = packed_batch()
    with pytest.raises(ValueError, match="one tensor per layer"):
        backbone.encode(**inputs, memory=[np.zeros((3, 2, 32), "float32")])


def test_encode_without_memory_matches_call():
    backbone = random_backbone()
    inputs = packed_batch()
    outputs = backbone.encode(**inputs)
    np.testing.assert_allclose(
        numpy(outputs["sequence_output"]), numpy(backbone(inputs)), atol=1e-6
    )
    # memory_length=None keeps every position: the input of each layer.
    assert numpy(outputs["new_memory"][0]).shape == (3, 9, 32)
    # memory_length=0 keeps none.
    backbone.memory_length = 0
    assert numpy(backbone.encode(**inputs)["new_memory"][0]).shape == (3, 0, 32)


@pytest.mark.parametrize("name", ["memory_length", "reuse_length"])
@pytest.mark.parametrize("value", [-1, 2.5, "all"])
def test_bad_memory_settings_are_refused(name, value):
    with pytest.raises(ValueError, match=f"`{name}` must be a non-negative"):
        keras_xlnet.XLNetBackbone(**TINY_CONFIG, **{name: value})


def test_export_runs_two_lengths(tmp_path):
    if keras.config.backend() != "tensorflow":
        pytest.skip("SavedModel export is checked on the TensorFlow backend")
    import tensorflow as tf

    backbone = random_backbone()
    backbone.export(str(tmp_path / "saved"), format="tf_saved_model")
    served = tf.saved_model.load(str(tmp_path / "saved"))
    for total, lengths in ((9, (9, 4)), (14, (14, 3))):
        inputs = packed_batch(lengths=lengths, total=total)
        np.testing.assert_allclose(
            served.serve(inputs).numpy(), numpy(backbone(inputs)), atol=1e-5
        )


class XLNetBackboneHarnessTest(TestCase):
    """KerasHub's own backbone checks: serialisation, variable lengths,
    compiled predict, dtype policies, quantization, saving, presets."""

    def setUp(self):
        self.init_kwargs = dict(TINY)
        self.input_data = packed_batch()

    def test_backbone_basics(self):
        self.run_backbone_test(
            cls=keras_xlnet.XLNetBackbone,
            init_kwargs=self.init_kwargs,
            input_data=self.input_data,
            expected_output_shape=(3, 9, 32),
        )

    def test_saved_model(self):
        self.run_model_saving_test(
            cls=keras_xlnet.XLNetBackbone,
            init_kwargs=self.init_kwargs,
            input_data=self.input_data,
        )

    @pytest.fixture(autouse=True)
    def _fixture_preset(self, fixture_preset):
        self.preset, self.preset_inputs, self.preset_expected = fixture_preset

    def test_local_preset(self):
        # The Model Garden's hidden states of the first (unpadded) row.
        self.run_preset_test(
            cls=keras_xlnet.XLNetBackbone,
            preset=self.preset,
            input_data=self.preset_inputs,
            expected_partial_output=self.preset_expected["sequence_output"][
                0, 0
            ],
        )


@pytest.mark.parametrize("token_id", [99, -1])
def test_debug_switch_checks_token_ids_inside_the_backbone(token_id):
    backbone = random_backbone()
    bad = packed_batch()
    bad["token_ids"][0, 3] = token_id
    message = r"`token_ids` must lie in \[0, 99\)"
    keras_xlnet.enable_input_checks()
    try:
        with pytest.raises(Exception, match=message):
            backbone.predict_on_batch(bad)  # Compiled, on JAX and TF.
        with pytest.raises(Exception, match=message):
            backbone(bad)
    finally:
        keras_xlnet.enable_input_checks(False)

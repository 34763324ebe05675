"""The correction of Keras' fit under tf.distribute vouches only for the
Keras it was written for."""

import pytest

from keras_xlnet.training import tf_distributed_fit
from keras_xlnet.training.tf_distributed_fit import KerasVersionError

pytestmark = pytest.mark.backend_independent


def test_the_installed_keras_is_one_the_correction_was_tested_for():
    tf_distributed_fit.check_keras()


@pytest.mark.parametrize("version", ["3.16.0", "3.1.5", "4.0.0"])
def test_another_keras_version_is_refused_naming_the_upstream_issue(version):
    with pytest.raises(KerasVersionError) as error:
        tf_distributed_fit.check_keras(version)
    message = str(error.value)
    assert f"Keras {version} is not one of ('3.15',)" in message
    assert "keras-team/keras#20585" in message


def test_a_changed_signature_is_refused_before_fit(monkeypatch):
    trainer = tf_distributed_fit.trainer
    monkeypatch.setattr(
        trainer, "reduce_per_replica", lambda values, strategy: values
    )
    with pytest.raises(KerasVersionError, match="reduce_per_replica takes"):
        with tf_distributed_fit.fixed_keras():
            pass
    # Nothing was replaced.
    assert trainer.TensorFlowTrainer._maybe_symbolic_build.__name__ == (
        "_maybe_symbolic_build"
    )

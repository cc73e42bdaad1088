"""Shared fixtures. flowlab is imported first: it selects Keras 2 for TensorFlow."""

import matplotlib

matplotlib.use("Agg")

import flowlab  # noqa: E402,F401  (before TensorFlow)
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from flowlab.flows import FlowConfig, make_flow  # noqa: E402


@pytest.fixture
def small_config() -> FlowConfig:
    """A small MAF chain: the lab's structure with narrow networks, fast to train."""
    return FlowConfig(num_layers=2, hidden_units=(16, 16), seed=3)


@pytest.fixture
def small_flow(small_config):
    return make_flow(small_config)


def autodiff_log_det(bijector, x) -> tf.Tensor:
    """log|det J| of ``bijector.forward`` at each row of ``x``, from TensorFlow's Jacobian."""
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bijector.forward(x)
    jacobian = tape.batch_jacobian(y, x)
    return tf.math.log(tf.abs(tf.linalg.det(jacobian)))

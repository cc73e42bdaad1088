"""The contract breaks of issue 36, one test each, as the issue states them."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import bijectivity, flows
from flowlab.studies.digits import flows as image_flows
from flowlab.flows import FlowConfig, make_flow

tfb, tfd = tfp.bijectors, tfp.distributions
X = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)


def _perturb(flow, seed: int):
    rng = np.random.default_rng(seed)
    for variable in flow.trainable_variables:
        variable.assign(variable + rng.normal(0.0, 0.3, variable.shape).astype(np.float32))
    return flow


def _spline_flow(seed: int = 0):
    return make_flow(FlowConfig(flow="spline", num_layers=2, hidden_units=(8,), seed=0))


def test_1_a_trained_and_a_fresh_spline_flow_differ_inside_one_tf_function():
    trained, fresh = _perturb(_spline_flow(), 1), _spline_flow()
    both = tf.function(lambda x: (trained.log_prob(x), fresh.log_prob(x)))(tf.constant(X))
    np.testing.assert_allclose(both[0].numpy(), trained.log_prob(X).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(both[1].numpy(), fresh.log_prob(X).numpy(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(both[0].numpy(), both[1].numpy())


def test_1_copy_of_a_spline_layer_keeps_its_weights():
    layer = _perturb(_spline_flow(), 2).bijector.bijectors[0]
    np.testing.assert_allclose(layer.copy().forward(X).numpy(), layer.forward(X).numpy(), rtol=1e-6)


def test_2_the_memo_never_serves_a_log_det_without_gradients_or_a_stale_one():
    layer = _perturb(_spline_flow(), 3).bijector.bijectors[0]
    y = tf.constant(X)
    layer.inverse(y)
    with tf.GradientTape() as tape:
        ildj = layer.inverse_log_det_jacobian(y, event_ndims=1)
    assert all(g is not None for g in tape.gradient(ildj, layer.trainable_variables))
    y = tf.constant(X)  # a new tensor: TFP's own cache remembers the ildj it returned for the last one
    layer.inverse(y)
    _perturb(layer, 4)
    np.testing.assert_allclose(layer.inverse_log_det_jacobian(y, event_ndims=1).numpy(),
                               layer.inverse_log_det_jacobian(tf.constant(X), event_ndims=1).numpy(), rtol=1e-6)


def test_2_log_prob_still_runs_each_spline_network_once():
    """The memo still saves the second pass inside one density evaluation."""
    flow = _perturb(_spline_flow(), 5)
    calls = []
    for layer in flow.bijector.bijectors[::2]:
        original = layer._inverse_and_log_det
        layer._inverse_and_log_det = lambda y, original=original: calls.append(1) or original(y)
    flow.log_prob(X)
    assert len(calls) == 2


@pytest.mark.parametrize("flow", ["realnvp", "spline", "maf", "iaf"])
def test_3_a_point_and_a_3x5_batch_keep_their_shapes(flow):
    dist = make_flow(FlowConfig(flow=flow, num_layers=2, hidden_units=(8,)))
    assert dist.sample(seed=1).shape == (2,) and dist.log_prob(X[0]).shape == ()
    assert dist.sample([3, 5], seed=1).shape == (3, 5, 2)
    batch = np.resize(X, (15, 2))
    np.testing.assert_allclose(dist.log_prob(batch.reshape(3, 5, 2)).numpy().reshape(-1),
                               dist.log_prob(batch).numpy(), rtol=1e-5, atol=1e-5)


def test_4_image_flow_copy_keeps_the_trained_weights():
    flow = image_flows.make_image_flow(image_flows.ImageFlowConfig(couplings=(1, 1, 1), hidden_channels=4))
    _perturb(flow, 6)
    x = np.random.default_rng(1).uniform(0.5, 16.5, size=(3, 64)).astype(np.float32)
    np.testing.assert_allclose(flow.copy().log_prob(x).numpy(), flow.log_prob(x).numpy(), rtol=1e-5)


def test_4_flow_copy_keeps_the_trained_weights():
    flow = _perturb(make_flow(FlowConfig(flow="realnvp", num_layers=2, hidden_units=(8,))), 7)
    np.testing.assert_allclose(flow.copy().log_prob(X).numpy(), flow.log_prob(X).numpy(), rtol=1e-6)


def test_5_an_inverse_returning_nan_is_not_a_round_trip():
    verdict = bijectivity.check_bijection(np.sinh, (-2.0, 2.0), inverse=lambda y: np.full_like(y, np.nan))
    assert not verdict.bijective and "inverse does not undo f" in verdict.reason


def test_5_a_domain_too_wide_for_float64_is_refused_with_a_reason():
    with pytest.raises(ValueError, match=r"domain must hold pairs whose width high - low is a finite float64"):
        bijectivity.check_bijection(lambda x: x, (-1e308, 1e308))
    assert bijectivity.check_bijection(lambda x: x, (-1e307, 1e307)).bijective


def test_7_actnorm_declares_a_constant_jacobian_and_its_dtype():
    norm = flows.ActNorm((2,))
    assert norm.is_constant_jacobian and norm.dtype == tf.float32
    with pytest.raises((TypeError, ValueError), match="float"):
        norm.forward(tf.zeros([1, 2], tf.float64))


@pytest.mark.parametrize("make, ndim", [
    (lambda: flows.SplineCoupling(2, (4,), "relu", seed=0), 2),
    (lambda: image_flows.ImageCoupling((2, 2, 1), image_flows.checkerboard((2, 2, 1), 0), 4, seed=0, layer=0), 4),
], ids=["SplineCoupling", "ImageCoupling"])
def test_7_couplings_declare_float32(make, ndim):
    layer = make()
    assert layer.dtype == tf.float32
    with pytest.raises((TypeError, ValueError), match="float"):
        layer.inverse(tf.zeros([1, ndim], tf.float64))

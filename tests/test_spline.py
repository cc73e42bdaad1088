"""The written-out rational-quadratic spline: the same numbers as TFP's
RationalQuadraticSpline, exact inverses, log-derivatives that match autodiff, and a
coupling layer that runs its network once per log_prob."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import flows
from flowlab.flows import spline
from flowlab.flows import FlowConfig, make_flow

tfb = tfp.bijectors
BINS, BOUND, MIN_SIZE = 8, 5.0, 1e-2


def _random_spline(seed: int, shape: tuple[int, ...]):
    """Bin widths/heights and slopes like the coupling network's, for points of ``shape``."""
    rng = np.random.default_rng(seed)

    def sizes():
        logits = rng.normal(scale=1.5, size=shape + (BINS,)).astype(np.float32)
        return tf.nn.softmax(logits, axis=-1) * (2 * BOUND - BINS * MIN_SIZE) + MIN_SIZE

    slopes = tf.nn.softplus(rng.normal(size=shape + (BINS - 1,)).astype(np.float32)) + MIN_SIZE
    return sizes(), sizes(), slopes


# points inside the interval, outside it on both sides, and on its edges
POINTS = np.concatenate([np.random.default_rng(7).uniform(-7, 7, size=(2000, 2)),
                         [[-BOUND, BOUND], [0.0, 4.999]]]).astype(np.float32)


def test_forward_and_log_derivative_match_tfp():
    widths, heights, slopes = _random_spline(0, POINTS.shape)
    reference = tfb.RationalQuadraticSpline(widths, heights, slopes, range_min=-BOUND)
    v, log_derivative = spline.rqs_evaluate(POINTS, widths, heights, slopes, BOUND)
    np.testing.assert_allclose(v.numpy(), reference.forward(POINTS).numpy(), atol=5e-5)
    np.testing.assert_allclose(log_derivative.numpy(),
                               reference.forward_log_det_jacobian(POINTS, event_ndims=0).numpy(),
                               atol=5e-5)
    assert np.abs(log_derivative.numpy()).max() > 1.0  # the spline really bends


def test_identity_outside_the_interval():
    widths, heights, slopes = _random_spline(1, POINTS.shape)
    v, log_derivative = spline.rqs_evaluate(POINTS, widths, heights, slopes, BOUND)
    outside = np.abs(POINTS) >= BOUND
    assert outside.sum() > 100
    np.testing.assert_array_equal(v.numpy()[outside], POINTS[outside])
    np.testing.assert_array_equal(log_derivative.numpy()[outside], 0.0)
    np.testing.assert_array_equal(spline.rqs_solve(POINTS, widths, heights, slopes, BOUND).numpy()[outside],
                                  POINTS[outside])


def test_inverse_solves_the_spline_equation():
    widths, heights, slopes = _random_spline(2, POINTS.shape)
    v, log_derivative = spline.rqs_evaluate(POINTS, widths, heights, slopes, BOUND)
    u = spline.rqs_solve(v, widths, heights, slopes, BOUND)
    round_trip = spline.rqs_evaluate(u, widths, heights, slopes, BOUND)[0].numpy()
    # float32: the root of the quadratic loses digits to cancellation near bin edges; TFP's own
    # RationalQuadraticSpline misses by up to ~1e-5 on these points too. Hold ours to TFP's level.
    reference = tfb.RationalQuadraticSpline(widths, heights, slopes, range_min=-BOUND)
    tfp_error = np.abs(reference.forward(reference.inverse(v)).numpy() - v.numpy()).max()
    np.testing.assert_allclose(round_trip, v.numpy(), atol=max(5e-5, 3 * tfp_error))
    # back in u, float32 rounding of v is amplified by 1 / g'(u): compare where g' is not tiny
    steep = np.exp(log_derivative.numpy()) > 0.05
    assert steep.mean() > 0.5
    np.testing.assert_allclose(u.numpy()[steep], POINTS[steep], atol=1e-3)
    np.testing.assert_allclose(u.numpy()[steep], reference.inverse(v).numpy()[steep], atol=1e-3)


def test_log_derivative_matches_autodiff():
    widths, heights, slopes = _random_spline(3, POINTS.shape)
    u = tf.constant(POINTS)
    with tf.GradientTape() as tape:
        tape.watch(u)
        v, log_derivative = spline.rqs_evaluate(u, widths, heights, slopes, BOUND)
    derivative = tape.gradient(v, u)  # elementwise map: the gradient is g'(u)
    np.testing.assert_allclose(log_derivative.numpy(), np.log(derivative.numpy()), atol=1e-3)


def test_spline_is_increasing():
    widths, heights, slopes = _random_spline(4, (1,))
    u = np.linspace(-6, 6, 5001, dtype=np.float32)[:, None]
    v, _ = spline.rqs_evaluate(u, *(tf.broadcast_to(p, u.shape + p.shape[-1:]) for p in (widths, heights, slopes)),
                              BOUND)
    assert np.all(np.diff(v.numpy()[:, 0]) > 0)


def test_gradients_stay_finite_outside_the_interval():
    """tf.where differentiates both branches: the unused one must not produce NaN."""
    widths, heights, slopes = (tf.Variable(p) for p in _random_spline(5, POINTS.shape))
    with tf.GradientTape() as tape:
        v, log_derivative = spline.rqs_evaluate(POINTS, widths, heights, slopes, BOUND)
        loss = tf.reduce_sum(v) + tf.reduce_sum(log_derivative)
    for gradient in tape.gradient(loss, [widths, heights, slopes]):
        assert np.all(np.isfinite(gradient.numpy()))


def _counting_network_calls(flow) -> list[int]:
    """Make every spline coupling of ``flow`` append to the returned list when its network runs."""
    calls = []
    for layer in flow.bijector.bijectors:
        if isinstance(layer, flows.SplineCoupling):
            network = layer.net.network
            layer.net.network = lambda x, network=network: calls.append(1) or network(x)
    return calls


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "tf.function"])
def test_coupling_runs_its_network_once_per_log_prob(traced):
    flow = make_flow(FlowConfig(flow="spline", num_layers=3, hidden_units=(8,)))
    calls = _counting_network_calls(flow)
    log_prob = tf.function(flow.log_prob) if traced else flow.log_prob
    log_prob(tf.ones((5, 2)))  # traced: the Python runs once, so the calls counted are the graph's
    assert len(calls) == 3


def test_coupling_starts_as_the_identity():
    bijector = flows.spline_chain(num_layers=2, hidden_units=(8,), seed=1)
    np.testing.assert_allclose(bijector.forward(POINTS).numpy(), POINTS, atol=1e-4)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(POINTS, event_ndims=1).numpy(), 0.0,
                               atol=1e-4)

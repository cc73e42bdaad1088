"""Bad input across the public helpers (issue 36, item 6): one ValueError that names the argument,
what was given and what is allowed; property-based tests of the validators and the spline maths."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlab import _validate, flows, measure
from flowlab.flows import spline
from flowlab.flows import FlowConfig, make_flow
from flowlab.studies.digits.flows import ImageFlowConfig, VariationalDequantizer


def _small_flow(ndim: int = 2):
    return make_flow(FlowConfig(num_layers=1, hidden_units=(4,), ndim=ndim))


@pytest.mark.parametrize("call, message", [
    (lambda: ImageFlowConfig(hidden_channels=0), "hidden_channels must be an integer from 1 to 512, got 0"),
    (lambda: ImageFlowConfig(hidden_channels=-3), "hidden_channels must be an integer from 1 to 512, got -3"),
    (lambda: ImageFlowConfig(hidden_channels="x"), "hidden_channels must be an integer from 1 to 512, got 'x'"),
    (lambda: ImageFlowConfig(hidden_channels=4096), "hidden_channels must be an integer from 1 to 512, got 4096"),
    (lambda: ImageFlowConfig(couplings=3), r"couplings must be 3 integers \(coupling layers at 8x8x1, .* got 3$"),
    (lambda: ImageFlowConfig(couplings=(64, 0, 0)), r"couplings must be 3 integers .* each from 0 to 16, not all zero, "
                                                    r"got \(64, 0, 0\)"),
    (lambda: FlowConfig(num_layers=10**6), "num_layers must be an integer from 1 to 32, got 1000000"),
    (lambda: FlowConfig(hidden_units=(4096,)), r"hidden_units must be 1 to 4 integers, each from 1 to 1,024, got \(4096,\)"),
    (lambda: FlowConfig(options=None), "options must be a dict of option names to values, got NoneType: None"),
    (lambda: FlowConfig(flow="spline", options={"bins": 1000}), "bins must be an integer from 2 to 64, got 1000"),
    (lambda: flows.standardize_bijector((0.0, 0.0, 0.0), (1.0, 1.0)),
     r"loc and scale must have the same length .* got 3 and 2"),
    (lambda: flows.initialize_actnorms(_small_flow(), np.zeros((0, 2))), r"x must have shape \(n, 2\) with n >= 1, got \(0, 2\)"),
    (lambda: flows.initialize_actnorms(_small_flow(), np.full((4, 2), np.nan)), "x must be finite, got 8 NaN/inf values"),
    (lambda: flows.initialize_actnorms(_small_flow(), np.zeros((4, 3))), r"x must have shape \(n, 2\) with n >= 1, got \(4, 3\)"),
    (lambda: flows.ActNorm((2,)).initialize(np.zeros((4, 1))), r"x must have shape \(n, d\) with d >= 2"),
    (lambda: make_flow({"flow": "maf"}), "config must be a FlowConfig .* got dict"),
    (lambda: measure.evaluate(None), "flow must be a flow .* got NoneType"),
    (lambda: measure.evaluate(_small_flow(3), n_samples=10), r"flow must be a density on points of shape \[2\] .* \[3\]"),
    (lambda: measure.log_prob_numpy(_small_flow(), np.zeros((5, 2)), batch_size=0),
     "batch_size must be an integer from 1 to 1,000,000, got 0"),
    (lambda: measure.log_prob_numpy(_small_flow(), np.zeros((0, 2))), r"x must have shape \(n, 2\) with n >= 1 .* got \(0, 2\)"),
    (lambda: VariationalDequantizer(8), r"shape must be the \(height, width\) of the images, .* got int: 8"),
], ids=lambda value: None if callable(value) else value[:40])
def test_bad_input_gets_one_message_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_image_flow_config_validates_without_building_networks():
    start = time.perf_counter()
    for _ in range(20):
        ImageFlowConfig(couplings=(16, 16, 16), hidden_channels=512)
    assert time.perf_counter() - start < 1.0


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.one_of(st.integers(-10**9, 10**9), st.floats(allow_nan=True), st.text(max_size=3), st.none(), st.booleans()))
def test_limits_accept_exactly_what_they_describe(value):
    """Every limit of LIMITS admits a value iff it is a number of the right kind inside its range, and
    its refusal names the argument and what was given."""
    for key, limit in _validate.LIMITS.items():
        right_kind = (isinstance(value, int) if limit.integer else isinstance(value, (int, float))) \
            and not isinstance(value, bool)
        inside = right_kind and np.isfinite(value) and (value > limit.low if limit.low_open else value >= limit.low) \
            and value <= limit.high
        if inside:
            assert limit.check("arg", value) == value
        else:
            with pytest.raises(ValueError, match=rf"^arg must be {limit.describe()}, got "):
                limit.check("arg", value)


_raw = st.lists(st.floats(-6.0, 6.0, width=32), min_size=3 * 4 - 1, max_size=3 * 4 - 1)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_raw, st.floats(-7.0, 7.0, width=32), st.sampled_from([1.0, 3.0, 5.0]))
def test_spline_is_monotone_invertible_and_its_log_derivative_is_the_slope(raw, u, bound):
    """For any raw network outputs: the bins fill [-bound, bound], the spline is increasing, solving
    undoes evaluating, and the log-derivative is the log of TensorFlow's derivative."""
    widths, heights, slopes = spline.spline_parameters(tf.constant([raw]), 4, bound)
    np.testing.assert_allclose(tf.reduce_sum(widths).numpy(), 2 * bound, rtol=1e-5)
    assert tf.reduce_min(slopes).numpy() >= spline.MIN_SIZE
    points = tf.constant([u, u + 0.25])
    with tf.GradientTape() as tape:
        tape.watch(points)
        v, log_derivative = spline.rqs_evaluate(points, tf.tile(widths, [2, 1]), tf.tile(heights, [2, 1]),
                                                tf.tile(slopes, [2, 1]), bound)
    assert v.numpy()[1] >= v.numpy()[0]  # where the spline is nearly flat, float32 may round both to one value
    derivative = tape.gradient(v, points).numpy()
    np.testing.assert_allclose(log_derivative.numpy(), np.log(derivative), rtol=1e-3, atol=1e-3)
    back = spline.rqs_solve(v, tf.tile(widths, [2, 1]), tf.tile(heights, [2, 1]), tf.tile(slopes, [2, 1]), bound)
    # solving undoes evaluating up to float32's spacing of v over the slope (TFP's RationalQuadraticSpline
    # loses the same precision where a bin is nearly flat): 1e-6 relative to the bound, divided by the slope
    tolerance = 2e-3 * bound + 1e-6 * bound / np.minimum(derivative, 1.0)
    assert np.all(np.abs(back.numpy() - points.numpy()) <= tolerance), (back.numpy(), points.numpy(), derivative)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=6), st.integers(1, 3))
def test_points_accepts_only_finite_n_by_d_arrays(values, ndim):
    array = np.asarray(values, dtype=np.float64)
    shaped = array.reshape(-1, ndim) if array.size % ndim == 0 else array
    good = shaped.ndim == 2 and shaped.shape[0] >= 1 and np.all(np.isfinite(shaped))
    if good:
        np.testing.assert_array_equal(_validate.points("x", shaped, ndim=ndim), shaped)
    else:
        with pytest.raises(ValueError, match="^x must "):
            _validate.points("x", shaped, ndim=ndim)

"""The affine families' log-scales are soft-bounded, so their densities stay finite everywhere
the project looks: without the bound, weights that put out large log-scales make a MAF's or an
IAF's log_prob overflow far from the data (the IAF's blank corners in the families notebook)."""

import functools

import numpy as np
import pytest
import tensorflow as tf

from flowlab import flows, measure
from flowlab.flows import FlowConfig, make_flow

#: The families with an affine layer's log-scale to bound, as registered.
AFFINE = tuple(name for name, family in flows.FAMILIES.items() if "log_scale_bound" in family.options)
#: The grids the project draws (plots, notebooks) and integrates (checks, tests) densities on.
GRIDS = [(2.5, 150), (8.0, 300), (10.0, 500)]


@functools.cache  # the tests only read these flows: one per family and bound is enough
def _wild(family: str, bound: float | None) -> flows.tfd.Distribution:
    """A small flow with large random weights, so that its networks put out large log-scales
    away from the origin, as a trained flow's can far from the data."""
    flow = make_flow(FlowConfig(flow=family, hidden_units=(16, 16), seed=2, options={"log_scale_bound": bound}))
    flow.log_prob(np.zeros((1, 2), np.float32))
    rng = np.random.default_rng(7)
    for variable in flow.trainable_variables:
        variable.assign(rng.normal(scale=0.7, size=variable.shape).astype(np.float32))
    return flow


@pytest.mark.parametrize("lim, n", GRIDS)
@pytest.mark.parametrize("family", AFFINE)
def test_density_is_finite_on_every_grid(family, lim, n):
    log_prob = _wild(family, flows.LOG_SCALE_BOUND).log_prob(measure.grid(lim, n)[2]).numpy()
    assert np.isfinite(log_prob).all(), f"{(~np.isfinite(log_prob)).sum()} grid points are not finite"


@pytest.mark.parametrize("family", AFFINE)
def test_without_the_bound_the_same_weights_overflow(family):
    """What the test above guards against: the same weights, unbounded, leave blank patches."""
    log_prob = _wild(family, None).log_prob(measure.grid(8.0, 300)[2]).numpy()
    assert not np.isfinite(log_prob).all()


def test_soft_clamp_saturates_at_the_bound_and_keeps_small_values():
    values = tf.constant([-1e4, -3.0, -0.01, 0.0, 0.01, 3.0, 1e4])
    clamped = flows.soft_clamp(values, 3.0).numpy()
    np.testing.assert_allclose(clamped[[0, -1]], [-3.0, 3.0])
    np.testing.assert_allclose(clamped[[1, -2]], [-3 * np.tanh(1.0), 3 * np.tanh(1.0)], rtol=1e-6)
    np.testing.assert_allclose(clamped[2:5], [-0.01, 0.0, 0.01], rtol=1e-4)
    assert np.all(np.diff(clamped) > 0)  # strictly increasing: no two log-scales merge
    assert flows.soft_clamp(values, None) is values


@pytest.mark.parametrize("family", AFFINE)
def test_every_layer_scales_by_at_most_e_to_the_bound(family):
    """Per layer |log det| <= bound per transformed coordinate, whatever the weights."""
    flow = _wild(family, 3.0)
    points = measure.grid(8.0, 60)[2]
    for layer in flow.bijector.bijectors[::2]:
        log_det = layer.forward_log_det_jacobian(points, event_ndims=1).numpy()
        assert np.abs(log_det).max() <= 2 * 3.0 + 1e-4
        points = layer.forward(points).numpy()

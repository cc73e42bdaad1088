"""The moons data and its exact density."""

import numpy as np
import pytest
from scipy import integrate

from flowlab import data


def test_make_moons_is_float32_seeded_and_shaped():
    a = data.make_moons(100, seed=1)
    assert a.shape == (100, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, data.make_moons(100, seed=1))
    assert not np.array_equal(a, data.make_moons(100, seed=2))


@pytest.mark.parametrize("kwargs, needle", [
    ({"n_samples": 0}, "n_samples must be a positive integer, got 0"),
    ({"n_samples": 2.5}, "n_samples must be a positive integer"),
    ({"noise": -0.1}, "noise must be >= 0, got -0.1"),
    ({"noise": float("nan")}, "noise must be finite"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
])
def test_make_moons_rejects_bad_input(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        data.make_moons(**kwargs)


def _density_by_quad(point, noise):
    """The defining integral, evaluated with adaptive quadrature: an independent check."""
    def gauss(centre):
        return np.exp(-((point - centre) ** 2).sum() / (2 * noise**2)) / (2 * np.pi * noise**2)
    outer = integrate.quad(lambda t: gauss(np.array([np.cos(t), np.sin(t)])), 0, np.pi,
                           points=[np.arctan2(point[1], point[0]) % np.pi], limit=200)[0]
    inner = integrate.quad(lambda t: gauss(np.array([1 - np.cos(t), 0.5 - np.sin(t)])), 0, np.pi,
                           limit=200)[0]
    return 0.5 * (outer + inner) / np.pi


@pytest.mark.parametrize("point", [[1.0, 0.0], [0.0, 1.02], [0.5, 0.25], [2.0, 0.5], [0.95, -0.45]])
def test_log_prob_matches_adaptive_quadrature(point):
    expected = _density_by_quad(np.array(point), 0.05)
    got = np.exp(data.moons_log_prob(np.array([point]), noise=0.05)[0])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("noise", [0.05, 0.1])
def test_exact_density_integrates_to_one(noise):
    """A Riemann sum of a smooth, fast-decaying density is accurate far beyond its step: at
    h = 0.02 (0.4 noise std) it matches h = 0.01 to 1e-14."""
    h = 0.02
    xs = np.arange(-1.6, 2.6, h)
    ys = np.arange(-1.1, 1.6, h)
    xx, yy = np.meshgrid(xs, ys)
    p = np.exp(data.moons_log_prob(np.stack([xx.ravel(), yy.ravel()], 1), noise=noise))
    assert p.sum() * h * h == pytest.approx(1.0, abs=1e-6)


def test_entropy_matches_design_value_and_independent_estimate():
    entropy = data.moons_entropy(0.05)
    assert entropy == pytest.approx(0.29, abs=0.01)
    other = -data.moons_log_prob(data.make_moons(50_000, seed=99)).mean()
    assert other == pytest.approx(entropy, abs=0.015)  # Monte Carlo: ~4 standard errors


def test_log_prob_rejects_bad_input():
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        data.moons_log_prob(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="noise must be > 0, got 0.0"):
        data.moons_log_prob(np.zeros((3, 2)), noise=0.0)
    with pytest.raises(ValueError, match="x must be finite"):
        data.moons_log_prob(np.array([[np.nan, 0.0]]))


def test_log_prob_far_away_is_minus_infinity_not_nan():
    """Beyond float64's reach every quadrature term underflows: the log-density is -inf."""
    lp = data.moons_log_prob(np.array([[1e200, 0.0], [1.0, 0.0]]))
    assert lp[0] == -np.inf and np.isfinite(lp[1])

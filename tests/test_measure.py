"""Measurements: honest held-out scores, grids and their integrals, timings, gap mass."""

import numpy as np
import pytest
import tensorflow_probability as tfp

from flowlab import measure
from flowlab.data import MOONS_GAP, make_moons, moons_entropy_estimate, moons_log_prob
from flowlab.flows import standard_normal


def test_gap_mass_of_a_uniform_density_is_its_overlap_area():
    def unit_square(x):  # uniform density on [0, 1]^2
        inside = np.all((x >= 0) & (x <= 1), axis=1)
        return np.where(inside, 0.0, -np.inf)
    # the gap box [0.25, 0.75] x [-0.1, 0.6] overlaps the unit square in 0.5 x 0.6
    assert measure.gap_mass(unit_square) == pytest.approx(0.3, abs=1e-9)


@pytest.mark.parametrize("noise, low, high", [(0.05, 0.001, 0.01),  # almost empty, not empty
                                               (0.15, 0.01, 0.2)])  # wide noise: measurable mass
def test_gap_mass_of_the_exact_density_is_the_share_of_samples_in_the_gap(noise, low, high):
    n = 1_000_000
    x = make_moons(n, noise=noise, seed=3)
    x0, x1, y0, y1 = MOONS_GAP
    share = float(np.mean((x[:, 0] > x0) & (x[:, 0] < x1) & (x[:, 1] > y0) & (x[:, 1] < y1)))
    standard_error = np.sqrt(share * (1 - share) / n)
    assert low < share < high
    assert measure.gap_mass(lambda p: moons_log_prob(p, noise=noise)) == pytest.approx(share, abs=4 * standard_error)


def test_best_time_takes_the_fastest_run(monkeypatch):
    now = [0.0]
    durations = iter([3.0, 1.0, 2.0, 5.0])  # seconds each run takes on a fake clock

    def work():
        now[0] += next(durations)
    monkeypatch.setattr(measure.time, "perf_counter", lambda: now[0])
    assert measure.best_time(work, repeats=4) == 1.0  # not the mean (2.75), last (5) or max
    with pytest.raises(StopIteration):
        next(durations)  # all four runs happened
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        measure.best_time(lambda: None, repeats=0)


def test_grid_covers_limits():
    xx, yy, points = measure.grid((-1, 2, -3, 4), n=5)
    assert points.shape == (25, 2) and points.dtype == np.float32
    assert points.min(0).tolist() == [-1, -3] and points.max(0).tolist() == [2, 4]


def test_density_on_grid_normalizes_for_a_gaussian():
    xx, yy, p = measure.density_on_grid(standard_normal(), lim=6.0, n=241)
    assert p.sum() * (xx[0, 1] - xx[0, 0]) * (yy[1, 0] - yy[0, 0]) == pytest.approx(1.0, abs=1e-3)


def _moons_moments(noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and per-coordinate variance of the two-moons distribution, from its definition:
    t uniform on [0, pi] along (cos t, sin t) and (1 - cos t, 0.5 - sin t), plus N(0, noise^2 I)."""
    t = (np.arange(200_000) + 0.5) * np.pi / 200_000
    curves = np.concatenate([np.stack([np.cos(t), np.sin(t)], axis=1),
                             np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)])
    return curves.mean(axis=0), curves.var(axis=0) + noise**2


def test_evaluate_scores_a_gaussian_against_its_closed_form():
    """For a Gaussian model q = N(loc, diag(scale^2)) the held-out NLL, E_p[-log q], has a closed
    form in the moons' mean and variance; KL = NLL - entropy. At a noise other than 0.05, each
    number within four of its Monte Carlo standard errors."""
    noise = 0.1
    mean, var = _moons_moments(noise)
    loc, scale = np.array([0.3, 0.4]), np.array([0.9, 0.5])
    model = tfp.distributions.MultivariateNormalDiag(loc=loc.astype(np.float32),
                                                     scale_diag=scale.astype(np.float32))
    cross_entropy = float(np.sum(0.5 * np.log(2 * np.pi * scale**2) + (var + (mean - loc) ** 2) / (2 * scale**2)))
    entropy = moons_entropy_estimate(noise, n_samples=30_000)  # other points (another seed)
    scores = measure.evaluate(model, noise=noise, n_samples=30_000)
    assert scores["n_samples"] == 30_000 and scores["kl_to_exact"] > 0.5
    assert abs(scores["heldout_nll"] - cross_entropy) < 4 * scores["heldout_nll_se"] < 0.05
    assert abs(scores["entropy"] - entropy.mean) < 4 * np.hypot(scores["entropy_se"], entropy.standard_error) < 0.05
    kl_error = np.hypot(scores["kl_se"], entropy.standard_error)
    assert abs(scores["kl_to_exact"] - (cross_entropy - entropy.mean)) < 4 * kl_error < 0.05


def test_evaluate_kl_is_nll_minus_entropy_and_positive_for_untrained(small_flow):
    scores = measure.evaluate(small_flow, n_samples=5000)
    assert scores["kl_to_exact"] == pytest.approx(scores["heldout_nll"] - scores["entropy"])
    assert scores["kl_to_exact"] > 0.5


@pytest.mark.parametrize("call, error, needle", [
    (lambda: measure.grid((1, 0, 0, 1)), ValueError, "lim must be a positive number or"),
    (lambda: measure.grid(-3.0), ValueError, "lim must be > 0"),
    (lambda: measure.grid(2.0, n=0), ValueError, "n must be a positive integer"),
    (lambda: measure.density_on_grid("gauss"), TypeError, "density must be a TFP distribution"),
    (lambda: measure.evaluate(standard_normal(), n_samples=0), ValueError, "n_samples must be a positive integer"),
])
def test_bad_input_is_named(call, error, needle):
    with pytest.raises(error, match=needle):
        call()

"""Measurements: honest held-out scores, grids and their integrals, timings, gap mass."""

import numpy as np
import pytest
import tensorflow_probability as tfp

from flowlab import measure
from flowlab.data import MIDPOINT_BOX, make_moons, moons_entropy_estimate, moons_log_prob
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
    x0, x1, y0, y1 = MIDPOINT_BOX
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


# ---- sample metrics: against closed forms and the truth's own samples ----

def _rice_mean(shift: float, sigma: float) -> float:
    """E|V| for V ~ N(mu, sigma^2 I) in 2-D with |mu| = shift: the Rice distribution's mean,
    sigma sqrt(pi/2) L_1/2(-shift^2 / (2 sigma^2)), its Laguerre function in scaled Bessel functions."""
    from scipy.special import ive
    x = -shift**2 / (2 * sigma**2)
    return sigma * np.sqrt(np.pi / 2) * ((1 - x) * ive(0, -x / 2) - x * ive(1, -x / 2))


@pytest.mark.parametrize("shift", [0.0, 0.5, 1.0, 2.0])
def test_energy_distance_between_two_gaussians_matches_its_closed_form(shift):
    """X ~ N(0, I), Y ~ N((shift, 0), I): X - Y ~ N(-shift, 2I) and X - X' ~ N(0, 2I), so the energy
    distance is 2 E|N(shift, 2I)| - 2 E|N(0, 2I)|: 0 for no shift, growing with it."""
    rng = np.random.default_rng(int(shift * 10))
    x, y = rng.normal(size=(10_000, 2)), rng.normal(size=(10_000, 2)) + [shift, 0.0]
    exact = 2 * _rice_mean(shift, np.sqrt(2)) - 2 * _rice_mean(0.0, np.sqrt(2))
    # the estimate's spread, measured over 5 seeds: 3e-4 at no shift, about 0.01 * shift otherwise
    assert measure.energy_distance(x, y) == pytest.approx(exact, abs=0.0012 + 0.04 * shift)


def test_energy_distance_closed_form_grows_with_the_shift():
    """Zero with no shift, about 0.44 shift^2 for small shifts, then linear (2 shift - const)."""
    values = [2 * _rice_mean(s, np.sqrt(2)) - 2 * _rice_mean(0.0, np.sqrt(2)) for s in (0.0, 0.1, 0.5, 1.0, 2.0)]
    assert values[0] == 0.0 and values == sorted(values)
    assert values[1] == pytest.approx(0.01 * np.sqrt(np.pi) / 4, rel=1e-2)  # sqrt(pi)/4 shift^2
    assert [round(v, 4) for v in values[2:]] == [0.1099, 0.4298, 1.5828]


def test_energy_distance_is_the_u_statistic_of_all_pairwise_distances():
    from scipy.spatial.distance import cdist
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(200, 2)) * 1.5
    n, m = len(x), len(y)
    u_statistic = (2 * cdist(x, y).mean() - cdist(x, x).sum() / (n * (n - 1))
                   - cdist(y, y).sum() / (m * (m - 1)))
    assert measure.energy_distance(x, y, block=7) == pytest.approx(u_statistic, abs=1e-6)


def test_true_samples_score_minus_the_entropy():
    estimate = measure.sample_log_p_true(make_moons(20_000, seed=11))
    entropy = moons_entropy_estimate(n_samples=20_000)
    assert abs(estimate.mean + entropy.mean) < 4 * np.hypot(estimate.standard_error, entropy.standard_error)


def test_arc_coverage_of_true_samples_is_uniform():
    bins, n = 10, 50_000
    coverage = measure.arc_coverage(make_moons(n, seed=12), bins=bins)
    expected = 0.9973 / (2 * bins)  # the share of a Gaussian within 3 stds, per bin
    assert coverage.shape == (2, bins)
    np.testing.assert_allclose(coverage, expected, atol=4 * np.sqrt(expected / n))


def test_arc_coverage_of_one_moon_leaves_the_other_empty():
    rng = np.random.default_rng(13)
    t = rng.uniform(0, np.pi, 20_000)
    outer = np.stack([np.cos(t), np.sin(t)], axis=1) + rng.normal(scale=0.05, size=(20_000, 2))
    coverage = measure.arc_coverage(outer, bins=5)
    assert np.all(coverage[1] == 0)
    np.testing.assert_allclose(coverage[0], 0.9973 / 5, atol=0.015)
    scores = measure.sample_metrics(outer, n_reference=2000, bins=5)
    assert scores["mode_collapse"] and scores["min_arc_ratio"] == 0.0
    assert scores["energy_distance"] > 0.05


def test_arc_position_follows_each_moons_parametrization():
    t = np.array([0.0, 0.3, np.pi / 2, 3.0])
    outer = np.stack([np.cos(t), np.sin(t)], axis=1) * 1.02  # just outside the outer moon
    inner = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    moon, found_t, distance = measure.arc_position(np.concatenate([outer, inner]))
    assert moon.tolist() == [0] * 4 + [1] * 4
    np.testing.assert_allclose(found_t, np.concatenate([t, t]), atol=1e-9)
    np.testing.assert_allclose(distance, [0.02] * 4 + [0.0] * 4, atol=1e-9)
    _, beyond_tip, _ = measure.arc_position([[1.1, -0.2], [-1.1, -0.2]])  # below the outer moon's ends
    assert beyond_tip.tolist() == [0.0, np.pi]


def test_gap_disc_fraction_of_true_samples_is_zero_and_of_a_bridge_is_not():
    assert measure.gap_disc_fraction(make_moons(100_000, seed=14)) < 1e-4
    centre, radius = measure.gap_disc()
    bridge = centre + np.random.default_rng(0).uniform(-radius, radius, (1000, 1)) * [0.5, 0.5]
    assert measure.gap_disc_fraction(bridge) == 1.0


def test_sample_metrics_of_true_samples():
    scores = measure.sample_metrics(make_moons(10_000, seed=15), seed=16)
    assert set(scores) == {"sample_log_p_true", "sample_log_p_true_se", "energy_distance", "arc_coverage",
                           "off_moons", "min_arc_ratio", "mode_collapse", "gap_disc_fraction", "n_samples"}
    assert abs(scores["energy_distance"]) < 1e-3 and not scores["mode_collapse"]
    assert scores["min_arc_ratio"] > 0.85 and scores["off_moons"] < 0.006
    assert -0.33 < scores["sample_log_p_true"] < -0.26


@pytest.mark.parametrize("call, needle", [
    (lambda: measure.energy_distance([[0.0, 0.0]], [[1.0, 1.0], [2.0, 2.0]]), "x must hold at least 2 points, got 1"),
    (lambda: measure.energy_distance(np.zeros((3, 2)), np.zeros((3, 2)), block=0), "block must be a positive integer"),
    (lambda: measure.arc_coverage(np.zeros((3, 2)), bins=0), "bins must be a positive integer, got 0"),
    (lambda: measure.arc_coverage(np.zeros((3, 2)), max_stds=-1.0), "max_stds must be > 0"),
    (lambda: measure.sample_metrics([[np.nan, 0.0], [0.0, 0.0]]), "samples must be finite, got 1 NaN/inf"),
    (lambda: measure.sample_log_p_true(np.zeros(5)), r"samples must have shape \(n, 2\)"),
    (lambda: measure.likelihood_bounds(standard_normal()), "model must have elbo.* got MultivariateNormalDiag"),
])
def test_bad_sample_input_is_named(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()


def test_likelihood_bounds_rejects_bad_ks():
    class Bounded:
        def elbo(self, x, seed=0):
            return np.zeros(len(x))

        def iwae_bound(self, x, k=1, seed=0):
            return np.zeros(len(x))

    with pytest.raises(ValueError, match=r"ks\[1\] must be a positive integer, got 0"):
        measure.likelihood_bounds(Bounded(), n_samples=10, ks=(1, 0))
    scores = measure.likelihood_bounds(Bounded(), n_samples=100, ks=(1, 5))
    assert scores["nll_upper_bound"] == scores["iwae_5"] == 0.0
    assert scores["kl_upper_bound"] == pytest.approx(-scores["entropy"])

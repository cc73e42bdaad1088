"""What the notebooks state, checked: Monte Carlo errors, the gap between the moons, the
log-density and normality figures."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from flowlab import data, measure, plots
from flowlab.flows import FlowConfig, make_flow, standard_normal
from flowlab.measure import evaluate

GAUSS_ENTROPY = 1.0 + np.log(2 * np.pi)  # entropy of N(0, I) in 2-D, nats


def _gauss_nll(z):
    """-log N(z; 0, I) in 2-D. For z ~ N(0, I) its variance is Var(chi^2_2) / 4 = 1."""
    return np.log(2 * np.pi) + 0.5 * (z**2).sum(axis=1)


def test_standard_error_matches_the_known_spread_of_a_gaussian_entropy():
    n = 40_000
    z = np.random.default_rng(0).normal(size=(n, 2))
    estimate = data.monte_carlo_mean(_gauss_nll(z))
    assert estimate.standard_error == pytest.approx(1 / np.sqrt(n), rel=0.05)
    assert abs(estimate.mean - GAUSS_ENTROPY) < 4 * estimate.standard_error


def test_standard_error_covers_the_truth_as_often_as_it_should():
    rng = np.random.default_rng(1)
    scores = []
    for _ in range(400):
        estimate = data.monte_carlo_mean(_gauss_nll(rng.normal(size=(1000, 2))))
        scores.append((estimate.mean - GAUSS_ENTROPY) / estimate.standard_error)
    scores = np.asarray(scores)
    assert np.std(scores) == pytest.approx(1.0, abs=0.12)  # errors of the size the SE says
    assert 0.90 < np.mean(np.abs(scores) < 2) < 0.99  # about 95 % within two SEs


def test_monte_carlo_mean_needs_two_draws_and_prints_mean_and_error():
    with pytest.raises(ValueError, match="at least 2 draws to estimate an error, got 1"):
        data.monte_carlo_mean([1.0])
    assert str(data.monte_carlo_mean([1.0, 2.0, 3.0, 4.0])) == "2.500 ± 0.645"


def test_moons_entropy_is_an_estimate_with_a_small_error():
    estimate = data.moons_entropy_estimate(0.05)
    assert 0.001 < estimate.standard_error < 0.003  # "about 0.002 nats" at 200,000 points
    assert data.moons_entropy(0.05) == estimate.mean


def test_the_two_entropy_floors_agree_within_their_errors():
    """The notebooks once printed 0.286 and 0.292 as 'the' floor: two estimates of one number."""
    default = data.moons_entropy_estimate(0.05)
    scores = evaluate(standard_normal(), noise=0.05)
    combined = np.hypot(default.standard_error, scores["entropy_se"])
    assert abs(default.mean - scores["entropy"]) < 3 * combined


def test_evaluate_reports_standard_errors_and_a_paired_kl():
    scores = evaluate(standard_normal(), noise=0.05, n_samples=20_000, seed=3)
    assert scores["kl_to_exact"] == pytest.approx(scores["heldout_nll"] - scores["entropy"], abs=1e-9)
    for key in ("heldout_nll_se", "entropy_se", "kl_se"):
        assert 0 < scores[key] < 0.05
    # KL is a mean of differences on the same points: its error is not the sum of the two
    assert scores["kl_se"] < scores["heldout_nll_se"] + scores["entropy_se"]


def test_moons_distance_of_known_points():
    np.testing.assert_allclose(data.moons_distance([[0.0, 1.0], [2.0, 0.5], [0.5, 0.25], [-1.0, -0.3]]),
                               [0.0, 0.0, 1 - np.sqrt(5) / 4, 0.3], atol=1e-12)
    # noise-free moons lie on the curves
    assert data.moons_distance(data.make_moons(500, noise=0.0)).max() < 1e-6


def test_gap_disc_stays_margin_stds_from_both_moons():
    for margin in (2.0, 4.0, 6.0):
        points, _ = measure.gap_disc_points(noise=0.05, margin=margin)
        assert data.moons_distance(points).min() >= margin * 0.05 - 1e-6
    with pytest.raises(ValueError, match="gap's half-width"):
        measure.gap_disc(noise=0.05, margin=9.0)


def test_gap_disc_mass_of_a_uniform_density_is_the_disc_area():
    def wide_uniform(x):  # uniform on [-5, 5]^2: density 1/100
        return np.full(len(x), -np.log(100.0))
    _, radius = measure.gap_disc(0.05, 4.0)
    assert measure.gap_disc_mass(wide_uniform) == pytest.approx(np.pi * radius**2 / 100, rel=1e-3)


def test_the_old_gap_box_held_noise_and_the_disc_holds_almost_nothing():
    box = measure.gap_mass(data.moons_log_prob)  # corners 0.04 from the moons
    h = 0.0025  # the same box shrunk by 0.1 per side
    xx, yy = np.meshgrid(np.arange(0.35, 0.65, h) + h / 2, np.arange(0.0, 0.5, h) + h / 2)
    shrunk = np.exp(data.moons_log_prob(np.stack([xx.ravel(), yy.ravel()], 1))).sum() * h * h
    assert 3e-3 < box < 6e-3 and shrunk < 1e-5
    assert measure.gap_disc_mass(data.moons_log_prob) < 1e-5


def test_exact_density_dips_by_many_orders_between_the_tips():
    s, path = measure.tip_path(101)
    np.testing.assert_allclose(path[[0, -1]], measure.MOON_TIPS)
    log10_p = data.moons_log_prob(path) / np.log(10)
    assert np.argmin(log10_p) == 50 and log10_p[50] < -15 and log10_p[0] > -1


def test_parameter_count_counts_every_weight():
    flow = make_flow(FlowConfig(num_layers=1, hidden_units=(4,)))
    # one MADE: 2 -> 4 (8 weights + 4 biases), 4 -> 2 x 2 outputs (16 + 4)
    assert measure.parameter_count(flow) == 8 + 4 + 16 + 4


def test_log_density_plot_shows_log10_with_a_floor():
    ax = plots.plot_density(standard_normal(), "log-density", lim=8.0, n=50, log=True, log_floor=-6)
    image = ax.get_images()[0].get_array()
    assert image.min() == -6 and image.max() == pytest.approx(np.log10(1 / (2 * np.pi)), abs=0.05)
    assert "log" in ax.figure.axes[-1].get_ylabel()
    fig = plots.plot_densities({"a": standard_normal()}, lim=3.0, n=20, log=True)
    assert "log" in fig.axes[-1].get_ylabel()
    plt.close("all")


def test_normality_plot_has_titles_and_labels_and_qq_points_on_the_diagonal():
    z = np.random.default_rng(0).normal(size=(2000, 2)).astype(np.float32)
    fig = plots.plot_normality(z, "N(0, I) itself")
    assert fig._suptitle.get_text() == "N(0, I) itself"
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    x, y = fig.axes[1].lines[0].get_data()
    inner = np.abs(x) < 2
    assert np.max(np.abs(x[inner] - y[inner])) < 0.15
    plt.close("all")

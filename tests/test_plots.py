"""Figures are titled, labelled and, for densities, carry a colour bar."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow_probability as tfp

from flowlab import plots
from flowlab.data import make_moons
from flowlab.flows import standard_normal


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_points_is_titled_and_labelled():
    ax = plots.plot_points(make_moons(100), "Moons", lim=2.5)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("Moons", "$x_1$", "$x_2$")
    assert ax.get_xlim() == (-2.5, 2.5)


def test_plot_density_has_colour_bar():
    ax = plots.plot_density(standard_normal(), "Base density", lim=4.0, n=50)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("Base density", "$x_1$", "$x_2$")
    assert len(ax.figure.axes) == 2  # the image and its colour bar
    assert ax.figure.axes[1].get_ylabel() == "density p(x)"


def test_plot_loss_with_floor():
    ax = plots.plot_loss([2.0, 1.0, 0.5], floor=0.29)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == \
        ("Training loss", "epoch", "negative log-likelihood (nats)")
    assert "exact entropy (0.290 nats)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_densities_side_by_side_share_scale():
    """Both panels run from 0 to the highest density of either: the narrow Gaussian's peak,
    1 / (2 pi 0.5^2), at the origin (a grid point: odd n, symmetric limits)."""
    narrow = tfp.distributions.MultivariateNormalDiag(loc=[0.0, 0.0], scale_diag=[0.5, 0.5])
    fig = plots.plot_densities({"wide": standard_normal(), "narrow": narrow}, lim=3.0, n=41)
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["wide", "narrow"]
    assert len(fig.axes) == 4  # each panel has its colour bar
    for ax in panels:
        assert ax.images[0].get_clim() == pytest.approx((0.0, 1 / (2 * np.pi * 0.25)), rel=1e-5)
    # the wide density's own peak, 1 / (2 pi), is well below the shared top
    assert panels[0].images[0].get_array().max() == pytest.approx(1 / (2 * np.pi), rel=1e-5)


@pytest.mark.parametrize("call, error, needle", [
    (lambda: plots.plot_loss([]), ValueError, "losses must be a non-empty"),
    (lambda: plots.plot_points(np.zeros((3, 3)), "t"), ValueError, r"points must have shape \(n, 2\)"),
    (lambda: plots.plot_densities({}), ValueError, "densities must name at least one"),
])
def test_bad_input_is_named(call, error, needle):
    with pytest.raises(error, match=needle):
        call()


def test_grids_are_measure_s_and_still_reachable_from_plots():
    """Notebooks written earlier call plots.density_on_grid: it is measure's own function."""
    from flowlab import measure

    assert plots.density_on_grid is measure.density_on_grid and plots.grid is measure.grid


def test_density_snapshots_wrap_into_rows_on_one_log_scale():
    from types import SimpleNamespace

    snapshots = [SimpleNamespace(epoch=epoch, heldout_nll=1.0, density=np.full((10, 10), 10.0**-k))
                 for epoch, k in ((0, 1), (1, 2), (5, 3), (20, 6))]
    fig = plots.plot_density_snapshots(snapshots, log=True, columns=3, log_floor=-4.0)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    assert len(panels) == 4
    assert {ax.images[0].get_clim() for ax in panels} == {(-4.0, -1.0)}  # floored at -4, one scale
    assert panels[3].get_position().y0 < panels[0].get_position().y0  # the fourth panel starts row two
    assert "log" in fig.axes[-1].get_ylabel() and "log colour scale" in fig._suptitle.get_text()
    plt.close(fig)

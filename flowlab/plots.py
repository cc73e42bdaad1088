"""Figures for the lab: points, densities on a grid with a colour bar, loss curves.
Every figure gets a title and labelled axes.

The numbers drawn come from :mod:`flowlab.measure`: ``grid`` and ``density_on_grid`` live there
(they are importable from here too, as notebooks written earlier call ``plots.density_on_grid``)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.measure import LogDensity, density_on_grid, limits
from flowlab.measure import grid  # noqa: F401  (public here before it moved: still importable)

tfd = tfp.distributions

__all__ = ["plot_points", "plot_density", "plot_loss",
           "plot_densities", "plot_chain_stages", "plot_chain_stages_by_flow",
           "plot_density_snapshots", "plot_normality", "plot_point_panels", "plot_points_over_density",
           "plot_paths", "plot_velocity"]

def _axes(ax: plt.Axes | None) -> plt.Axes:
    return ax if ax is not None else plt.figure(figsize=(5, 5)).gca()


def _label(ax: plt.Axes, title: str, names: tuple[str, str]) -> None:
    ax.set_title(title)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])


def plot_points(points: np.ndarray, title: str, lim: float | Sequence[float] | None = None,
                ax: plt.Axes | None = None, names: tuple[str, str] = ("$x_1$", "$x_2$"),
                alpha: float = 0.3) -> plt.Axes:
    """Scatter 2-D points as small dots, equal aspect, titled and labelled."""
    points = _validate.points("points", points)
    ax = _axes(ax)
    ax.plot(points[:, 0], points[:, 1], ".", alpha=alpha, markeredgewidth=0.0)
    if lim is not None:
        x0, x1, y0, y1 = limits(lim)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    _label(ax, title, names)
    return ax


def _shown(p: np.ndarray, log: bool, log_floor: float) -> np.ndarray:
    """The values a heat-map shows: ``p``, or ``log10 p`` cut off below at ``log_floor``."""
    if not log:
        return p
    with np.errstate(divide="ignore"):
        return np.maximum(np.log10(p), log_floor)


def _colour_label(log: bool) -> str:
    return "log$_{10}$ density" if log else "density p(x)"


def plot_density(density: tfd.Distribution | LogDensity, title: str,
                 lim: float | Sequence[float] = 4.0, n: int = 150, ax: plt.Axes | None = None,
                 names: tuple[str, str] = ("$x_1$", "$x_2$"), vmax: float | None = None,
                 log: bool = False, log_floor: float = -6.0) -> plt.Axes:
    """Heat-map of a density on a grid, with a colour bar labelled ``p(x)``.

    ``log=True`` shows ``log10 p(x)`` instead, cut off below at ``log_floor``: on a linear
    scale anything under a few percent of the peak looks empty, on a log scale it does not.
    """
    ax = _axes(ax)
    xx, yy, p = density_on_grid(density, lim, n)
    shown = _shown(p, log, log_floor)
    image = ax.imshow(shown, origin="lower", extent=limits(lim), aspect="equal",
                      vmin=log_floor if log else 0.0, vmax=vmax)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=_colour_label(log))
    _label(ax, title, names)
    return ax


def plot_loss(losses: Sequence[float], title: str = "Training loss",
              floor: float | None = None, ax: plt.Axes | None = None,
              floor_label: str | None = None, loss_name: str = "negative log-likelihood (nats)") -> plt.Axes:
    """Loss per epoch; ``floor`` draws the best reachable value (the entropy of the truth),
    labelled ``floor_label`` if given. ``loss_name`` labels the axis (another loss than the NLL)."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"losses must be a non-empty 1-D sequence, got shape {losses.shape}")
    ax = ax if ax is not None else plt.figure(figsize=(6, 4)).gca()
    epochs = np.arange(1, losses.size + 1)
    ax.plot(epochs, losses, label="training NLL" if loss_name.startswith("negative log") else "training loss")
    if floor is not None:
        ax.axhline(floor, color="k", linestyle="--", linewidth=1,
                   label=floor_label if floor_label is not None else f"exact entropy ({floor:.3f} nats)")
    ax.legend()
    _label(ax, title, ("epoch", loss_name))
    return ax


def plot_densities(densities: dict[str, tfd.Distribution | LogDensity],
                   lim: float | Sequence[float] = 2.5, n: int = 200,
                   suptitle: str | None = None, log: bool = False,
                   log_floor: float = -6.0) -> plt.Figure:
    """Densities side by side, one panel each, on one shared colour scale
    (``log10 p`` cut off at ``log_floor`` when ``log=True``)."""
    if not densities:
        raise ValueError("densities must name at least one density, got an empty dict")
    grids = {name: _shown(density_on_grid(d, lim, n)[2], log, log_floor) for name, d in densities.items()}
    vmax = max(float(p.max()) for p in grids.values())
    fig, axes = plt.subplots(1, len(grids), figsize=(5 * len(grids), 4.6), squeeze=False)
    for ax, (name, p) in zip(axes[0], grids.items(), strict=True):
        image = ax.imshow(p, origin="lower", extent=limits(lim), aspect="equal",
                          vmin=log_floor if log else 0.0, vmax=vmax)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=_colour_label(log))
        _label(ax, name, ("$x_1$", "$x_2$"))
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def _z_grid_lines(z: np.ndarray, count: int = 5, points_per_line: int = 200) -> list[np.ndarray]:
    """``count`` vertical and ``count`` horizontal lines of z-space spanning the bulk of ``z``."""
    low, high = np.percentile(z, [1, 99], axis=0)
    t = np.linspace(0.0, 1.0, points_per_line)
    lines = []
    for axis in (0, 1):
        other = 1 - axis
        for level in np.linspace(low[axis], high[axis], count):
            line = np.empty((points_per_line, 2), np.float32)
            line[:, axis] = level
            line[:, other] = low[other] + t * (high[other] - low[other])
            lines.append(line)
    return lines


def plot_chain_stages(flow: tfd.TransformedDistribution, z: np.ndarray, columns: int = 4,
                      grid_lines: int = 5, panel_size: float = 2.4) -> plt.Figure:
    """The flow's chain one bijector at a time: base points ``z`` and a few grid lines of z,
    pushed through each bijector in sampling order, one panel per stage.

    Points are coloured by their angle in z, so a point can be followed from panel to panel.
    """
    from flowlab.anatomy import chain_stages

    z = _validate.points("z", z).astype(np.float32)
    columns = _validate.positive_int("columns", columns)
    stages = chain_stages(flow, z)
    lines = [chain_stages(flow, line) for line in _z_grid_lines(z, grid_lines)] if grid_lines else []
    angle = np.arctan2(z[:, 1], z[:, 0])
    rows = -(-len(stages) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(panel_size * columns, (panel_size + 0.45) * rows + 0.5),
                             squeeze=False)
    for i, (ax, stage) in enumerate(zip(axes.flat, stages)):
        for line in lines:
            ax.plot(line[i].points[:, 0], line[i].points[:, 1], color="0.6", linewidth=0.6)
        ax.scatter(stage.points[:, 0], stage.points[:, 1], c=angle, cmap="hsv", s=3, linewidths=0)
        lo, hi = np.percentile(stage.points, [0.5, 99.5], axis=0)
        centre, half = (lo + hi) / 2, 0.55 * float((hi - lo).max())  # a square window, 10 % margin
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_aspect("equal")
        names = ("$z_1$", "$z_2$") if i == 0 else ("$x_1$", "$x_2$") if i == len(stages) - 1 \
            else ("coordinate 1", "coordinate 2")
        ax.set_title(f"{i}: {stage.name}", fontsize=9)
        ax.set_xlabel(names[0], fontsize=8)
        ax.set_ylabel(names[1], fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(stages):]:
        ax.set_visible(False)
    fig.suptitle("The chain, one bijector at a time (sampling direction: base z to data x)", fontsize=10)
    fig.tight_layout(h_pad=1.2, w_pad=0.8)  # room between rows: a title never meets the axis above
    return fig


def plot_density_snapshots(snapshots: Sequence, lim: float | Sequence[float] = 2.5,
                           entropy: float | None = None, panel_size: float = 2.1, log: bool = False,
                           log_floor: float = -4.0, columns: int | None = None) -> plt.Figure:
    """Densities captured by :class:`flowlab.anatomy.DensitySnapshots` on one colour scale, each
    titled with its epoch and held-out NLL, ``columns`` panels a row (default: all in one row).

    ``log=True`` shows ``log10 p`` cut off below at ``log_floor``: on a linear scale shared with a
    sharp trained density, the broad early densities are nearly black.
    """
    if not snapshots:
        raise ValueError("snapshots must hold at least one snapshot, got none")
    columns = len(snapshots) if columns is None else _validate.positive_int("columns", columns)
    rows = -(-len(snapshots) // columns)
    shown = [_shown(s.density, log, log_floor) for s in snapshots]
    vmax = max(float(p.max()) for p in shown)
    fig, axes = plt.subplots(rows, columns, squeeze=False, sharex=True, sharey=True,
                             figsize=(panel_size * columns + 1.0, (panel_size + 0.75) * rows + 0.5))
    for i, (ax, snapshot, image_values) in enumerate(zip(axes.flat, snapshots, shown)):
        image = ax.imshow(image_values, origin="lower", extent=limits(lim), aspect="equal",
                          vmin=log_floor if log else 0.0, vmax=vmax)
        ax.set_title(f"epoch {snapshot.epoch}\nheld-out NLL {snapshot.heldout_nll:.3f}", fontsize=9)
        if i % columns == 0:  # one shared y axis per row, labelled once
            ax.set_ylabel("$x_2$")
        if i >= len(snapshots) - columns:
            ax.set_xlabel("$x_1$")
    for ax in list(axes.flat)[len(snapshots):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=list(axes.flat), fraction=0.03, pad=0.03, label=_colour_label(log))
    floor = f" (floor: the truth's entropy, {entropy:.3f} nats)" if entropy is not None else ""
    scale = "one log colour scale" if log else "one colour scale"
    fig.suptitle(f"The density as it trains, {scale} for all panels{floor}", fontsize=10)
    return fig


def plot_chain_stages_by_flow(flows: dict[str, tfd.TransformedDistribution], z: np.ndarray,
                              panel_size: float = 1.7) -> plt.Figure:
    """Several flows' chains side by side: one row per flow, one column per stage, the same
    base points ``z`` (coloured by their angle) pushed through each. The panels of one column
    share a square window, so the flows can be compared stage by stage on one scale."""
    from flowlab.anatomy import chain_stages

    if not flows:
        raise ValueError("flows must name at least one flow, got an empty dict")
    z = _validate.points("z", z).astype(np.float32)
    rows = {name: chain_stages(flow, z) for name, flow in flows.items()}
    columns = max(len(stages) for stages in rows.values())
    angle = np.arctan2(z[:, 1], z[:, 0])
    windows = []
    for i in range(columns):
        points = np.concatenate([stages[i].points for stages in rows.values() if i < len(stages)])
        lo, hi = np.percentile(points, [0.5, 99.5], axis=0)
        windows.append(((lo + hi) / 2, 0.55 * float((hi - lo).max())))  # a square window, 10 % margin
    panel_size = min(panel_size, 10.0 / columns)  # at most 10 inches wide: readable at notebook width
    fig, axes = plt.subplots(len(rows), columns, squeeze=False,
                             figsize=(panel_size * columns, (panel_size + 0.3) * len(rows) + 0.7))
    for row, (name, stages) in zip(axes, rows.items()):
        for i, ax in enumerate(row):
            if i >= len(stages):
                ax.set_visible(False)
                continue
            points = stages[i].points
            ax.scatter(points[:, 0], points[:, 1], c=angle, cmap="hsv", s=1, linewidths=0)
            centre, half = windows[i]
            ax.set_xlim(centre[0] - half, centre[0] + half)
            ax.set_ylim(centre[1] - half, centre[1] + half)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=6)
            ax.set_title(f"{i}: {stages[i].name}", fontsize=7)
        row[0].set_ylabel(f"{name}\ncoordinate 2", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("coordinate 1", fontsize=7)
    fig.suptitle("Each flow's chain, one bijector at a time (columns: stages from base z to data x, one "
                 "scale per column; rows: flows)", fontsize=9)
    fig.tight_layout(h_pad=0.8)
    return fig


def plot_normality(z: np.ndarray, title: str = "Data pushed back to z") -> plt.Figure:
    """Does ``z`` look like a 2-D standard normal? Three panels: a scatter with the 1, 2 and 3
    standard-deviation circles, and a normal Q-Q plot of each coordinate (points on the
    diagonal: that coordinate's quantiles are the standard normal's)."""
    from scipy import stats

    z = _validate.points("z", z)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    plot_points(z, "scatter, with 1, 2, 3 std circles", lim=4, ax=axes[0], names=("$z_1$", "$z_2$"),
                alpha=0.2)
    for radius in (1, 2, 3):
        axes[0].add_patch(plt.Circle((0, 0), radius, fill=False, color="k", linewidth=0.8, linestyle=":"))
    n = len(z)
    theoretical = stats.norm.ppf((np.arange(n) + 0.5) / n)
    for i, ax in enumerate(axes[1:]):
        ax.plot(theoretical, np.sort(z[:, i]), ".", markersize=2, label=f"$z_{i + 1}$ quantiles")
        ax.plot([-4, 4], [-4, 4], "k--", linewidth=1, label="standard normal")
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4.5, 4.5)
        ax.legend(loc="upper left")
        _label(ax, f"Q-Q plot of $z_{i + 1}$", ("standard normal quantile", f"sample quantile of $z_{i + 1}$"))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_point_panels(points: dict[str, np.ndarray], lim: float | Sequence[float] = 2.5,
                      suptitle: str | None = None, alpha: float = 0.2) -> plt.Figure:
    """Point clouds side by side, one titled panel each, on one shared scale."""
    if not points:
        raise ValueError("points must name at least one set of points, got an empty dict")
    fig, axes = plt.subplots(1, len(points), figsize=(3.6 * len(points), 3.9), squeeze=False)
    for ax, (name, cloud) in zip(axes[0], points.items(), strict=True):
        plot_points(cloud, name, lim=lim, ax=ax, alpha=alpha)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_points_over_density(points: np.ndarray, density: tfd.Distribution | LogDensity, title: str,
                             lim: float | Sequence[float] = 2.5, n: int = 200, ax: plt.Axes | None = None,
                             log_floor: float = -6.0, max_points: int = 3000) -> plt.Axes:
    """Points (at most ``max_points`` of them) as dots over a density's log10 heat-map."""
    points = _validate.points("points", points)[:max_points]
    ax = plot_density(density, title, lim=lim, n=n, ax=ax, log=True, log_floor=log_floor)
    ax.plot(points[:, 0], points[:, 1], ".", color="white", markersize=2, alpha=0.5, markeredgewidth=0.0)
    return ax


def plot_paths(paths: np.ndarray, title: str, ax: plt.Axes | None = None, lim: float | Sequence[float] | None = 3.0,
               names: tuple[str, str] = ("$x_1$", "$x_2$")) -> plt.Axes:
    """Paths of points through time, shape ``(steps + 1, n, 2)`` (a continuous flow's, from
    :func:`flowlab.studies.flow_matching.euler_paths`): grey lines, their starts (noise) blue, their ends orange."""
    paths = np.asarray(paths, dtype=np.float64)
    if paths.ndim != 3 or paths.shape[-1] != 2 or paths.shape[0] < 2:
        raise ValueError(f"paths must have shape (steps + 1, n, 2) with at least 2 times, got {paths.shape}")
    ax = _axes(ax)
    ax.plot(paths[:, :, 0], paths[:, :, 1], color="0.6", linewidth=0.5, alpha=0.6)
    ax.plot(paths[0, :, 0], paths[0, :, 1], ".", color="tab:blue", markersize=3, label="t = 0 (noise)")
    ax.plot(paths[-1, :, 0], paths[-1, :, 1], ".", color="tab:orange", markersize=3, label="t = 1 (sample)")
    if lim is not None:
        x0, x1, y0, y1 = limits(lim)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.legend(loc="lower left", fontsize=8)
    _label(ax, title, names)
    return ax


def plot_velocity(velocity, t: float, title: str, ax: plt.Axes | None = None,  # type: ignore[no-untyped-def]
                  lim: float | Sequence[float] = 2.5, n: int = 17,
                  names: tuple[str, str] = ("$x_1$", "$x_2$")) -> plt.Axes:
    """A velocity field ``velocity(t, x)`` (points (m, 2) -> velocities (m, 2)) at time ``t`` as
    arrows on an ``n`` x ``n`` grid over ``lim``."""
    from flowlab.measure import grid as _grid

    xx, yy, points = _grid(lim, n)
    v = np.asarray(velocity(np.float32(t), points))
    ax = _axes(ax)
    ax.quiver(xx, yy, v[:, 0].reshape(xx.shape), v[:, 1].reshape(xx.shape), color="tab:blue", angles="xy")
    ax.set_aspect("equal")
    _label(ax, title, names)
    return ax

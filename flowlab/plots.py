"""Figures for the lab: points, densities on a grid with a colour bar, loss curves.
Every figure gets a title and labelled axes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import tensorflow_probability as tfp

from flowlab import _validate

tfd = tfp.distributions

__all__ = ["grid", "density_on_grid", "plot_points", "plot_density", "plot_loss",
           "plot_densities", "plot_normality"]

LogProb = Callable[[np.ndarray], np.ndarray]


def _limits(lim: float | Sequence[float]) -> tuple[float, float, float, float]:
    """``4`` -> ``(-4, 4, -4, 4)``; ``(x0, x1, y0, y1)`` is kept."""
    if np.isscalar(lim):
        half = _validate.finite_float("lim", lim, minimum=0.0, strict=True)
        return (-half, half, -half, half)
    values = tuple(float(v) for v in lim)
    if len(values) != 4 or not all(np.isfinite(values)) or values[0] >= values[1] or values[2] >= values[3]:
        raise ValueError(f"lim must be a positive number or (xmin, xmax, ymin, ymax) "
                         f"with min < max, got {lim!r}")
    return values


def grid(lim: float | Sequence[float] = 4.0, n: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An ``n`` x ``n`` grid over ``lim``: the two coordinate arrays and the points
    as a float32 array of shape ``(n * n, 2)``.

    Example:
        >>> xx, yy, points = grid(1.0, n=3)
        >>> points.shape, points[0].tolist()
        ((9, 2), [-1.0, -1.0])
    """
    x0, x1, y0, y1 = _limits(lim)
    n = _validate.positive_int("n", n)
    xx, yy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    points = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
    return xx, yy, points


def _log_prob_fn(density: tfd.Distribution | LogProb) -> LogProb:
    if isinstance(density, tfd.Distribution):
        return lambda x: density.log_prob(x).numpy()
    if callable(density):
        return density
    raise TypeError(f"density must be a TFP distribution or a function returning log-densities, "
                    f"got {type(density).__name__}")


def density_on_grid(density: tfd.Distribution | LogProb, lim: float | Sequence[float] = 4.0,
                    n: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a density on :func:`grid`: returns ``xx, yy, p`` with ``p`` shaped like ``xx``.

    Example:
        >>> from flowlab.flows import standard_normal
        >>> xx, yy, p = density_on_grid(standard_normal(), lim=6.0, n=200)
        >>> round(float(p.sum() * (xx[0, 1] - xx[0, 0]) * (yy[1, 0] - yy[0, 0])), 3)
        1.0
    """
    xx, yy, points = grid(lim, n)
    log_p = np.asarray(_log_prob_fn(density)(points), dtype=np.float64)
    return xx, yy, np.exp(log_p).reshape(xx.shape)


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
        x0, x1, y0, y1 = _limits(lim)
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


def plot_density(density: tfd.Distribution | LogProb, title: str,
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
    image = ax.imshow(shown, origin="lower", extent=_limits(lim), aspect="equal",
                      vmin=log_floor if log else 0.0, vmax=vmax)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=_colour_label(log))
    _label(ax, title, names)
    return ax


def plot_loss(losses: Sequence[float], title: str = "Training loss",
              floor: float | None = None, ax: plt.Axes | None = None,
              floor_label: str | None = None) -> plt.Axes:
    """Loss per epoch; ``floor`` draws the best reachable value (the entropy of the truth),
    labelled ``floor_label`` if given."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"losses must be a non-empty 1-D sequence, got shape {losses.shape}")
    ax = ax if ax is not None else plt.figure(figsize=(6, 4)).gca()
    epochs = np.arange(1, losses.size + 1)
    ax.plot(epochs, losses, label="training NLL")
    if floor is not None:
        ax.axhline(floor, color="k", linestyle="--", linewidth=1,
                   label=floor_label if floor_label is not None else f"exact entropy ({floor:.3f} nats)")
    ax.legend()
    _label(ax, title, ("epoch", "negative log-likelihood (nats)"))
    return ax


def plot_densities(densities: dict[str, tfd.Distribution | LogProb],
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
        image = ax.imshow(p, origin="lower", extent=_limits(lim), aspect="equal",
                          vmin=log_floor if log else 0.0, vmax=vmax)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=_colour_label(log))
        _label(ax, name, ("$x_1$", "$x_2$"))
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
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

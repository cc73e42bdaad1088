"""Measurements of flows: held-out scores against the exact density (:func:`evaluate`), densities
on grids and their integrals (:func:`density_on_grid`), best-of-n timings, parameter counts, and
the mass in the gap between the moons. :mod:`flowlab.plots` only draws what these compute.

Where the gap is: the outer moon's right tip (1, 0) and the inner moon's left tip (0, 0.5)
face each other; the point halfway between them is ``1 - sqrt(5)/4 = 0.441`` (nearly 9 noise
stds at noise 0.05) from both half circles. :func:`gap_disc` is the disc around it that stays
``margin`` noise stds from both moons, and :func:`tip_path` the straight line from tip to tip.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.data import MOONS_GAP, make_moons, monte_carlo_mean, moons_distance, moons_log_prob
from flowlab.flows import build

tfd = tfp.distributions

__all__ = ["log_prob_numpy", "heldout_points", "evaluate", "limits", "grid", "density_on_grid",
           "best_time", "gap_points", "gap_mass", "MOON_TIPS", "gap_disc", "gap_disc_points",
           "gap_disc_mass", "tip_path", "parameter_count", "flow_row"]

LogDensity = Callable[[np.ndarray], np.ndarray]

#: The tips that face each other across the gap: the outer moon's right end, the inner moon's left end.
MOON_TIPS = np.array([[1.0, 0.0], [0.0, 0.5]])


def log_prob_numpy(flow: tfd.Distribution, x: np.ndarray, batch_size: int = 50_000) -> np.ndarray:
    """``flow.log_prob`` on many points, in blocks, as a float64 NumPy array."""
    x = np.asarray(x, dtype=np.float32)
    blocks = [flow.log_prob(x[i:i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(blocks).astype(np.float64)


def heldout_points(noise: float = 0.05, n_samples: int = 100_000, seed: int = 2024) -> np.ndarray:
    """The fresh moons :func:`evaluate` scores a flow on (same defaults), for computing other
    numbers on the very same points.

    Example:
        >>> heldout_points(n_samples=3).shape
        (3, 2)
    """
    return make_moons(n_samples, noise=noise, seed=seed)


def evaluate(flow: tfd.Distribution, noise: float = 0.05, n_samples: int = 100_000,
             seed: int = 2024) -> dict[str, float]:
    """Score a flow on fresh moons: held-out NLL, and the KL divergence from the
    exact density, ``mean(log p(x) - log q(x))`` over the same points.

    The KL is the forward divergence KL(p || q), with p the exact density: the one
    maximum likelihood minimises, since the expected NLL is ``entropy + KL(p || q)``.
    It is zero for a perfect model and does not depend on how hard the data set is.
    ``entropy`` is the exact density's mean NLL on these same points: the floor the
    held-out NLL cannot beat (up to noise). All three are Monte Carlo estimates; the
    ``*_se`` keys hold their standard errors. The KL's is small because it averages the
    difference on each point, in which most of the point-to-point scatter cancels.
    """
    n_samples = _validate.positive_int("n_samples", n_samples)
    x = heldout_points(noise, n_samples, seed)
    log_q = log_prob_numpy(flow, x)
    log_p = moons_log_prob(x, noise=noise)
    nll, entropy, kl = monte_carlo_mean(-log_q), monte_carlo_mean(-log_p), monte_carlo_mean(log_p - log_q)
    return {
        "heldout_nll": nll.mean,
        "entropy": entropy.mean,
        "kl_to_exact": kl.mean,
        "n_samples": n_samples,
        "heldout_nll_se": nll.standard_error,
        "entropy_se": entropy.standard_error,
        "kl_se": kl.standard_error,
    }


def limits(lim: float | Sequence[float]) -> tuple[float, float, float, float]:
    """A square or a box to cover: ``4`` -> ``(-4, 4, -4, 4)``; ``(x0, x1, y0, y1)`` is kept.

    Example:
        >>> limits(4), limits((0, 1, -2, 2))
        ((-4.0, 4.0, -4.0, 4.0), (0.0, 1.0, -2.0, 2.0))
    """
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
    x0, x1, y0, y1 = limits(lim)
    n = _validate.positive_int("n", n)
    xx, yy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    points = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
    return xx, yy, points


def _log_prob_fn(density: tfd.Distribution | LogDensity) -> LogDensity:
    if isinstance(density, tfd.Distribution):
        return lambda x: density.log_prob(x).numpy()
    if callable(density):
        return density
    raise TypeError(f"density must be a TFP distribution or a function returning log-densities, "
                    f"got {type(density).__name__}")


def density_on_grid(density: tfd.Distribution | LogDensity, lim: float | Sequence[float] = 4.0,
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


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest of ``repeats`` wall-clock runs of ``fn``, in seconds (the least disturbed one).

    Example:
        >>> best_time(lambda: sum(range(10))) < 1.0
        True
    """
    repeats = _validate.positive_int("repeats", repeats)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gap_points(h: float = 0.01) -> tuple[np.ndarray, float]:
    """Cell centres covering :data:`flowlab.data.MOONS_GAP` on a grid of spacing ``h``, and each cell's area."""
    h = _validate.finite_float("h", h, minimum=0.0, strict=True)
    x0, x1, y0, y1 = MOONS_GAP
    gx, gy = np.meshgrid(np.arange(x0, x1, h) + h / 2, np.arange(y0, y1, h) + h / 2)
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32), h * h


def gap_mass(log_prob: Callable[[np.ndarray], np.ndarray]) -> float:
    """Probability a density puts in :data:`flowlab.data.MOONS_GAP` (midpoint rule).

    Example:
        A density equal to 1 everywhere puts the box's area, 0.5 x 0.7, in it:

        >>> round(gap_mass(lambda x: np.zeros(len(x))), 6)
        0.35
    """
    points, area = gap_points()
    return float(np.exp(np.asarray(log_prob(points), dtype=np.float64)).sum() * area)


def gap_disc(noise: float = 0.05, margin: float = 4.0) -> tuple[np.ndarray, float]:
    """Centre and radius of the disc between the moons' tips whose every point lies at least
    ``margin * noise`` from both noise-free half circles.

    Example:
        >>> centre, radius = gap_disc(0.05, margin=4.0)
        >>> centre.tolist(), round(radius, 3)
        ([0.5, 0.25], 0.241)
    """
    noise = _validate.finite_float("noise", noise, minimum=0.0, strict=True)
    margin = _validate.finite_float("margin", margin, minimum=0.0)
    centre = MOON_TIPS.mean(axis=0)
    clearance = float(moons_distance(centre[None])[0])  # 1 - sqrt(5)/4
    radius = clearance - margin * noise
    if radius <= 0:
        raise ValueError(f"margin * noise must be below {clearance:.3f}, the gap's half-width, "
                         f"got {margin} * {noise} = {margin * noise:.3f}")
    return centre, radius


def gap_disc_points(noise: float = 0.05, margin: float = 4.0,
                    h: float = 0.0025) -> tuple[np.ndarray, float]:
    """Centres of the grid cells (spacing ``h``) inside :func:`gap_disc`, and each cell's area."""
    h = _validate.finite_float("h", h, minimum=0.0, strict=True)
    centre, radius = gap_disc(noise, margin)
    offsets = np.arange(-radius, radius, h) + h / 2
    gx, gy = np.meshgrid(offsets, offsets)
    inside = gx**2 + gy**2 < radius**2
    points = np.stack([gx[inside] + centre[0], gy[inside] + centre[1]], axis=1)
    return points.astype(np.float32), h * h


def gap_disc_mass(log_prob: Callable[[np.ndarray], np.ndarray], noise: float = 0.05,
                  margin: float = 4.0, h: float = 0.0025) -> float:
    """Probability a density puts in :func:`gap_disc` (midpoint rule on a grid of spacing ``h``).

    Example:
        >>> from flowlab.data import moons_log_prob
        >>> 1e-6 < gap_disc_mass(moons_log_prob) < 3e-6  # the truth: noise tails 4 stds out
        True
    """
    points, area = gap_disc_points(noise, margin, h)
    return float(np.exp(np.asarray(log_prob(points), dtype=np.float64)).sum() * area)


def tip_path(n: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points on the straight line from the outer moon's tip (1, 0) to the inner moon's
    tip (0, 0.5), and their position along it, from 0 to 1.

    Example:
        >>> s, points = tip_path(3)
        >>> s.tolist(), points.tolist()
        ([0.0, 0.5, 1.0], [[1.0, 0.0], [0.5, 0.25], [0.0, 0.5]])
    """
    n = _validate.positive_int("n", n)
    s = np.linspace(0.0, 1.0, max(n, 2))
    points = (1 - s[:, None]) * MOON_TIPS[0] + s[:, None] * MOON_TIPS[1]
    return s, points.astype(np.float32)


def parameter_count(flow: tfd.Distribution, ndim: int = 2) -> int:
    """Number of trainable numbers in a flow (its networks are built first if need be).

    Example:
        >>> from flowlab.flows import FlowConfig, make_flow
        >>> parameter_count(make_flow(FlowConfig(num_layers=1, hidden_units=(4,))))
        32
    """
    return int(sum(int(np.prod(v.shape)) for v in build(flow, ndim).trainable_variables))


def flow_row(flow: tfd.Distribution, train_seconds: float, seed: int = 1) -> dict[str, float]:
    """One row of the families table: size, timings, held-out scores (with the KL's standard
    error) and the mass in :func:`gap_disc`."""
    points = make_moons(100_000, seed=seed)
    scores = evaluate(flow)
    return {
        "params": parameter_count(flow),
        "train_s": train_seconds,
        "log_prob_100k_s": best_time(lambda: flow.log_prob(points).numpy()),
        "sample_10k_s": best_time(lambda: flow.sample(10_000, seed=seed).numpy()),
        "heldout_nll": scores["heldout_nll"],
        "kl_to_exact": scores["kl_to_exact"],
        "kl_se": scores["kl_se"],
        "gap_disc_mass": gap_disc_mass(lambda x: log_prob_numpy(flow, x)),
    }

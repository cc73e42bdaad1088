"""Measurements of flows: held-out scores against the exact density (:func:`evaluate`), densities
on grids and their integrals (:func:`density_on_grid`), best-of-n timings, parameter counts and
the families table's rows. :mod:`flowlab.plots` only draws what these compute.

The rest of the lab's measurements live beside it, and this module still exports each of their
names (``from flowlab.measure import gap_disc_mass, sample_metrics, bound_tightness`` as before):
the gap between the moons and the mass a density puts there (:mod:`flowlab.gap`), every model's
scores on its *samples* (:mod:`flowlab.sample_scores`), a VAE's likelihood bounds and their
tightness (:mod:`flowlab.bounds`), and the held-out points (:func:`flowlab.data.heldout_points`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.bounds import IWAE_KS, bound_tightness, likelihood_bounds
from flowlab.data import heldout_points, make_moons, monte_carlo_mean, moons_log_prob
from flowlab.flows import build
from flowlab.gap import (MOON_TIPS, gap_disc, gap_disc_mass, gap_disc_points, gap_mass, gap_points,
                         tip_path)
from flowlab.sample_scores import (COLLAPSE_FRACTION, arc_coverage, arc_position, energy_distance,
                                   gap_disc_fraction, sample_log_p_true, sample_metrics)

tfd = tfp.distributions

__all__ = ["log_prob_numpy", "heldout_points", "evaluate", "limits", "grid", "density_on_grid",
           "best_time", "gap_points", "gap_mass", "MOON_TIPS", "gap_disc", "gap_disc_points",
           "gap_disc_mass", "tip_path", "parameter_count", "flow_row", "sample_log_p_true",
           "energy_distance", "arc_position", "arc_coverage", "gap_disc_fraction", "COLLAPSE_FRACTION",
           "sample_metrics", "IWAE_KS", "likelihood_bounds", "bound_tightness"]

LogDensity = Callable[[np.ndarray], np.ndarray]


def log_prob_numpy(flow: tfd.Distribution, x: np.ndarray, batch_size: int = 50_000) -> np.ndarray:
    """``flow.log_prob`` on many points (shape (n, d), n >= 1), ``batch_size`` at a time, as a
    float64 NumPy array."""
    flow = _flow("flow", flow)
    batch_size = _validate.within("batch_size", "batch_size", batch_size)
    try:
        x = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"x must be an array of numbers of shape (n, d), got {type(x).__name__}") from None
    if x.ndim < 2 or x.shape[0] == 0 or tuple(x.shape[-1:]) != tuple(flow.event_shape):
        raise ValueError(f"x must have shape (n, {', '.join(map(str, flow.event_shape))}) with n >= 1 "
                         f"(the flow's event shape), got {x.shape}")
    blocks = [flow.log_prob(x[i:i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(blocks).astype(np.float64)


def _flow(name: str, flow: Any, event_shape: tuple[int, ...] | None = None) -> tfd.Distribution:
    """``flow`` if it is a distribution (of ``event_shape`` when given), else ValueError naming ``name``."""
    if not isinstance(flow, tfd.Distribution):
        raise ValueError(f"{name} must be a flow (a tfp Distribution, as make_flow makes), "
                         f"got {type(flow).__name__}: {flow!r}")
    if event_shape is not None and tuple(flow.event_shape) != event_shape:
        raise ValueError(f"{name} must be a density on points of shape {list(event_shape)} (the moons), "
                         f"got a flow with event shape {list(flow.event_shape)}")
    return flow


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
    flow = _flow("flow", flow, event_shape=(2,))
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

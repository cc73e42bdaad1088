"""Measurements for comparing flows: best-of-n timings and the mass in the moons' gap."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.data import MOONS_GAP, make_moons
from flowlab.train import evaluate, log_prob_numpy

tfd = tfp.distributions

__all__ = ["best_time", "gap_points", "gap_mass", "flow_row"]


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


def flow_row(flow: tfd.Distribution, train_seconds: float, seed: int = 1) -> dict[str, float]:
    """One row of the families table: timings, held-out scores and gap mass."""
    points = make_moons(100_000, seed=seed)
    scores = evaluate(flow)
    return {
        "train_s": train_seconds,
        "log_prob_100k_s": best_time(lambda: flow.log_prob(points).numpy()),
        "sample_10k_s": best_time(lambda: flow.sample(10_000, seed=seed).numpy()),
        "heldout_nll": scores["heldout_nll"],
        "kl_to_exact": scores["kl_to_exact"],
        "gap_mass": gap_mass(lambda x: log_prob_numpy(flow, x)),
    }

"""The gap between the moons, and the probability a density puts there.

Where the gap is: the outer moon's right tip (1, 0) and the inner moon's left tip (0, 0.5)
face each other; the point halfway between them is ``1 - sqrt(5)/4 = 0.441`` (nearly 9 noise
stds at noise 0.05) from both half circles. :func:`gap_disc` is the disc around it that stays
``margin`` noise stds from both moons, and :func:`tip_path` the straight line from tip to tip.
:func:`gap_mass` and :func:`gap_disc_mass` integrate a density over :data:`flowlab.data.MIDPOINT_BOX`
and the disc. :mod:`flowlab.measure` exports these names too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flowlab import _validate
from flowlab.data import MIDPOINT_BOX, moons_distance

__all__ = ["MOON_TIPS", "gap_points", "gap_mass", "gap_disc", "gap_disc_points", "gap_disc_mass", "tip_path"]

#: The tips that face each other across the gap: the outer moon's right end, the inner moon's left end.
MOON_TIPS = np.array([[1.0, 0.0], [0.0, 0.5]])


def gap_points(h: float = 0.01) -> tuple[np.ndarray, float]:
    """Cell centres covering :data:`flowlab.data.MIDPOINT_BOX` on a grid of spacing ``h``, and each cell's area."""
    h = _validate.finite_float("h", h, minimum=0.0, strict=True)
    x0, x1, y0, y1 = MIDPOINT_BOX
    gx, gy = np.meshgrid(np.arange(x0, x1, h) + h / 2, np.arange(y0, y1, h) + h / 2)
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32), h * h


def gap_mass(log_prob: Callable[[np.ndarray], np.ndarray]) -> float:
    """Probability a density puts in :data:`flowlab.data.MIDPOINT_BOX` (midpoint rule).

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

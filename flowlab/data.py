"""Two-moons data and its exact density.

``sklearn.datasets.make_moons`` spaces points evenly along two half circles,
``c1(t) = (cos t, sin t)`` and ``c2(t) = (1 - cos t, 0.5 - sin t)`` for t in [0, pi],
half on each, then adds isotropic Gaussian noise of standard deviation ``noise``.
In the large-n limit the density is therefore

    p(x) = 1/2 * sum_k 1/pi * integral_0^pi N(x; c_k(t), noise^2 I) dt,

which Gauss-Legendre quadrature along each half circle evaluates to about ten digits.
Averages over samples (the entropy, a held-out NLL, a KL divergence) are Monte Carlo
estimates: :func:`monte_carlo_mean` gives each one with its standard error.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from sklearn import datasets

from flowlab import _validate

__all__ = ["make_moons", "moons_log_prob", "moons_entropy", "MIDPOINT_BOX",
           "Estimate", "monte_carlo_mean", "moons_entropy_estimate", "moons_distance",
           "curve_nodes", "heldout_points"]

#: The box (x0 min, x0 max, x1 min, x1 max) around the midpoint between the moons' tips. Not
#: empty under the exact density: two of its corners lie 0.04 (0.8 noise std) from the moons,
#: so most of its exact mass (4.3e-3) is the moons' own noise. For a region several noise
#: stds from both moons see :func:`flowlab.measure.gap_disc`.
MIDPOINT_BOX = (0.25, 0.75, -0.1, 0.6)
_CHUNK = 8192  # points per block in the quadrature: bounds memory at ~35 MB
_NODES_PER_STD = 4  # quadrature nodes per noise std of arc length


def make_moons(n_samples: int = 10_000, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Sample the two-moons data set as a float32 array of shape ``(n_samples, 2)``.

    Example:
        >>> make_moons(4, seed=1).shape, make_moons(4, seed=1).dtype
        ((4, 2), dtype('float32'))
    """
    n_samples = _validate.positive_int("n_samples", n_samples)
    noise = _validate.finite_float("noise", noise, minimum=0.0)
    seed = _validate.non_negative_int("seed", seed)
    points, _ = datasets.make_moons(n_samples, noise=noise, random_state=seed)
    return points.astype(np.float32)


def curve_nodes(noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on both half circles, shape ``(2 * m, 2)``, and the
    log of their weights (each curve's weights sum to 1/2): at least four nodes
    per noise standard deviation of arc length: the quadrature of the exact density, shared by
    :func:`moons_log_prob` and :func:`flowlab.studies.reverse_kl.moons_log_prob_tf`.

    Example:
        >>> nodes, log_weights = curve_nodes(0.05)
        >>> nodes.shape, round(float(np.exp(log_weights).sum()), 6)
        ((512, 2), 1.0)
    """
    m = max(256, int(np.ceil(_NODES_PER_STD * np.pi / noise)))
    u, w = np.polynomial.legendre.leggauss(m)
    t = (u + 1.0) * np.pi / 2
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)
    inner = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    log_w = np.log(w / 4.0)  # (1/2 per moon) * (1/pi) * (pi/2 from the change of interval)
    return np.concatenate([outer, inner]), np.concatenate([log_w, log_w])


def _logsumexp_rows(values: np.ndarray) -> np.ndarray:
    """``log(sum(exp(values), axis=1))`` without overflow, overwriting ``values``: in place it
    is about twice as fast as ``scipy.special.logsumexp`` on the quadrature's blocks.

    Example:
        >>> _logsumexp_rows(np.log([[1.0, 3.0], [2.0, 2.0]]))
        array([1.38629436, 1.38629436])
    """
    peak = values.max(axis=1, keepdims=True)
    peak[~np.isfinite(peak)] = 0.0  # a row of -inf (a point too far for float64) stays -inf
    values -= peak
    np.exp(values, out=values)
    with np.errstate(divide="ignore"):
        return np.log(values.sum(axis=1)) + peak[:, 0]


def moons_log_prob(x: np.ndarray, noise: float = 0.05) -> np.ndarray:
    """Exact log-density of the two-moons distribution at points ``x`` (shape ``(n, 2)``).

    Example:
        >>> lp = moons_log_prob([[1.0, 0.0], [0.5, 0.25]])
        >>> bool(lp[0] > lp[1])  # on the outer moon vs in the gap
        True
    """
    x = _validate.points("x", x)
    noise = _validate.finite_float("noise", noise, minimum=0.0, strict=True)
    nodes, log_weights = curve_nodes(noise)
    log_norm = -np.log(2 * np.pi * noise**2)
    node_sq = (nodes**2).sum(1)
    out = np.empty(len(x))
    for start in range(0, len(x), _CHUNK):
        block = x[start:start + _CHUNK]
        # |x - c|^2 = |x|^2 + |c|^2 - 2 x.c, the cross term as one matrix product
        with np.errstate(over="ignore"):  # points beyond float64's reach: their density is 0
            sq_dist = (block**2).sum(1)[:, None] + node_sq[None, :] - 2.0 * block @ nodes.T
        out[start:start + _CHUNK] = _logsumexp_rows(log_weights - sq_dist / (2 * noise**2)) + log_norm
    return out


class Estimate(NamedTuple):
    """A Monte Carlo estimate: the sample mean and its standard error."""

    mean: float
    standard_error: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.standard_error:.3f}"


def monte_carlo_mean(values: np.ndarray) -> Estimate:
    """Mean of independent draws and its standard error, ``std(values, ddof=1) / sqrt(n)``.

    About two times in three the true mean lies within one standard error of the estimate,
    19 times in 20 within two. Non-finite draws give a non-finite estimate.

    Example:
        >>> monte_carlo_mean([1.0, 2.0, 3.0, 4.0])
        Estimate(mean=2.5, standard_error=0.6454972243679028)
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 2:
        raise ValueError(f"values must hold at least 2 draws to estimate an error, got {values.size}")
    return Estimate(float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size)))


def moons_entropy_estimate(noise: float = 0.05, n_samples: int = 200_000,
                           seed: int = 12345) -> Estimate:
    """Differential entropy of the two-moons distribution in nats, ``-E[log p(x)]``, estimated
    by Monte Carlo on ``n_samples`` fresh points, with its standard error (about 0.002 nats at
    200,000 points and noise 0.05).

    Example:
        >>> entropy = moons_entropy_estimate(0.05, n_samples=20_000)
        >>> round(entropy.mean, 1), round(entropy.standard_error, 3)
        (0.3, 0.005)
    """
    return _entropy_estimate(_validate.finite_float("noise", noise, minimum=0.0, strict=True),
                             _validate.positive_int("n_samples", n_samples),
                             _validate.non_negative_int("seed", seed))


@functools.lru_cache(maxsize=8)
def _entropy_estimate(noise: float, n_samples: int, seed: int) -> Estimate:
    """:func:`moons_entropy_estimate`, cached under one key however it was called (by
    keyword, by position, or with the defaults): computing it takes seconds."""
    samples = make_moons(n_samples, noise=noise, seed=seed)
    return monte_carlo_mean(-moons_log_prob(samples, noise=noise))


def moons_entropy(noise: float = 0.05, n_samples: int = 200_000, seed: int = 12345) -> float:
    """Differential entropy of the two-moons distribution in nats (Monte Carlo): the mean of
    :func:`moons_entropy_estimate`, whose standard error at 200,000 points is about 0.002 nats.

    Example:
        >>> round(moons_entropy(0.05, n_samples=20_000), 1)
        0.3
    """
    return moons_entropy_estimate(noise, n_samples, seed).mean


def moons_distance(x: np.ndarray) -> np.ndarray:
    """Distance from each point to the nearer of the two noise-free half circles.

    Example:
        >>> moons_distance([[0.0, 1.2], [0.5, 0.25], [-1.0, -0.3]]).round(3).tolist()
        [0.2, 0.441, 0.3]
    """
    x = _validate.points("x", x).astype(np.float64)

    def to_arc(q: np.ndarray, upper: bool) -> np.ndarray:
        # the arc is the upper (or lower) half of the unit circle around the origin
        on_side = q[:, 1] >= 0 if upper else q[:, 1] <= 0
        to_circle = np.abs(np.linalg.norm(q, axis=1) - 1.0)
        ends = np.array([[1.0, 0.0], [-1.0, 0.0]])
        to_ends = np.min(np.linalg.norm(q[:, None, :] - ends[None], axis=2), axis=1)
        return np.where(on_side, to_circle, to_ends)

    return np.minimum(to_arc(x, True), to_arc(x - np.array([1.0, 0.5]), False))


def heldout_points(noise: float = 0.05, n_samples: int = 100_000, seed: int = 2024) -> np.ndarray:
    """The fresh moons :func:`flowlab.measure.evaluate` scores a flow on (same defaults), for
    computing other numbers on the very same points.

    Example:
        >>> heldout_points(n_samples=3).shape
        (3, 2)
    """
    return make_moons(n_samples, noise=noise, seed=seed)

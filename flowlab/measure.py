"""Measurements of flows: held-out scores against the exact density (:func:`evaluate`), densities
on grids and their integrals (:func:`density_on_grid`), best-of-n timings, parameter counts, and
the mass in the gap between the moons. :mod:`flowlab.plots` only draws what these compute.

Every model, flow or not, is also scored on its *samples* (:func:`sample_metrics`): their mean
exact log-density, the energy distance to fresh true samples, the mass along each moon's arc
(:func:`arc_coverage`: a dropped mode shows) and in the gap disc. A VAE's likelihood bounds are
:func:`likelihood_bounds`'s.

Where the gap is: the outer moon's right tip (1, 0) and the inner moon's left tip (0, 0.5)
face each other; the point halfway between them is ``1 - sqrt(5)/4 = 0.441`` (nearly 9 noise
stds at noise 0.05) from both half circles. :func:`gap_disc` is the disc around it that stays
``margin`` noise stds from both moons, and :func:`tip_path` the straight line from tip to tip.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.data import (MIDPOINT_BOX, Estimate, make_moons, monte_carlo_mean, moons_distance,
                          moons_log_prob)
from flowlab.flows import build

tfd = tfp.distributions

__all__ = ["log_prob_numpy", "heldout_points", "evaluate", "limits", "grid", "density_on_grid",
           "best_time", "gap_points", "gap_mass", "MOON_TIPS", "gap_disc", "gap_disc_points",
           "gap_disc_mass", "tip_path", "parameter_count", "flow_row", "sample_log_p_true",
           "energy_distance", "arc_position", "arc_coverage", "gap_disc_fraction", "COLLAPSE_FRACTION",
           "sample_metrics", "IWAE_KS", "likelihood_bounds", "bound_tightness"]

LogDensity = Callable[[np.ndarray], np.ndarray]

#: The tips that face each other across the gap: the outer moon's right end, the inner moon's left end.
MOON_TIPS = np.array([[1.0, 0.0], [0.0, 0.5]])


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


# ---- scores of samples: the same for every model (flow, VAE, GAN) ----

def sample_log_p_true(samples: np.ndarray, noise: float = 0.05) -> Estimate:
    """Mean exact log-density of a model's samples, ``E_q[log p(x)]`` ("are the samples
    plausible?"), with its standard error. True samples score minus the entropy (about -0.29 at
    noise 0.05); a mode-seeking model that piles its samples on the arcs' crests scores *higher*
    than the truth, one that spreads them into the gaps lower.

    Example:
        >>> round(sample_log_p_true([[0.0, 1.0], [1.0, -0.5]]).mean, 2)  # on the crests of both moons
        0.24
    """
    return monte_carlo_mean(moons_log_prob(_validate.points("samples", samples), noise=noise))


def _mean_distance(x: np.ndarray, y: np.ndarray, block: int, exclude_diagonal: bool) -> float:
    """Mean Euclidean distance over all pairs (x_i, y_j), ``block`` rows of x at a time; with
    ``exclude_diagonal`` (x is y) over the pairs i != j (whose diagonal is 0 anyway). Float32
    coordinate differences (no ``|x|^2 + |y|^2 - 2 x.y`` cancellation), each block's sum added
    in float64: it agrees with an all-float64 computation to about 1e-8 and is 4 times faster."""
    x, y = x.astype(np.float32), y.astype(np.float32)
    total = 0.0
    for start in range(0, len(x), block):
        dx = x[start:start + block, :1] - y[:, 0]
        dy = x[start:start + block, 1:] - y[:, 1]
        dx *= dx
        dy *= dy
        dx += dy
        total += float(np.sqrt(dx, out=dx).sum())
    pairs = len(x) * (len(y) - 1) if exclude_diagonal else len(x) * len(y)
    return total / pairs


def energy_distance(x: np.ndarray, y: np.ndarray, block: int = 1000) -> float:
    """Energy distance between the distributions of two samples (Szekely & Rizzo), the unbiased
    **U-statistic** ``2 E|X - Y| - E|X - X'| - E|Y - Y'|``: the cross term over all pairs, each
    within-sample term over its pairs of distinct points. Its expectation is 0 when both come
    from one distribution (so an estimate can be slightly negative) and positive otherwise; it
    grows like the squared shift for small shifts. Computed ``block`` rows at a time: 10,000 x
    10,000 points takes about a second (2 cores) and some 80 MB.

    Example:
        >>> energy_distance([[0.0, 0.0], [0.0, 1.0]], [[3.0, 0.0], [3.0, 1.0]]) > 4
        True
    """
    x = _validate.points("x", x)
    y = _validate.points("y", y)
    block = _validate.positive_int("block", block)
    for name, sample in (("x", x), ("y", y)):
        if len(sample) < 2:
            raise ValueError(f"{name} must hold at least 2 points, got {len(sample)}")
    return (2.0 * _mean_distance(x, y, block, False) - _mean_distance(x, x, block, True)
            - _mean_distance(y, y, block, True))


def arc_position(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each point: the nearer moon (0: outer, ``c1(t) = (cos t, sin t)``; 1: inner,
    ``c2(t) = (1 - cos t, 0.5 - sin t)``), the arc parameter ``t`` in [0, pi] of the nearest point
    on that noise-free half circle, and the distance to it.

    Example:
        >>> moon, t, distance = arc_position([[0.0, 1.1], [1.0, -0.45]])
        >>> moon.tolist(), (t / np.pi).round(2).tolist(), distance.round(2).tolist()
        ([0, 1], [0.5, 0.5], [0.1, 0.05])
    """
    x = _validate.points("samples", samples)

    def on_upper_half_circle(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        angle = np.arctan2(q[:, 1], q[:, 0])
        end_t = np.where(q[:, 0] >= 0, 0.0, np.pi)  # below the diameter: the nearer end
        end = np.stack([np.cos(end_t), np.sin(end_t)], axis=1)
        above = angle >= 0
        t = np.where(above, angle, end_t)
        distance = np.where(above, np.abs(np.linalg.norm(q, axis=1) - 1.0), np.linalg.norm(q - end, axis=1))
        return t, distance

    t_outer, d_outer = on_upper_half_circle(x)
    t_inner, d_inner = on_upper_half_circle(np.array([1.0, 0.5]) - x)  # c2(t) = (1, 0.5) - (cos t, sin t)
    inner = d_inner < d_outer
    return inner.astype(int), np.where(inner, t_inner, t_outer), np.where(inner, d_inner, d_outer)


def arc_coverage(samples: np.ndarray, noise: float = 0.05, bins: int = 10,
                 max_stds: float = 3.0) -> np.ndarray:
    """Share of all samples in each of ``bins`` equal arc-parameter bins along each moon, shape
    ``(2, bins)`` (row 0: outer moon, t from its right tip (1, 0) to its left; row 1: inner moon,
    from its left tip (0, 0.5) to its right): each sample goes to the nearer moon and the bin of
    its nearest arc point (:func:`arc_position`), and counts only within ``max_stds * noise`` of it.
    The truth puts 1 / (2 bins) in each bin, less the noise beyond ``max_stds`` (0.27% at 3 stds);
    a dropped mode shows as empty bins, a thin arc as low ones; what is missing from the total lies
    off the moons.

    Example:
        >>> arc_coverage([[0.0, 1.0], [2.0, 0.5], [5.0, 5.0]], bins=2).round(3).tolist()
        [[0.0, 0.333], [0.0, 0.333]]
    """
    noise = _validate.finite_float("noise", noise, minimum=0.0, strict=True)
    bins = _validate.positive_int("bins", bins)
    max_stds = _validate.finite_float("max_stds", max_stds, minimum=0.0, strict=True)
    moon, t, distance = arc_position(samples)
    near = distance <= max_stds * noise
    index = np.minimum((t / np.pi * bins).astype(int), bins - 1)
    counts = np.zeros((2, bins))
    np.add.at(counts, (moon[near], index[near]), 1.0)
    return counts / len(t)


def gap_disc_fraction(samples: np.ndarray, noise: float = 0.05, margin: float = 4.0) -> float:
    """Share of samples inside :func:`gap_disc`: the sample version of :func:`gap_disc_mass`, for
    models without a density. The truth puts about 2e-6 there (noise tails ``margin`` stds out).

    Example:
        >>> gap_disc_fraction([[0.5, 0.25], [1.0, 0.0]])
        0.5
    """
    x = _validate.points("samples", samples)
    centre, radius = gap_disc(noise, margin)
    return float(np.mean(np.sum((x - centre) ** 2, axis=1) < radius**2))


#: :func:`sample_metrics` flags mode collapse when some arc bin holds less than this share of its
#: true mass (1 / (2 bins)): a quarter.
COLLAPSE_FRACTION = 0.25


def sample_metrics(samples: np.ndarray, noise: float = 0.05, seed: int = 7, n_reference: int = 10_000,
                   bins: int = 10) -> dict[str, object]:
    """Score a model's samples against the truth, the same for every model. Returns a dict:

    - ``sample_log_p_true``, ``sample_log_p_true_se``: :func:`sample_log_p_true`;
    - ``energy_distance``: :func:`energy_distance` to ``n_reference`` fresh true moons drawn with
      ``seed`` (for two true samples of 10,000 it is 0 +- about 2e-4);
    - ``arc_coverage``: :func:`arc_coverage` as a nested list (2 x ``bins``), ``off_moons``: the share
      of samples farther than 3 noise stds from both moons (the truth's: 0.27%), ``min_arc_ratio``:
      the emptiest bin's share over its true share, ``mode_collapse``: ``min_arc_ratio`` below
      :data:`COLLAPSE_FRACTION`;
    - ``gap_disc_fraction``: :func:`gap_disc_fraction`; ``n_samples``.

    Example:
        >>> scores = sample_metrics(make_moons(2000, seed=3), n_reference=2000)
        >>> scores["mode_collapse"], abs(scores["energy_distance"]) < 0.01
        (False, True)
    """
    x = _validate.points("samples", samples)
    seed = _validate.non_negative_int("seed", seed)
    n_reference = _validate.positive_int("n_reference", n_reference)
    log_p = sample_log_p_true(x, noise)
    coverage = arc_coverage(x, noise, bins)
    min_ratio = float(coverage.min() * 2 * bins)
    return {
        "sample_log_p_true": log_p.mean,
        "sample_log_p_true_se": log_p.standard_error,
        "energy_distance": energy_distance(x, make_moons(n_reference, noise=noise, seed=seed)),
        "arc_coverage": coverage.tolist(),
        "off_moons": float(1.0 - coverage.sum()),
        "min_arc_ratio": min_ratio,
        "mode_collapse": min_ratio < COLLAPSE_FRACTION,
        "gap_disc_fraction": gap_disc_fraction(x, noise),
        "n_samples": len(x),
    }


#: The numbers of importance samples :func:`likelihood_bounds` reports by default.
IWAE_KS = (1, 10, 100, 1000)


def likelihood_bounds(model: object, noise: float = 0.05, n_samples: int = 10_000, seed: int = 2024,
                      ks: Sequence[int] = IWAE_KS, bound_seed: int = 0) -> dict[str, float]:
    """Upper bounds on a latent-variable model's held-out NLL (e.g. a :class:`flowlab.studies.vae.VAE`:
    anything with ``elbo(x, seed)`` and ``iwae_bound(x, k, seed)``), on the points
    :func:`evaluate` uses (``heldout_points(noise, n_samples, seed)``), and the upper bounds on
    the KL divergence from the truth they imply (bound minus the exact NLL, point by point).

    Keys (each mean has a ``*_se``, its standard error): ``neg_elbo`` (the mean negative ELBO),
    ``iwae_{k}`` for each k, ``kl_upper_bound_elbo`` and ``kl_upper_bound_{k}``, ``entropy`` (the
    exact mean NLL on the same points: no bound may fall below it, beyond noise),
    ``nll_upper_bound`` and ``kl_upper_bound`` (the largest k's), ``n_samples``. In nats. The
    default 10,000 points (not evaluate's 100,000) keep k = 1000 to seconds.
    """
    if not (callable(getattr(model, "iwae_bound", None)) and callable(getattr(model, "elbo", None))):
        raise ValueError(f"model must have elbo(x, seed) and iwae_bound(x, k, seed) methods (e.g. a "
                         f"flowlab.vae.VAE), got {type(model).__name__}")
    n_samples = _validate.positive_int("n_samples", n_samples)
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence) or not ks:
        raise ValueError(f"ks must be a non-empty list of positive integers, got {ks!r}")
    ks = [_validate.positive_int(f"ks[{i}]", k) for i, k in enumerate(ks)]
    x = heldout_points(noise, n_samples, seed)
    log_p = moons_log_prob(x, noise=noise)
    entropy = monte_carlo_mean(-log_p)
    out: dict[str, float] = {"entropy": entropy.mean, "entropy_se": entropy.standard_error,
                             "n_samples": n_samples}

    def record(name: str, kl_name: str, bound: np.ndarray) -> None:
        mean, kl = monte_carlo_mean(bound), monte_carlo_mean(bound + log_p)
        out.update({name: mean.mean, f"{name}_se": mean.standard_error,
                    kl_name: kl.mean, f"{kl_name}_se": kl.standard_error})

    record("neg_elbo", "kl_upper_bound_elbo", -np.asarray(model.elbo(x, seed=bound_seed)))
    for k in ks:
        record(f"iwae_{k}", f"kl_upper_bound_{k}", np.asarray(model.iwae_bound(x, k=k, seed=bound_seed)))
    out["nll_upper_bound"] = out[f"iwae_{max(ks)}"]
    out["kl_upper_bound"] = out[f"kl_upper_bound_{max(ks)}"]
    return out


def bound_tightness(model: object, noise: float = 0.05, n_samples: int = 10_000, seed: int = 2024,
                    ks: Sequence[int] = IWAE_KS, lim: float = 6.0, n: int = 200) -> dict[str, float]:
    """:func:`likelihood_bounds` and the model's exact NLL on the same held-out points, summed on
    a latent grid (``model.grid_nll(x, lim, n)``, e.g. a :class:`flowlab.studies.vae.VAE`), with each
    bound's tightness: the bound minus that NLL (``tightness_elbo``, ``tightness_{k}``), in nats.
    Adds ``grid_nll`` (and ``grid_nll_se``), ``grid_kl`` (its KL from the truth: grid NLL minus
    the entropy on the same points) and ``grid_prior_mass`` (the prior's mass on the grid).

    Example:
        >>> from flowlab.studies.vae import VAE
        >>> out = bound_tightness(VAE(hidden_units=(8,)), n_samples=50, ks=(1, 10), n=50)
        >>> sorted(key for key in out if key.startswith("tightness"))
        ['tightness_1', 'tightness_10', 'tightness_elbo']
    """
    if not callable(getattr(model, "grid_nll", None)):
        raise ValueError(f"model must have a grid_nll(x, lim, n) method (e.g. a flowlab.vae.VAE), "
                         f"got {type(model).__name__}")
    out = likelihood_bounds(model, noise=noise, n_samples=n_samples, seed=seed, ks=ks)
    nll = monte_carlo_mean(np.asarray(model.grid_nll(heldout_points(noise, n_samples, seed), lim=lim, n=n)))
    out.update({"grid_nll": nll.mean, "grid_nll_se": nll.standard_error, "grid_kl": nll.mean - out["entropy"],
                "grid_prior_mass": float(model.grid_prior_mass(lim=lim, n=n)),
                "tightness_elbo": out["neg_elbo"] - nll.mean})
    out.update({f"tightness_{k}": out[f"iwae_{k}"] - nll.mean for k in ks})
    return out

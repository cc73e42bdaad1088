"""Is a map a bijector? A numerical verdict, with the reason, for maps of 1 to 3 coordinates.

A flow can only use a map that takes its domain one-to-one onto its image, with as many outputs
as inputs. :func:`check_bijection` decides that on a grid over a stated box and says why:

- **dimension change**: ``d`` numbers in, ``k != d`` out (a sum, a projection): never a bijector;
- **a fold**: in one coordinate, ``f`` rises and then falls (its derivative changes sign); in two or
  three, the Jacobian determinant changes sign. Either way some outputs are taken twice;
- **a flattening**: a Jacobian that is singular *everywhere* (a singular matrix) squashes the box
  onto a lower-dimensional set, so whole lines of inputs share one output;
- **a collision**: two distinct grid points with the same output;
- **a failed round trip** through an ``inverse``, when one is given.

A Jacobian that vanishes only at isolated points (``x**3`` at 0, ``cos`` at the ends of [0, pi])
does not stop a map being one-to-one; the verdict says so and notes where it vanishes (the inverse
has an infinite slope there). This is a numerical test on a grid, not a proof: a map that turns back
only between grid points, or repeats itself at distances the grid never meets, can pass.

:data:`SHEET_EXAMPLES` holds the lab sheet's examples, and a few more, with their domains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Verdict", "Example", "check_bijection", "grid", "SHEET_EXAMPLES"]

Map = Callable[[np.ndarray], Any]

#: Grid points per axis for a domain of 1, 2 or 3 coordinates.
_PER_AXIS = {1: 2001, 2: 61, 3: 17}
#: At most this many points enter the pairwise search for two inputs with one output.
_PAIRS_MAX = 1200


@dataclass(frozen=True)
class Verdict:
    """Whether a map is a bijection onto its image, and why, in one or two sentences."""

    bijective: bool
    reason: str


@dataclass(frozen=True)
class Example:
    """A map and the box it is defined on, as the lab states it."""

    formula: str
    domain: tuple[tuple[float, float], ...]
    domain_text: str
    f: Map

    def verdict(self) -> Verdict:
        """:func:`check_bijection` of this example on its domain."""
        return check_bijection(self.f, self.domain)


def _domain(domain: Any) -> tuple[tuple[float, float], ...]:
    """``domain`` as a tuple of (low, high) pairs, one per coordinate; a single pair is 1-D."""
    try:
        array = np.asarray(domain, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"domain must be a (low, high) pair or a list of them, got {domain!r}") from None
    if array.shape == (2,):
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 2 or not 1 <= len(array) <= 3:
        raise ValueError(f"domain must be a (low, high) pair or a list of 1 to 3 of them, got {domain!r}")
    if not np.all(np.isfinite(array)) or not np.all(array[:, 0] < array[:, 1]):
        raise ValueError(f"domain must hold finite pairs with low < high, got {domain!r}")
    if not np.all(np.isfinite(array[:, 1] - array[:, 0])):
        raise ValueError(f"domain must hold pairs whose width high - low is a finite float64 (below about "
                         f"1.8e308; the grid's steps and derivatives need it), got {domain!r}")
    return tuple((float(low), float(high)) for low, high in array)


def grid(domain: Any) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The grid :func:`check_bijection` uses: points of shape ``(m, d)`` and each axis' values.

    Example:
        >>> points, axes = grid([(0.0, 1.0), (-1.0, 1.0)])
        >>> points.shape, len(axes), float(axes[1][0])
        ((3721, 2), 2, -1.0)
    """
    box = _domain(domain)
    axes = tuple(np.linspace(low, high, _PER_AXIS[len(box)]) for low, high in box)
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1), axes


def _values(f: Map, x: np.ndarray, argument: str = "f") -> np.ndarray:
    """``f`` on the points ``x`` (shape (m, d)) as float64 of shape (m, k)."""
    y = np.asarray(f(x[:, 0] if x.shape[1] == 1 else x), dtype=np.float64)
    if y.ndim == 0 or y.shape[0] != len(x):
        raise ValueError(f"{argument} must return one output (a number or a vector) per input point: "
                         f"given {len(x)} points it returned shape {y.shape}")
    return y.reshape(len(x), -1)


def _show(point: np.ndarray) -> str:
    """A point as ``2.28`` or ``(0.5, -0.25)``, three significant digits (``-0`` shown as ``0``).

    Example:
        >>> _show(np.array([0.5, -0.0])), _show(np.array([np.pi]))
        ('(0.5, 0)', '3.14')
    """
    values = ["0" if abs(v) < 1e-12 else f"{v:.3g}" for v in np.atleast_1d(point)]
    return values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"


def _call(point: np.ndarray) -> str:
    """``f(2.28)`` or ``f(0.5, -0.25)``."""
    text = _show(point)
    return f"f{text}" if text.startswith("(") else f"f({text})"


def _collision(x: np.ndarray, y: np.ndarray, min_apart: float) -> tuple[int, int]:
    """Indices of the two points at least ``min_apart`` apart whose outputs are closest."""
    stride = max(1, int(np.ceil(len(x) / _PAIRS_MAX)))
    index = np.arange(0, len(x), stride)
    xs, ys = x[index], y[index]
    dx = np.linalg.norm(xs[:, None] - xs[None], axis=2)
    dy = np.linalg.norm(ys[:, None] - ys[None], axis=2)
    dy[dx < min_apart] = np.inf
    i, j = np.unravel_index(np.argmin(dy), dy.shape)
    return int(index[i]), int(index[j])


def _pair_text(x: np.ndarray, y: np.ndarray, i: int, j: int) -> str:
    return f"{_call(x[i])} = {_show(y[i])} and {_call(x[j])} = {_show(y[j])}"


def _null_witness(f: Map, x0: np.ndarray, jacobian: np.ndarray, width: float) -> str:
    """Two inputs along the Jacobian's null direction at ``x0`` with (nearly) one output, or ''."""
    direction = np.linalg.svd(jacobian)[2][-1]
    other = x0 + 0.25 * width * direction
    y0, y1 = _values(f, np.stack([x0, other]))
    if np.linalg.norm(y1 - y0) <= 1e-6 * (1.0 + np.linalg.norm(y0)):
        return f": for example {_call(x0)} = {_call(other)} = {_show(y0)}"
    return ""


def _jacobians(y: np.ndarray, axes: tuple[np.ndarray, ...]) -> np.ndarray:
    """Finite-difference Jacobians on the grid, shape (m, k, d)."""
    shape = tuple(len(a) for a in axes)
    values = y.reshape(*shape, y.shape[1])
    columns = np.gradient(values, *axes, axis=tuple(range(len(axes))))
    columns = columns if isinstance(columns, (list, tuple)) else [columns]
    return np.stack([c.reshape(len(y), -1) for c in columns], axis=2)


def check_bijection(f: Map, domain: Any, *, inverse: Map | None = None) -> Verdict:
    """Decide on a grid whether ``f`` maps ``domain`` one-to-one onto its image, and say why.

    Args:
        f: the map. It receives all grid points at once: an array of shape ``(m,)`` for a 1-D
            domain (so ``np.cos`` works as it is), of shape ``(m, d)`` otherwise, and returns one
            number or vector per point.
        domain: the box it is defined on: a ``(low, high)`` pair, or a list of 1 to 3 pairs, one per
            input coordinate. Stand in for the whole real line with a wide interval.
        inverse: optional; if given, ``inverse(f(x))`` must give back every grid point ``x``.

    Returns:
        A :class:`Verdict`: ``bijective`` and the ``reason``, which for a non-bijection names two
        inputs that share an output where it can.

    Example:
        >>> check_bijection(np.cos, (0.0, 2 * np.pi)).bijective
        False
        >>> check_bijection(lambda x: x @ np.array([[2.0, 1.0], [1.0, 1.0]]).T, [(-1, 1), (-1, 1)]).bijective
        True
    """
    box = _domain(domain)
    if not callable(f):
        raise ValueError(f"f must be a function of the points, got {type(f).__name__}")
    if inverse is not None and not callable(inverse):
        raise ValueError(f"inverse must be a function or None, got {type(inverse).__name__}")
    x, axes = grid(box)
    y = _values(f, x)
    verdict = _shape_and_values(f, box, x, y, axes)
    if verdict is None:
        centre = np.array([(low + high) / 2 for low, high in box])
        width = min(high - low for low, high in box)
        verdict = _one_dimensional(f, x, y) if x.shape[1] == 1 else _several_dimensions(f, x, y, axes, centre, width)
    if not verdict.bijective or inverse is None:
        return verdict
    return _round_trip(inverse, x, y, verdict)


def _shape_and_values(f: Map, box: list[tuple[float, float]], x: np.ndarray, y: np.ndarray,
                      axes: list[np.ndarray]) -> Verdict | None:
    """The verdict when f is not finite on the grid or changes the number of dimensions, else None."""
    bad = ~np.all(np.isfinite(y), axis=1)
    if bad.any():
        return Verdict(False, f"f is not finite at x = {_show(x[np.argmax(bad)])}: it is not defined on all of "
                              "the domain.")
    d, k = x.shape[1], y.shape[1]
    if k == d:
        return None
    centre = np.array([(low + high) / 2 for low, high in box])
    jacobian = _jacobians(y, axes)[np.argmin(np.linalg.norm(x - centre, axis=1))]
    witness = _null_witness(f, centre, jacobian, min(high - low for low, high in box)) if k < d else ""
    return Verdict(False, f"f takes {d} numbers to {k}: a bijector needs as many outputs as inputs{witness}.")


def _round_trip(inverse: Map, x: np.ndarray, y: np.ndarray, verdict: Verdict) -> Verdict:
    """``verdict`` with the round trip added, or the failure of ``inverse(f(x)) = x`` on the grid."""
    back = _values(inverse, y, argument="inverse")
    if back.shape != x.shape:
        return Verdict(False, f"inverse returns {back.shape[1]} numbers per point; f takes {x.shape[1]}.")
    error = np.linalg.norm(back - x, axis=1)
    failed = ~np.isfinite(error) | (error > 1e-6 * (1.0 + np.abs(x).max()))  # NaN is never a pass
    worst = int(np.argmax(~np.isfinite(error))) if not np.all(np.isfinite(error)) else int(np.argmax(error))
    if failed.any():
        return Verdict(False, f"inverse does not undo f: inverse({_call(x[worst])}) = {_show(back[worst])}. "
                              "f may be one-to-one, but this inverse is not its inverse.")
    return Verdict(True, verdict.reason + " inverse(f(x)) gives back every grid point.")


def _one_dimensional(f: Map, x: np.ndarray, y: np.ndarray) -> Verdict:
    """One-to-one on an interval means strictly monotone: the steps of f all have one sign."""
    steps = np.diff(y[:, 0])
    slope = np.gradient(y[:, 0], x[:, 0])
    if np.all(steps > 0) or np.all(steps < 0):
        trend = "increasing" if steps[0] > 0 else "decreasing"
        reason = f"f is strictly {trend} on the domain, so no two inputs share an output."
        flat = _flat_points(x[:, 0], slope)
        if flat:
            reason += (f" Its derivative vanishes at x = {' and '.join(_show(v) for v in flat)}: still "
                       "one-to-one, but the inverse has an infinite slope there.")
        return Verdict(True, reason)
    if np.all(steps == 0):
        return Verdict(False, "f is constant: every input gives the same output.")
    turn = int(np.argmax(np.sign(steps[1:]) != np.sign(steps[:-1]))) + 1
    i, j = _collision(x, y, min_apart=0.05 * np.ptp(x))
    return Verdict(False, f"f turns back at x = {_show(x[turn])} (its derivative changes sign), so it takes "
                          f"values twice: {_pair_text(x, y, i, j)}.")


def _flat_points(x: np.ndarray, slope: np.ndarray) -> list[float]:
    """Where the slope (nearly) vanishes: the flattest point of each run of near-zero slopes."""
    flat = np.abs(slope) <= 1e-3 * np.abs(slope).max()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat.astype(int), [0]])))
    return [float(x[start + np.argmin(np.abs(slope[start:stop]))])
            for start, stop in zip(edges[::2], edges[1::2])]


def _several_dimensions(f: Map, x: np.ndarray, y: np.ndarray, axes: tuple[np.ndarray, ...],
                        centre: np.ndarray, width: float) -> Verdict:
    """Sign of the Jacobian determinant, then a search for two inputs with one output."""
    jacobians = _jacobians(y, axes)
    scale = np.prod(np.maximum(np.linalg.norm(jacobians, axis=1), 1e-300), axis=1)
    ratio = np.linalg.det(jacobians) / scale  # det J relative to its largest possible size: in [-1, 1]
    if np.all(np.abs(ratio) < 1e-8):
        jacobian = jacobians[np.argmin(np.linalg.norm(x - centre, axis=1))]
        return Verdict(False, "its Jacobian is singular everywhere (det J = 0): f flattens the domain onto a "
                              f"lower-dimensional set, so whole lines of inputs share one output"
                              f"{_null_witness(f, centre, jacobian, width)}.")
    diagonal = float(np.linalg.norm([np.ptp(a) for a in axes]))
    if ratio.min() < -1e-6 and ratio.max() > 1e-6:
        i, j = _collision(x, y, min_apart=0.05 * diagonal)
        return Verdict(False, "its Jacobian determinant changes sign, so f folds the domain over itself and "
                              f"takes some outputs twice (closest pair on the grid: {_pair_text(x, y, i, j)}).")
    i, j = _collision(x, y, min_apart=0.05 * diagonal)
    if np.linalg.norm(y[i] - y[j]) <= 1e-9 * (1.0 + np.abs(y).max()):
        return Verdict(False, f"two inputs share one output: {_pair_text(x, y, i, j)}.")
    sign = "positive" if ratio.max() > 1e-6 else "negative"
    return Verdict(True, f"its Jacobian determinant is {sign} all over the domain and no two grid points "
                         "share an output.")


def _matrix(rows: Sequence[Sequence[float]]) -> Map:
    """The linear map x -> A x on points of shape (m, 2)."""
    a = np.asarray(rows, dtype=np.float64)
    return lambda x: x @ a.T


_REALS = ((-3.0, 3.0),)
_PLANE = ((-3.0, 3.0), (-3.0, 3.0))

#: The lab sheet's examples, and a few more; the real line and the plane stand in as [-3, 3] boxes.
SHEET_EXAMPLES: dict[str, Example] = {
    "cos on [0, pi]": Example("y = cos x", ((0.0, np.pi),), "[0, pi]", np.cos),
    "cos on [0, 2pi]": Example("y = cos x", ((0.0, 2 * np.pi),), "[0, 2 pi]", np.cos),
    "x**2 on the reals": Example("y = x**2", _REALS, "the real line", np.square),
    "x**3 on the reals": Example("y = x**3", _REALS, "the real line", lambda x: x**3),
    "x**3 - x on the reals": Example("y = x**3 - x", _REALS, "the real line", lambda x: x**3 - x),
    "sum of x1 and x2": Example("y = x1 + x2", _PLANE, "the plane", lambda x: x.sum(axis=1)),
    "matrix [[2, 1], [1, 1]]": Example("y = A x, A = [[2, 1], [1, 1]]", _PLANE, "the plane",
                                       _matrix([[2.0, 1.0], [1.0, 1.0]])),
    "matrix [[1, 2], [2, 4]]": Example("y = A x, A = [[1, 2], [2, 4]]", _PLANE, "the plane",
                                       _matrix([[1.0, 2.0], [2.0, 4.0]])),
}

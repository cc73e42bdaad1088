"""The checks' framework: what every check of the lab (:mod:`flowlab.grader.checks_bijectors`,
:mod:`flowlab.grader.checks_training`) is registered in and built from, below them and below
:mod:`flowlab.grader.checks`, which runs them.

- :class:`Check`, :data:`REGISTRY` and :data:`CHECKS`: each check registered once, by its
  decorator :func:`lab_check`, in notebook order; the printing form is what the check's module
  (and ``flowlab.checks``) calls it;
- :class:`CheckFailed` and the helpers every check answers with: :func:`lookup` (the answers by
  name), :func:`require`, :func:`ok`, :func:`point_array`, :func:`column_array`, :func:`kind_of`,
  :func:`distance_to_moons`;
- :data:`LEDGER`: what earlier checks saw, for later ones (:func:`recorded_by`), and
  :func:`genuine` (an answer must be the library's own object);
- :data:`ANSWER_CELLS` and :func:`rerun_hint`: the cell each check judges, as messages name it.

:mod:`flowlab.grader.checks` re-exports the public names here and takes a snapshot of this module's
functions, as of its own, against tampering.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from flowlab.grader import _check_guard
from flowlab.grader._check_guard import Ledger

__all__ = ["MOON_N", "NOISE", "EPOCHS", "CheckFailed", "lookup", "LEDGER", "genuine", "ANSWER_CELLS", "rerun_hint",
           "recorded_by", "kind_of", "require", "ok", "point_array", "distance_to_moons", "Check", "REGISTRY", "CHECKS",
           "lab_check", "column_array"]

MOON_N = 10_000
NOISE = 0.05
EPOCHS = 80


class CheckFailed(AssertionError):
    """An answer does not do what the lab asks; the message says what and hints how."""


def lookup(namespace: Mapping[str, Any], *names: str) -> list[Any]:
    missing = [name for name in names if name not in namespace]
    if missing:
        listed = ", ".join(f"`{name}`" for name in missing)
        raise CheckFailed(f"{listed} not defined. Hint: answer the TODO in the cell above and run it.")
    return [namespace[name] for name in names]


#: What earlier checks saw, for later ones (see the module docstring); ``LEDGER.reset()``
#: forgets it, as a new kernel does.
LEDGER = Ledger()


def genuine(name: str, value: Any, library: str, methods: tuple[str, ...]) -> None:
    """``value`` must be an instance of ``library``'s own classes with no method replaced on it."""
    _check_guard.require_genuine(name, value, library, methods, LEDGER, CheckFailed)


#: Check -> the notebook cell whose answer it judges, as out-of-order messages name it.
ANSWER_CELLS: Mapping[str, str] = types.MappingProxyType({
    "bijection_verdicts": "the `verdicts` cell (\"Which maps are bijectors?\")",
    "moons_data": "the `data` cell (\"Two-moons data\")",
    "base_distribution": "the `zdist` cell (\"The base distribution\")",
    "base_samples": "the `zsamples = ...` cell of the base distribution",
    "bijectors": "the `shift_bij`, `scale_bij`, `b` cell (\"A first bijector\")",
    "transformed_distribution": "the `td = tfd.TransformedDistribution(zdist, bijector=b)` cell and the "
                                "`zsamples` cell below it",
    "formula_by_hand": "the `log_det_g`, `by_hand` cell (\"Check the formula yourself\")",
    "hand_bijector": "the `class MySinh` cell, which makes `my_sinh` (\"Write a bijector yourself\")",
    "hand_chain": "the `sinh_chain`, `sinh_td` cell",
    "flow_chain": "the chain cell, which makes `big_bijector` and `td` (\"The normalizing flow: three MAFs "
                  "with permutations\")",
    "maf_jacobian": "the `jacobians` cell (\"One MAF layer's Jacobian\")",
    "keras_model": "the Keras cell, which makes `x` and `model` and compiles it (\"Training with Keras\")",
    "loss_and_optimizer": "the Keras cell, which makes `x` and `model` and compiles it (\"Training with Keras\")",
    "training": "the `result = model.fit(...)` cell",
    "flow_samples": "the `zsamples` cell of \"Sampling from the trained flow\"",
})


def rerun_hint(check: str) -> str:
    """``Hint: ...`` naming the cells to run again, in order, when what ``check`` saw has changed since.

    Example:
        >>> rerun_hint("keras_model").startswith("Hint: run the keras_model check cell")
        True
    """
    return (f"Hint: run the {check} check cell (`flowlab.checks.run(\"{check}\", globals())`, right below "
            f"{ANSWER_CELLS[check]}) again, then every cell after it in order, down to this one.")


def recorded_by(check: str, key: str) -> Any:
    """What check ``check`` recorded under ``key``; fails clearly, naming the cells to run, if it did not pass."""
    if key not in LEDGER:
        raise CheckFailed(f"the `{check}` check has not passed in this kernel, and this check builds on what it "
                          f"saw. Hint: run {ANSWER_CELLS[check]}, then the {check} check cell "
                          f"(`flowlab.checks.run(\"{check}\", globals())`, right below it), then every cell after "
                          "it in order, down to this one.")
    return LEDGER[key]


def kind_of(value: Any) -> str:
    """Class name without TFP's private prefix: ``_Chain`` -> ``Chain``."""
    return type(value).__name__.lstrip("_")


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def ok(line: str) -> str:
    return line


def point_array(name: str, value: Any, n: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"`{name}` should be an array of points, got {type(value).__name__}.") from None
    require(array.shape == (n, 2), f"`{name}` has shape {array.shape}; expected ({n}, 2). "
                                    f"Hint: draw {n} two-dimensional points.")
    require(bool(np.all(np.isfinite(array))), f"`{name}` contains NaN or infinite values.")
    return array


def distance_to_moons(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each point to the nearer of the two half circles, and which one is nearer."""
    def arc(q: np.ndarray, upper: bool, ends: np.ndarray) -> np.ndarray:
        on_side = q[:, 1] >= 0 if upper else q[:, 1] <= 0
        to_circle = np.abs(np.linalg.norm(q, axis=1) - 1.0)
        to_ends = np.min(np.linalg.norm(q[:, None, :] - ends[None], axis=2), axis=1)
        return np.where(on_side, to_circle, to_ends)
    ends = np.array([[1.0, 0.0], [-1.0, 0.0]])
    outer = arc(points, True, ends)
    inner = arc(points - np.array([1.0, 0.5]), False, ends)
    return np.minimum(outer, inner), outer < inner



@dataclass(frozen=True)
class Check:
    """One check of the lab, as registered by its decorator: ``judge`` returns its OK line (or
    raises :class:`CheckFailed`); ``points`` is what it is worth by default (the reference
    notebook's cell metadata can say otherwise); ``after`` names the earlier checks whose
    recorded objects it builds on; ``uses`` the notebook names it judges, directly or through
    those objects."""

    name: str
    judge: Callable[[Mapping[str, Any]], str]
    points: float
    after: tuple[str, ...]
    uses: tuple[str, ...]


_REGISTRY: dict[str, Check] = {}
#: Check name -> its registration, in notebook order (read-only; lab_check alone fills the table behind it).
REGISTRY: Mapping[str, Check] = types.MappingProxyType(_REGISTRY)
#: Check name -> the function that prints its OK line (no seal), as older check cells call it.
CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {}


def _printing(judge: Callable[[Mapping[str, Any]], str]) -> Callable[[Mapping[str, Any]], None]:
    """The public form of a check: prints ``OK: <line>`` (no seal)."""
    @functools.wraps(judge)
    def printed(namespace: Mapping[str, Any]) -> None:
        print(f"OK: {judge(namespace)}")
    return printed


def lab_check(points: float, uses: tuple[str, ...], after: tuple[str, ...] = ()):
    """Register the decorated function as the check of its name (its one registration); the
    module's name for it becomes the printing form, as in :data:`CHECKS`."""
    def register(judge: Callable[[Mapping[str, Any]], str]) -> Callable[[Mapping[str, Any]], None]:
        unknown = [name for name in after if name not in _REGISTRY]
        if unknown:
            raise ValueError(f"check {judge.__name__!r}: after must name checks registered before it, "
                             f"got {unknown}")
        _REGISTRY[judge.__name__] = Check(judge.__name__, judge, float(points), tuple(after), tuple(uses))
        CHECKS[judge.__name__] = _printing(judge)
        return CHECKS[judge.__name__]
    return register


def column_array(name: str, value: Any, n: int) -> np.ndarray:
    """``value`` as n numbers (one per point; a single number stands for all n), or a clear failure."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"`{name}` should be numbers, got {type(value).__name__}.") from None
    array = np.full(n, float(array)) if array.shape == () else array  # a constant Jacobian: one number for all
    require(array.shape == (n,), f"`{name}` has shape {array.shape}; expected ({n},): one number per point "
                                  "of x_check. Hint: event_ndims=1 gives one log-det per 2-D point.")
    return array

"""Argument checks for the public functions: each error names the argument,
what was given and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int if it is a positive integer, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    """Return ``value`` as an int if it is an integer >= 0, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def finite_float(name: str, value: Any, *, minimum: float | None = None,
                 strict: bool = False) -> float:
    """Return ``value`` as a finite float, optionally bounded below."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum:g}, got {value!r}")
    return value


def fraction(name: str, value: Any) -> float:
    """Return ``value`` as a float in [0, 1)."""
    value = finite_float(name, value, minimum=0.0)
    if value >= 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def hidden_units(name: str, value: Any) -> tuple[int, ...]:
    """Return a non-empty sequence of positive integers as a tuple."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {value!r}")
    return tuple(positive_int(f"{name}[{i}]", unit) for i, unit in enumerate(value))


def points(name: str, value: Any, ndim: int = 2) -> np.ndarray:
    """Return ``value`` as a finite float array of shape ``(n, ndim)``."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers of shape (n, {ndim}), "
                         f"got {type(value).__name__}") from None
    if array.ndim != 2 or array.shape[1] != ndim or array.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, {ndim}) with n >= 1, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {np.sum(~np.isfinite(array))} NaN/inf values")
    return array


def one_of(name: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value

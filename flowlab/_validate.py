"""Argument checks for the public functions: each error names the argument,
what was given and what is allowed. :data:`LIMITS` and :data:`LIST_LIMITS` are the one source of
the settings' bounds: the configurations (FlowConfig, TrainSettings, ImageFlowConfig) check with
them and the command line parses with them, so both refuse the same values with the same words."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


def points(name: str, value: Any, ndim: int | None = 2, min_width: int = 1) -> np.ndarray:
    """Return ``value`` as a finite float array of shape ``(n, ndim)``, n >= 1 (``ndim=None``: any
    width from ``min_width`` on)."""
    width = f"(n, {ndim})" if ndim is not None else f"(n, d) with d >= {min_width}"
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers of shape {width}, "
                         f"got {type(value).__name__}") from None
    wrong_width = array.ndim == 2 and (array.shape[1] != ndim if ndim is not None else array.shape[1] < min_width)
    if array.ndim != 2 or wrong_width or array.shape[0] == 0:
        raise ValueError(f"{name} must have shape {width} with n >= 1, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {np.sum(~np.isfinite(array))} NaN/inf values")
    return array


def within(limit: str, name: str, value: Any) -> Any:
    """``value`` checked against :data:`LIMITS` ``[limit]`` (or :data:`LIST_LIMITS`, for a list),
    the error naming ``name``: what the command line's option for it says too.

    Example:
        >>> within("layers", "num_layers", 33)
        Traceback (most recent call last):
        ...
        ValueError: num_layers must be an integer from 1 to 32, got 33
    """
    return (LIST_LIMITS[limit] if limit in LIST_LIMITS else LIMITS[limit]).check(name, value)


def mapping(name: str, value: Any) -> Mapping[str, Any]:
    """Return ``value`` if it is a mapping (a dict), else raise ValueError."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict of option names to values, got {type(value).__name__}: {value!r}")
    return value


def one_of(name: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


@dataclass(frozen=True)
class Range:
    """Numbers allowed for one setting, read by both the library's checks (:meth:`check`) and the
    command line's argument types (:meth:`parse`), so both say the same thing.

    Example:
        >>> LIMITS["layers"].check("num_layers", 3)
        3
        >>> LIMITS["layers"].check("num_layers", 0)
        Traceback (most recent call last):
        ...
        ValueError: num_layers must be an integer from 1 to 32, got 0
        >>> LIMITS["learning_rate"].describe()
        'a number > 0 and <= 1'
    """

    low: float
    high: float
    integer: bool = False
    low_open: bool = False

    def describe(self) -> str:
        if self.integer:
            return f"an integer from {self.low:,} to {self.high:,}"
        return f"a number > {self.low:g} and <= {self.high:g}" if self.low_open else \
            f"a number from {self.low:g} to {self.high:g}"

    def admits(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return math.isfinite(value) and above and value <= self.high

    def check(self, name: str, value: Any) -> int | float:
        """``value`` as an int or float if the range admits it, else ValueError naming ``name``."""
        wrong_type = isinstance(value, bool) or not isinstance(
            value, (int, np.integer) if self.integer else (int, float, np.integer, np.floating))
        if wrong_type or not self.admits(float(value)):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")
        return int(value) if self.integer else float(value)

    def parse(self, text: str) -> int | float:
        """An argparse type: ``text`` as a number in the range, else ArgumentTypeError."""
        import argparse

        try:
            value = int(text) if self.integer else float(text)
        except ValueError:
            value = None
        if value is None or not self.admits(float(value)):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return value


#: The allowed sizes of every setting the command line takes (and the library's configurations
#: check): beyond them a run cannot be meant (it would exhaust memory or run for days).
LIMITS: dict[str, Range] = {
    "layers": Range(1, 32, integer=True),
    "hidden_units": Range(1, 1024, integer=True),  # each hidden layer's width
    "hidden_layers": Range(1, 4, integer=True),  # how many hidden layers
    "epochs": Range(1, 10_000, integer=True),
    "batch_size": Range(1, 1_000_000, integer=True),
    "samples": Range(1, 1_000_000, integer=True),
    "seed": Range(0, 2**31 - 1, integer=True),
    "noise": Range(0.01, 1.0),
    "learning_rate": Range(0.0, 1.0, low_open=True),
    "bins": Range(2, 64, integer=True),  # spline bins
    "bound": Range(0.5, 100.0),  # half-width of the splines' interval
    "couplings": Range(0, 16, integer=True),  # a digits flow's coupling layers per stage
    "hidden_channels": Range(1, 512, integer=True),  # a digits flow's convolution channels
    "timeout": Range(0, 86_400, low_open=True),  # seconds per graded notebook
    "memory_mb": Range(256, 1_048_576, integer=True),  # memory per graded notebook
    "workers": Range(1, 1024, integer=True),  # notebooks graded at once
    "percent": Range(0, 100),  # a late penalty per day, or its cap
    "ode_tolerance": Range(1e-10, 0.1),  # a continuous flow's rtol and atol (Dormand-Prince)
    "ode_steps": Range(1, 10_000, integer=True),  # a continuous flow's Euler steps
}


@dataclass(frozen=True)
class Counts:
    """A list of integers, each within ``item`` and as many as ``length`` allows (``not_all_zero``:
    their sum > 0), read by the library (:meth:`check`) and the command line (:meth:`parse`,
    comma-separated), so both say the same thing; ``what`` says what the numbers are.

    Example:
        >>> LIST_LIMITS["hidden_units"].check("hidden_units", [128, 128])
        (128, 128)
        >>> LIST_LIMITS["hidden_units"].check("hidden_units", (0,))
        Traceback (most recent call last):
        ...
        ValueError: hidden_units must be 1 to 4 integers, each from 1 to 1,024, got (0,)
        >>> LIST_LIMITS["couplings"].parse("1,99,1")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be 3 integers (coupling layers at 8x8x1, 4x4x4 and 4x4x2), each from 0 to 16, not all zero, got '1,99,1'
    """

    item: Range
    length: Range
    not_all_zero: bool = False
    what: str = ""

    def describe(self) -> str:
        low, high = int(self.length.low), int(self.length.high)
        how_many = f"{low}" if low == high else f"{low} to {high}"
        each = self.item.describe().removeprefix("an integer ")
        return (f"{how_many} integers{f' ({self.what})' if self.what else ''}, each {each}"
                + (", not all zero" if self.not_all_zero else ""))

    def admits(self, values: Sequence[Any]) -> bool:
        return (self.length.admits(len(values))
                and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and self.item.admits(v)
                        for v in values)
                and not (self.not_all_zero and sum(values) == 0))

    def check(self, name: str, value: Any) -> tuple[int, ...]:
        """``value`` as a tuple of ints if admitted, else ValueError naming ``name``."""
        listed = not isinstance(value, (str, bytes)) and isinstance(value, Sequence)
        if not listed or not self.admits(tuple(value)):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")
        return tuple(int(v) for v in value)

    def parse(self, text: str) -> tuple[int, ...]:
        """An argparse type: comma-separated integers admitted, else ArgumentTypeError."""
        import argparse

        try:
            values = tuple(int(part) for part in text.split(","))
        except ValueError:
            values = None
        if values is None or not self.admits(values):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return values


#: The lists among the settings, their bounds from :data:`LIMITS`.
LIST_LIMITS: dict[str, Counts] = {
    "hidden_units": Counts(LIMITS["hidden_units"], LIMITS["hidden_layers"]),  # each network's hidden widths
    "couplings": Counts(LIMITS["couplings"], Range(3, 3, integer=True), not_all_zero=True,
                        what="coupling layers at 8x8x1, 4x4x4 and 4x4x2"),  # a digits flow's, per stage
}

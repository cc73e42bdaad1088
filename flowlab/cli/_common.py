"""What every ``flowlab`` sub-command shares: parsers whose errors are one line and exit status 2
(and whose options are added on first use), argument types that read
:data:`flowlab._validate.LIMITS` as the library's own checks do, and small helpers."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from flowlab._validate import LIST_LIMITS

__all__ = ["Parser", "LazyParser", "hidden_units", "counts", "usable_folder", "fail", "reference_error",
           "grading_runner_missing"]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


class LazyParser(Parser):
    """A sub-command parser whose arguments are added on first use: ``flowlab --help`` and the
    other sub-commands then never import what ``train``'s options need (TensorFlow)."""

    def __init__(self, *args, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._add_arguments = add_arguments

    def _complete(self) -> None:
        if self._add_arguments is not None:
            add, self._add_arguments = self._add_arguments, None
            add(self)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()


#: Sizes ``flowlab train`` accepts. Beyond them a run cannot be meant: it would exhaust memory


def hidden_units(text: str) -> tuple[int, ...]:
    """An argparse type: comma-separated hidden layer widths within :data:`LIST_LIMITS`, as
    :class:`flowlab.flows.FlowConfig` checks them."""
    return LIST_LIMITS["hidden_units"].parse(text)


def counts(name: str, how_many: int) -> Callable[[str], tuple[int, ...]]:
    """An argparse type: ``how_many`` comma-separated integers, as ``LIST_LIMITS[name]`` admits."""
    allowed = LIST_LIMITS[name]
    if not allowed.length.low == allowed.length.high == how_many:
        raise ValueError(f"how_many must be the {name} LIST_LIMITS allows ({allowed.describe()}), got {how_many!r}")
    return allowed.parse


def usable_folder(out: Path) -> str | None:
    """Create ``out`` if needed and try writing in it: None if that works, else why not."""
    if out.exists() and not out.is_dir():
        return "it is a file, not a folder"
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        return error.strerror or type(error).__name__
    return None


def fail(command: str, message: str, status: int = 2) -> int:
    """Print ``flowlab COMMAND: error: MESSAGE`` on stderr; return the exit status."""
    print(f"flowlab {command}: error: {message}", file=sys.stderr)
    return status


def reference_error(path: Path) -> str | None:
    """What is wrong with a --reference notebook (the official check cells), or None."""
    if not path.is_file() or path.suffix != ".ipynb":
        return f"argument --reference: not a notebook file: {str(path)!r}"
    try:
        from flowlab.grader.grade import Reference

        Reference.from_text(path.read_text())
    except Exception as error:  # noqa: BLE001 - any problem is the instructor's to fix
        return f"argument --reference: cannot use {str(path)!r}: {error}"
    return None


def grading_runner_missing(command: str) -> bool:
    """Print one line and return True when this Python lacks what grading runs notebooks with."""
    from flowlab.grader._setup import missing_grading_requirement

    problem = missing_grading_requirement(command)
    if problem:
        print(problem, file=sys.stderr)
    return problem is not None

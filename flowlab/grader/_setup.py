"""What ``flowlab check`` and ``flowlab grade`` need before any notebook runs: the reference
notebook that ships inside the package, and the grader's runner (pytest with nbval and a kernel).

Light on purpose (no nbformat, no TensorFlow): the CLI asks it before importing the grader, so a
missing package is one line naming it and the pip line, never a table of zeros.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from flowlab._keras import install_line

__all__ = ["REFERENCE", "RUNNER", "missing_grading_requirement"]

#: The official student notebook (its check cells are what grading compares against). It ships
#: inside the package, so ``check`` and ``grade`` find it wherever flowlab is installed;
#: ``flowlab student`` writes it together with ``notebooks/normalizing_flows_student.ipynb``.
REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "normalizing_flows_student.ipynb"

#: The grader's runner: import name -> distribution name. ``grade_job`` starts
#: ``python -m pytest --nbval-lax``, whose kernel is this Python's ipykernel.
RUNNER = {"pytest": "pytest", "nbval": "nbval", "nbformat": "nbformat", "ipykernel": "ipykernel",
          "jupyter_client": "jupyter-client", "psutil": "psutil"}


def _declared(distribution: str) -> str:
    """The requirement flowlab declares for ``distribution`` (e.g. ``nbval>=0.11,<0.12``), or its
    bare name when flowlab's metadata is not installed (running from a source folder)."""
    try:
        requirements = metadata.requires("flowlab") or []
    except metadata.PackageNotFoundError:
        requirements = []
    for requirement in requirements:
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement:
            continue
        if parsed.marker is not None:
            continue  # an extra's or a marker's: not what a plain install brings
        if canonicalize_name(parsed.name) == canonicalize_name(distribution):
            return requirement.replace(" ", "")
    return distribution


def _version_problem(distribution: str, requirement: str) -> str | None:
    """Why the installed ``distribution`` does not satisfy ``requirement``, or None."""
    try:
        installed = metadata.version(distribution)
        specifier = Requirement(requirement).specifier
    except Exception:  # noqa: BLE001 - no metadata: the import check stands
        return None
    if specifier.contains(installed, prereleases=True):
        return None
    return f"found {distribution} {installed}"


def missing_grading_requirement(command: str) -> str | None:
    """One line saying which package grading lacks (or has in an unsupported version) and the pip
    line that fixes it, or None when this Python can grade.

    Example:
        >>> missing_grading_requirement("check") is None  # installed with flowlab
        True
    """
    for module, distribution in RUNNER.items():
        requirement = _declared(distribution)
        if importlib.util.find_spec(module) is None:
            found = "which is not installed"
        else:
            problem = _version_problem(distribution, requirement)
            if problem is None:
                continue
            found = f"but {problem}"
        return (f"flowlab {command}: error: grading needs {requirement}, {found} in this Python "
                f"({sys.executable}); install it: {install_line(requirement)}")
    return None

"""Gradescope: an autograder zip that grades the lab with flowlab, and its results.json.

Gradescope runs ``setup.sh`` once when the instructor uploads the zip (it installs flowlab from
the wheel inside the zip) and ``run_autograder`` for every submission: the submitted files are in
``/autograder/submission/``, the results go to ``/autograder/results/results.json`` with one test
per check (``name``, ``score``, ``max_score``, ``status``, ``output`` in Markdown, ``visibility``).

``run_autograder`` calls ``python3 -m flowlab.gradescope``, which grades exactly as
``flowlab grade`` does (isolated, sealed, timed out) and always writes a results.json: for a
notebook that crashes, hangs, is missing or is not a notebook, with the reason, and even when
the grader itself fails.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import sys
import time
import traceback
import zipfile
from collections.abc import Sequence
from pathlib import Path

from flowlab.grader._limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT

__all__ = ["VISIBILITIES", "results_for", "write_results", "run_autograder", "build_autograder_zip",
           "find_notebooks", "main"]

#: Gradescope's visibility settings for a test or the whole result.
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
ROOT_VARIABLE = "FLOWLAB_AUTOGRADER_ROOT"  # tests lay out a Gradescope-like root elsewhere

_SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once when the autograder is uploaded: flowlab from the wheel beside this
# script, in a virtual environment of its own. Python comes from the image's packages, as in
# Gradescope's own samples, when the image lacks it or its venv module.
# (FLOWLAB_AUTOGRADER_ROOT stands in for /autograder when it is tried out elsewhere.)
set -euo pipefail
root="${{FLOWLAB_AUTOGRADER_ROOT:-/autograder}}"
cd "$root/source"
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "setup.sh: installing Python 3 with venv and pip from the image's packages (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip
fi
if ! python3 -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))' >/dev/null 2>&1; then
    echo "setup.sh: flowlab needs Python 3.10 to 3.13, and this image has $(python3 --version 2>&1 || echo none);" \
         "choose the Ubuntu 22.04 or 24.04 base image in the autograder's settings" >&2
    exit 1
fi
python3 -m venv "$root/flowlab-venv"
"$root/flowlab-venv/bin/python" -m pip install --no-cache-dir ./{wheel}
"""

_RUN = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission; it always writes /autograder/results/results.json.
# (FLOWLAB_AUTOGRADER_ROOT stands in for /autograder when it is tried out elsewhere.)
root="${{FLOWLAB_AUTOGRADER_ROOT:-/autograder}}"
cd "$root/source"
python="$root/flowlab-venv/bin/python"
[ -x "$python" ] || python=python3
exec "$python" -m flowlab.gradescope {options}
"""


def _test_output(message: str | None, points: float) -> str:
    if message is None:
        return f"Passed ({points:g} point{'s' if points != 1 else ''})."
    text, _, hint = message.partition("Hint:")
    return f"**Failed:** {text.strip()}" + (f"\n\n*Hint:* {hint.strip()}" if hint.strip() else "")


def results_for(grade, visibility: str = "visible") -> dict:  # type: ignore[no-untyped-def]
    """Gradescope's results.json for one graded notebook (a :class:`flowlab.grader.grade.Grade`).

    Example:
        >>> from flowlab.grader.grade import Grade
        >>> g = Grade("lab.ipynb", "graded", {"a": None, "b": "wrong. Hint: fix it."}, {"a": 1.0, "b": 2.0})
        >>> r = results_for(g)
        >>> r["score"], [(t["name"], t["score"], t["max_score"], t["status"]) for t in r["tests"]]
        (1.0, [('a', 1.0, 1.0, 'passed'), ('b', 0.0, 2.0, 'failed')])
    """
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}")
    tests = [{"name": name, "score": grade.points_possible[name] if message is None else 0.0,
              "max_score": grade.points_possible[name], "status": "passed" if message is None else "failed",
              "output": _test_output(message, grade.points_possible[name]), "output_format": "md",
              "visibility": visibility}
             for name, message in grade.results.items()]
    summary = [f"Status: **{grade.status}**; {grade.passed} of {len(grade.results)} checks passed, "
               f"{grade.score:g} / {grade.max_points:g} points."]
    if grade.late_note:
        summary.append(f"Late: {grade.late_note}; score {grade.final:g}.")
    summary += [f"- {note}" for note in grade.notes]
    return {"score": grade.final, "execution_time": round(grade.seconds), "output": "\n".join(summary),
            "output_format": "md", "visibility": visibility, "stdout_visibility": "hidden", "tests": tests}


def _failure_results(reason: str, visibility: str) -> dict:
    """results.json when there is nothing to grade or the grader itself failed: score 0, the reason."""
    return {"score": 0.0, "output": f"**Not graded:** {reason}", "output_format": "md",
            "visibility": visibility, "stdout_visibility": "hidden", "tests": []}


def write_results(results: dict, root: Path) -> Path:
    """Write ``results`` to ``root/results/results.json``; returns its path."""
    path = root / "results" / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    return path


def _due_date(metadata: dict) -> str | None:
    """The submitters' own due date (``users[].assignment.due_date``: extensions), the latest of a
    group's, else the assignment's."""
    own = [user["assignment"]["due_date"] for user in metadata.get("users") or []
           if isinstance(user, dict) and isinstance(user.get("assignment"), dict) and user["assignment"].get("due_date")]
    return max(own, key=lambda text: _time(text, "users[].assignment.due_date")) if own else \
        (metadata.get("assignment") or {}).get("due_date")


def _time(text: str, name: str):  # type: ignore[no-untyped-def]
    from flowlab.grader.late import parse_time

    return parse_time(text, name)


def _lateness(root: Path, grade, late_penalty: float, late_cap: float) -> None:  # type: ignore[no-untyped-def]
    """Apply the late policy from Gradescope's submission metadata (submission time, the student's
    due date); metadata it cannot read is noted, never a reason to lose points."""
    from flowlab.grader.late import LatePolicy

    path = root / "submission_metadata.json"
    if not path.is_file():
        return
    try:
        metadata = json.loads(path.read_text())
        due, created = _due_date(metadata), metadata.get("created_at")
        if not (due and created):
            return
        policy = LatePolicy(due=_time(due, "due_date"), per_day=late_penalty, cap=late_cap)
        lateness = policy.lateness(_time(created, "created_at"), grade.max_points)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        grade.notes.append(f"the late policy was not applied: submission_metadata.json could not be read ({error})")
        return
    grade.days_late, grade.late_penalty, grade.late_note = lateness.days, lateness.penalty, lateness.note


def _check_cells(path: Path) -> int:
    """How many of flowlab's check cells a notebook file holds (0 if it cannot be read)."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        return sum(isinstance(c, dict) and "flowlab" in (c.get("metadata") or {}) for c in cells)
    except (OSError, ValueError, AttributeError):
        return 0


def find_notebooks(submission: Path) -> list[Path]:
    """The notebooks of a Gradescope submission, in any subfolder (a zip or a GitHub upload), the
    one to grade first: the one with most of flowlab's check cells, then the shallowest, then by name.
    Checkpoint copies and macOS by-products are not notebooks."""
    found = [p for p in submission.rglob("*.ipynb") if p.is_file()
             and not {".ipynb_checkpoints", "__MACOSX"} & set(p.relative_to(submission).parts)
             and not p.name.startswith("._")]
    return sorted(found, key=lambda p: (-_check_cells(p), len(p.relative_to(submission).parts),
                                        p.relative_to(submission).as_posix()))


def _grade_submission(root: Path, reference: Path, timeout: float, memory_mb: int, visibility: str,
                      late_penalty: float = 0.0, late_cap: float = 100.0) -> dict:
    from flowlab.grader.grade import Reference, grade_notebook

    notebooks = find_notebooks(root / "submission")
    if not notebooks:
        handed_in = sorted(p.relative_to(root / "submission").as_posix()
                           for p in (root / "submission").rglob("*") if p.is_file()) or ["nothing"]
        return _failure_results(f"no .ipynb file was submitted (found: {', '.join(handed_in)}). "
                                "Submit your notebook file.", visibility)
    Reference.from_text(reference.read_text())  # an unusable reference is the grader's failure
    grade = grade_notebook(notebooks[0], reference, timeout=timeout, memory_mb=memory_mb)
    if len(notebooks) > 1:
        chosen = notebooks[0].relative_to(root / "submission").as_posix()
        grade.notes.append(f"{len(notebooks)} notebooks were submitted; graded {chosen} (the one with most of the "
                           "lab's check cells); submit only the notebook to be graded")
    _lateness(root, grade, late_penalty, late_cap)
    return results_for(grade, visibility)


def run_autograder(root: Path, reference: Path, *, timeout: float = DEFAULT_TIMEOUT,
                   memory_mb: int = DEFAULT_MEMORY_MB, visibility: str = "visible",
                   late_penalty: float = 0.0, late_cap: float = 100.0) -> dict:
    """Grade the notebook in ``root/submission`` and write ``root/results/results.json``, always:
    a grader failure is written as a zero with its reason (and printed for the instructor). A
    submission made after the metadata's due date loses ``late_penalty`` percent of the points per
    started day, at most ``late_cap`` percent (:mod:`flowlab.grader.late`; none by default)."""
    try:
        results = _grade_submission(root, reference, timeout, memory_mb, visibility, late_penalty, late_cap)
    except Exception as error:  # noqa: BLE001 - Gradescope must always get a results.json
        traceback.print_exc()
        results = _failure_results(f"the autograder failed ({type(error).__name__}: {error}); "
                                   "tell your instructor", visibility)
    write_results(results, root)
    return results


def build_autograder_zip(wheel: Path, out: Path, *, reference: Path | None = None,
                         timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
                         visibility: str = "visible", late_penalty: float = 0.0, late_cap: float = 100.0) -> Path:
    """Write Gradescope's autograder zip: ``setup.sh``, ``run_autograder``, the wheel, and the
    reference notebook when one is given (else the one inside the wheel is used)."""
    options = [f"--timeout={timeout:g}", f"--memory-mb={memory_mb}", f"--visibility={visibility}"]
    if late_penalty:
        options += [f"--late-penalty={late_penalty:g}", f"--late-cap={late_cap:g}"]
    if reference is not None:
        options.append("--reference=reference.ipynb")  # run_autograder runs in source/
    files = {"setup.sh": _SETUP.format(wheel=shlex.quote(wheel.name)),
             "run_autograder": _RUN.format(options=" ".join(options))}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16  # executable
            archive.writestr(info, text)
        archive.write(wheel, wheel.name)
        if reference is not None:
            archive.write(reference, "reference.ipynb")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m flowlab.gradescope``: what ``run_autograder`` runs on Gradescope."""
    from flowlab.grader._setup import REFERENCE

    parser = argparse.ArgumentParser(prog="python -m flowlab.gradescope",
                                     description="Grade /autograder/submission/*.ipynb for Gradescope.")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB)
    parser.add_argument("--visibility", choices=VISIBILITIES, default="visible")
    parser.add_argument("--late-penalty", type=float, default=0.0)
    parser.add_argument("--late-cap", type=float, default=100.0)
    args = parser.parse_args(argv)
    root = Path(os.environ.get(ROOT_VARIABLE, "/autograder"))
    start = time.monotonic()
    results = run_autograder(root, args.reference, timeout=args.timeout, memory_mb=args.memory_mb,
                             visibility=args.visibility, late_penalty=args.late_penalty, late_cap=args.late_cap)
    print(f"wrote {root / 'results' / 'results.json'}: score {results['score']:g} "
          f"({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

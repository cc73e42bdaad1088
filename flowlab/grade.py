"""Grade submitted notebooks with nbval and tabulate which checks passed.

Before running, every check cell of a submission is replaced by the official
one from the reference (student) notebook, source and expected output, so an
edited or deleted check cannot pass; then ``pytest --nbval-lax`` runs the
notebook, executing every cell and comparing the check cells' output.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from flowlab.student import check_name

__all__ = ["Grade", "grade_notebook", "grade_all", "write_tables"]

_ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")  # raw, or as JUnit XML escapes it
_ERROR_LINE = re.compile(r"^(\w*(?:Error|Failed|Exception)\w*): (.+)$")


@dataclass
class Grade:
    """One submission's result: check name -> None (passed) or the failure message."""

    student: str
    path: str
    results: dict[str, str | None] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(message is None for message in self.results.values())


def _official_checks(reference: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    checks = {check_name(cell): cell for cell in reference.cells if check_name(cell)}
    if not checks:
        raise ValueError("the reference notebook has no check cells (metadata.flowlab.check)")
    return checks


def _with_official_checks(submission: nbformat.NotebookNode,
                          official: dict[str, nbformat.NotebookNode]) -> nbformat.NotebookNode:
    for i, cell in enumerate(submission.cells):
        name = check_name(cell)
        if name in official:
            submission.cells[i] = nbformat.from_dict(dict(official[name]))
    return submission


def _failure_message(text: str) -> str:
    """The most telling line of an nbval failure: the last exception line, else the first line."""
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    errors = [m for m in (_ERROR_LINE.match(line) for line in lines) if m]
    if errors:
        kind, message = errors[-1].groups()
        return message if kind == "CheckFailed" else f"{kind}: {message}"
    if any("Cell outputs differ" in line for line in lines):
        return "the check's output differs from the expected output"
    return next((line for line in lines if line), "failed")


def grade_notebook(path: str | Path, reference: str | Path, timeout: int = 1800) -> Grade:
    """Run one submission under ``pytest --nbval-lax`` and collect its checks' results."""
    path = Path(path)
    official = _official_checks(nbformat.read(str(reference), as_version=4))
    submission = _with_official_checks(nbformat.read(str(path), as_version=4), official)
    code_cells = [cell for cell in submission.cells if cell.cell_type == "code"]
    grade = Grade(student=path.stem, path=str(path))
    present = {check_name(cell) for cell in code_cells}
    with tempfile.TemporaryDirectory() as work:
        graded = Path(work) / path.name
        nbformat.write(submission, str(graded))
        report = Path(work) / "report.xml"
        subprocess.run(
            [sys.executable, "-m", "pytest", str(graded), "--nbval-lax", "--nbval-current-env",
             "-p", "no:cacheprovider", "-o", "addopts=", "-q", f"--junitxml={report}",
             f"--rootdir={work}"],
            cwd=path.parent.resolve(), capture_output=True, text=True, timeout=timeout)
        cases = {}
        if report.exists():
            for case in ElementTree.parse(report).getroot().iter("testcase"):
                problem = next((child for child in case if child.tag in ("failure", "error")), None)
                cases[case.get("name")] = None if problem is None else _failure_message(
                    (problem.get("message") or "") + "\n" + (problem.text or ""))
    for number, cell in enumerate(code_cells):
        name = check_name(cell)
        if name:
            grade.results[name] = cases.get(f"Cell {number}", "the check did not run")
    for name in official:
        if name not in present:
            grade.results[name] = "the check cell is missing from the submission"
    grade.results = {name: grade.results[name] for name in official}
    return grade


def grade_all(paths: list[Path], reference: str | Path) -> list[Grade]:
    """Grade each submission in turn."""
    return [grade_notebook(path, reference) for path in paths]


def write_tables(grades: list[Grade], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``grades.csv`` and ``grades.md``: one row per student, one column per check."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(grades[0].results) if grades else []
    csv_path, md_path = out_dir / "grades.csv", out_dir / "grades.md"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "passed", "total", *names])
        for g in grades:
            writer.writerow([g.student, g.passed, len(g.results),
                             *("pass" if g.results[n] is None else f"FAIL: {g.results[n]}" for n in names)])
    rows = ["| student | passed | " + " | ".join(names) + " |",
            "| --- | --- | " + " | ".join("---" for _ in names) + " |"]
    for g in grades:
        marks = ("✓" if g.results[n] is None else "✗" for n in names)
        rows.append(f"| {g.student} | {g.passed}/{len(g.results)} | " + " | ".join(marks) + " |")
    failures = [f"- **{g.student}**, {n}: {g.results[n]}" for g in grades for n in names
                if g.results[n] is not None]
    text = "\n".join(rows) + "\n"
    if failures:
        text += "\n### Failures\n\n" + "\n".join(failures) + "\n"
    md_path.write_text(text)
    return csv_path, md_path

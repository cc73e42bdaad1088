"""A course per LMS graded in one command each, with real notebooks run by nbval (issue 33).

The class, its downloads and exports are tests/lms_course.py's (names from the LMSs' own source:
Unicode and anonymous Canvas names, a LATE resubmission, a PDF, Moodle's folder and flat layouts,
blind marking); each submission is a real notebook: a full answer where the course builder says
"every check", the hand-out with its TODOs otherwise. Then both regrade routes: one student's file
taken out of the zip and graded alone, and a fresh download with a late resubmission. Prints the
run summaries, the exports before and after each regrade, and the time of each run.

    python benchmarks/grading_lms.py --lab mini --workers 2     # the small lab of tests/data (seconds each)
    python benchmarks/grading_lms.py --lab full --workers 2     # the lab itself (about a minute each)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import lms_course as course  # noqa: E402
from flowlab import cli  # noqa: E402
from flowlab.grader.student import make_student_notebook  # noqa: E402


def _notebooks(lab: str, folder: Path) -> tuple[Path, bytes, bytes]:
    """(reference, a full answer, the untouched hand-out) of the mini lab or the lab itself."""
    if lab == "full":
        answer = (ROOT / "notebooks" / "normalizing_flows.ipynb").read_bytes()
        handout = (ROOT / "notebooks" / "normalizing_flows_student.ipynb").read_bytes()
        return ROOT / "flowlab" / "reference" / "normalizing_flows_student.ipynb", answer, handout
    mini = nbformat.read(str(ROOT / "tests" / "data" / "mini_lab.ipynb"), as_version=4)
    reference = folder / "reference.ipynb"
    nbformat.write(make_student_notebook(mini), str(reference))
    return reference, nbformat.writes(mini).encode(), reference.read_bytes()


def _run(arguments: list[str]) -> tuple[int, str, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(arguments)
    return code, out.getvalue() + err.getvalue(), time.perf_counter() - start


def _column(path: Path, column: str, key: str) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row[key]: row[column] for row in csv.DictReader(handle) if row[key]}


def _show(title: str, code: int, printed: str, seconds: float) -> None:
    print(f"\n## {title}: exit {code}, {seconds:.0f} s\n")
    print("\n".join(line for line in printed.splitlines() if not line.startswith("  ") or "graded" in line
                    or "not" in line or "warning" in line or "regraded" in line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", choices=("mini", "full"), default="mini")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="flowlab-lms-course-"))
    reference, answer, handout = _notebooks(args.lab, folder)
    course.submission = lambda checks: answer if checks == 4 else handout  # every check, or the hand-out
    common = ["--reference", str(reference), "--workers", str(args.workers), "--timeout", f"{args.timeout:g}"]
    lab = "Normalizing flows lab (4711)"
    canvas = ["--format", "canvas", "--gradebook", str(course.canvas_export(folder / "export.csv")),
              "--assignment", "flows"]
    download = course.canvas_download(folder / "course-lab submissions.zip")
    _show("Canvas", *_run(["grade", str(download), "--out", str(folder / "canvas"), *common, *canvas]))
    before = _column(folder / "canvas" / "canvas_grades.csv", lab, "ID")
    with zipfile.ZipFile(download) as archive:
        name = next(n for n in archive.namelist() if n.startswith("ngdana_"))
    (folder / "regrade").mkdir()
    (folder / "regrade" / name).write_bytes(answer)  # Dana fixed her notebook
    _show("Canvas, one student regraded", *_run(["grade", str(folder / "regrade" / name), "--out",
                                                 str(folder / "canvas"), *common, *canvas]))
    after = _column(folder / "canvas" / "canvas_grades.csv", lab, "ID")
    print("\nCanvas export, ID: before -> after the one-student regrade")
    print("\n".join(f"  {key}: {before[key] or '-'} -> {after[key] or '-'}" for key in before))
    fresh = folder / "fresh" / "course-lab submissions (1).zip"
    fresh.parent.mkdir()
    with zipfile.ZipFile(download) as old, zipfile.ZipFile(fresh, "w") as new:
        for info in old.infolist():  # Dana's fixed notebook is in Canvas now too
            new.writestr(info, answer if info.filename == name else old.read(info))
        new.writestr("parkcy_LATE_56789_900011_lab-1.ipynb", handout)  # Cy resubmitted the hand-out, late
    _show("Canvas, a fresh download", *_run(["grade", str(fresh), "--out", str(folder / "canvas"), *common, *canvas]))
    again = _column(folder / "canvas" / "canvas_grades.csv", lab, "ID")
    print("\nCanvas export, ID: after the fresh download")
    print("\n".join(f"  {key}: {after[key] or '-'} -> {again[key] or '-'}" for key in after))
    worksheet = ["--format", "moodle", "--gradebook", str(course.moodle_worksheet(folder / "worksheet.csv"))]
    for layout, options in (("folders", {}), ("flat, blind", dict(folders=False, blind=True))):
        zip_path = course.moodle_download(folder / f"moodle {layout}.zip", **options)
        out = folder / f"moodle-{layout.split(',')[0]}"
        _show(f"Moodle ({layout})", *_run(["grade", str(zip_path), "--out", str(out), *common, *worksheet]))
        grades = _column(out / "moodle_grades.csv", "Grade", "Identifier")
        print("\n".join(f"  {key}: {value or '-'}" for key, value in grades.items()))
    _gradescope_course(folder, reference, answer, handout, args.timeout)
    print(f"\n(files left in {folder})")


def _gradescope_course(folder: Path, reference: Path, answer: bytes, handout: bytes, timeout: float) -> None:
    """Six Gradescope submissions as its autograder gets them (submission_metadata.json per
    gradescope/autograder_samples' docs): on time, late, late within an extension, a time with an
    offset without a colon, a notebook in a GitHub-style subfolder beside a scratch one, a PDF only."""
    import json

    from flowlab.grader import gradescope

    due = "2025-12-01T23:59:00.000000-08:00"
    cases = {"on time": ("2025-12-01T20:00:00.000000-08:00", None, {"lab.ipynb": answer}),
             "2 days late": ("2025-12-03T10:00:00.000000-08:00", None, {"lab.ipynb": answer}),
             "extension to 12-05": ("2025-12-03T10:00:00.000000-08:00", "2025-12-05T23:59:00.000000-08:00",
                                    {"lab.ipynb": answer}),
             "offset -0800": ("2025-12-02T21:14:01.000-0800", None, {"lab.ipynb": answer}),
             "subfolder": ("2025-12-01T20:00:00.000000-08:00", None,
                           {"lab-main/normalizing_flows.ipynb": answer, "lab-main/scratch.ipynb": b"{}"}),
             "PDF only": ("2025-12-01T20:00:00.000000-08:00", None, {"lab.pdf": b"%PDF-1.7"}),
             "hand-out": ("2025-12-01T20:00:00.000000-08:00", None, {"lab.ipynb": handout})}
    print("\n## Gradescope, --late-penalty 10 (one run_autograder per submission)\n")
    for name, (created, own_due, files) in cases.items():
        root = folder / "gradescope" / name.replace(" ", "_")
        for relative, data in files.items():
            (root / "submission" / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / "submission" / relative).write_bytes(data)
        user = {"email": "s@uni.edu", "id": 1, "name": "S"}
        if own_due:
            user["assignment"] = {"due_date": own_due, "late_due_date": None, "release_date": None}
        (root / "submission_metadata.json").write_text(json.dumps(
            {"created_at": created, "assignment": {"due_date": due}, "users": [user]}))
        start = time.perf_counter()
        results = gradescope.run_autograder(root, reference, timeout=timeout, late_penalty=10)
        lines = [line for line in results["output"].splitlines() if line.strip()]
        print(f"  {name}: score {results['score']:g} ({time.perf_counter() - start:.0f} s); " + " | ".join(lines[:3]))


if __name__ == "__main__":
    main()

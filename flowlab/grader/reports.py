"""Writing what grading found: ``grades.csv`` and ``grades.md`` for the instructor, a
``feedback.md`` per student, and the executed notebook and log kept for disputes."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from flowlab.grader.records import Grade

__all__ = ["TABLE_HEAD", "csv_row", "write_feedback", "write_tables", "keep", "append_section"]

TABLE_HEAD = ["submission", "student_id", "status", "raw_points", "late_penalty", "points", "max_points",
               "checks_passed", "days_late", "notes"]


def csv_row(grade: Grade, names: Sequence[str]) -> list[str]:
    return [grade.submission, grade.student_id, grade.status, f"{grade.score:g}", f"{grade.late_penalty:g}",
            f"{grade.final:g}", f"{grade.max_points:g}", f"{grade.passed}/{len(grade.results)}", str(grade.days_late),
            "; ".join([grade.late_note] * bool(grade.late_note) + grade.notes),
            *("pass" if grade.results[n] is None else f"FAIL: {grade.results[n]}" for n in names)]


def split_hint(message: str) -> tuple[str, str]:
    text, _, hint = message.partition("Hint:")
    return text.strip(), hint.strip()


def write_feedback(grade: Grade, path: str | Path) -> Path:
    """The student's feedback: each check, its points, pass/fail, what is wrong and the hint."""
    path = Path(path)
    lines = [f"# Feedback: {grade.submission}", "",
             f"Status: **{grade.status}**. Points: **{grade.final:g} / {grade.max_points:g}** "
             f"({grade.passed} of {len(grade.results)} checks passed)."
             + (f" Late: {grade.late_note}." if grade.late_note else ""), "",
             "| check | points | result |", "| --- | --- | --- |"]
    for name, message in grade.results.items():
        earned = grade.points_possible[name] if message is None else 0
        lines.append(f"| {name} | {earned:g} / {grade.points_possible[name]:g} | {'pass' if message is None else 'FAIL'} |")
    failed = [(n, m) for n, m in grade.results.items() if m is not None]
    if failed:
        lines += ["", "## What to fix", ""]
        for name, message in failed:
            text, hint = split_hint(message)
            lines.append(f"- **{name}**: {text}" + (f"  \n  *Hint:* {hint}" if hint else ""))
    if grade.notes:
        lines += ["", "## Notes from the grader", ""] + [f"- {note}" for note in grade.notes]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def keep(grade: Grade, out_dir: Path) -> None:
    """Feedback, executed notebook and log under ``out_dir/submissions/<submission>/``."""
    relative = Path(grade.submission)
    folder = out_dir / "submissions" / relative.parent / relative.name.replace(".ipynb", "")
    folder.mkdir(parents=True, exist_ok=True)
    write_feedback(grade, folder / "feedback.md")
    (folder / "log.txt").write_text(grade.log)
    if grade.executed:
        (folder / "executed.ipynb").write_text(grade.executed)


def write_tables(grades: Sequence[Grade], out_dir: str | Path,
                 names: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write ``grades.csv`` and ``grades.md``: one row per submission, one column per check."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(names if names is not None else (grades[0].results if grades else []))
    csv_path, md_path = out_dir / "grades.csv", out_dir / "grades.md"
    partial = csv_path.with_suffix(".csv.tmp")
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*TABLE_HEAD, *names])
        for grade in grades:
            writer.writerow(csv_row(grade, names))
    partial.replace(csv_path)
    rows = ["| submission | status | points | " + " | ".join(names) + " |",
            "| --- | --- | --- | " + " | ".join("---" for _ in names) + " |"]
    for g in grades:
        marks = ("✓" if g.results[n] is None else "✗" for n in names)
        rows.append(f"| {g.submission} | {g.status} | {g.final:g}/{g.max_points:g} | " + " | ".join(marks) + " |")
    failures = [f"- **{g.submission}**, {n}: {g.results[n]}" for g in grades for n in names
                if g.results[n] is not None]
    notes = [f"- **{g.submission}**: {note}" for g in grades for note in g.notes]
    text = "\n".join(rows) + "\n"
    if notes:
        text += "\n### Notes (possible tampering, review these)\n\n" + "\n".join(notes) + "\n"
    if failures:
        text += "\n### Failures\n\n" + "\n".join(failures) + "\n"
    md_path.write_text(text)
    return csv_path, md_path


def append_section(path: str | Path, title: str, lines: Sequence[str]) -> Path:
    """Append a section ``### title`` with one bullet per line to the Markdown file ``path``."""
    path = Path(path)
    text = path.read_text() if path.is_file() else ""
    path.write_text(text + f"\n### {title}\n\n" + "".join(f"- {line}\n" for line in lines))
    return path

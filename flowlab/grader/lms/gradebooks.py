"""LMS gradebooks out: a Canvas gradebook export filled in (:func:`fill_canvas`) and Moodle's offline grading
worksheet filled in (:func:`fill_moodle`), each written beside ``grades.csv`` in the export's own
CSV dialect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flowlab.grader.lms.intake import Student
from flowlab.grader.lms.roster import same_name
from flowlab.grader.lms.tables import LMSFormatError, Table, read_table, write_table

__all__ = ["Result", "check_gradebook", "fill_canvas", "fill_moodle", "results_from_rows"]


@dataclass(frozen=True)
class Result:
    """What an LMS needs of one graded submission."""

    student: Student
    lms_id: str
    points: float
    max_points: float
    feedback: str
    submission: str = ""  # its row key, to name it in messages


@dataclass
class _Layout:
    """An export read and checked: its table, the column to fill and where the ids and names are."""

    table: Table
    column: int
    ids: list[int]  # columns holding ids a student may be matched by
    names: list[int]  # columns holding the student's name (one, or last and first)
    possible: float | None = None  # Canvas's Points Possible for the column
    decimal_comma: bool = False  # the export writes numbers as 36,5 (a locale's setting)


def _canvas_column(header: list[str], assignment: str | None) -> int:
    columns = [i for i, h in enumerate(header) if re.search(r"\(\d+\)\s*$", h)]
    if assignment is not None:
        columns = [i for i in columns if assignment.casefold() in header[i].casefold()]
    if len(columns) != 1:
        shown = ", ".join(repr(header[i]) for i in columns) or "none"
        raise LMSFormatError("the Canvas export needs exactly one assignment column "
                             f"{'matching ' + repr(assignment) if assignment else '(name it with --assignment)'}"
                             f"; found {shown}")
    return columns[0]


def _number(text: str) -> float | None:
    """A number as Canvas writes it in any locale ('36', '36.00', '36,00'), or None."""
    try:
        return float(text.strip().replace(",", ".")) if text.strip() else None
    except ValueError:
        return None


def _canvas_layout(export: str | Path, assignment: str | None) -> _Layout:
    """Read a Canvas gradebook export (``lib/gradebook_exporter.rb``: ``Student`` or ``LastName,
    FirstName``, ``ID``, optional ``SIS User ID``, ``SIS Login ID``, ..., one column per assignment
    ``Title (id)``, a ``Points Possible`` row) and find the assignment's column."""
    table = read_table(export, "Canvas export")
    header = [h.strip() for h in table.header]
    names = ([header.index("Student")] if "Student" in header else
             [header.index(n) for n in ("LastName", "FirstName") if n in header])
    if "ID" not in header or not names:
        raise LMSFormatError(f"{str(export)!r} is not a Canvas gradebook export: its header starts {header[:5]}, "
                             "expected Student (or LastName, FirstName), ID, SIS User ID, SIS Login ID, Section")
    column = _canvas_column(header, assignment)
    ids = [header.index(n) for n in ("ID", "SIS User ID", "SIS Login ID") if n in header]
    written = next((r[column] for r in table.rows if r and r[0].strip() == "Points Possible" and len(r) > column), "")
    return _Layout(table, column, ids, names, _number(written), "," in written)


def _moodle_layout(worksheet: str | Path) -> _Layout:
    """Read Moodle's offline grading worksheet (``mod/assign/gradingtable.php``) and check its columns."""
    table = read_table(worksheet, "Moodle worksheet")
    needed = ["Identifier", "Full name", "Email address", "Grade", "Maximum Grade"]
    if not set(needed) <= set(table.header):
        raise LMSFormatError(f"{str(worksheet)!r} is not a Moodle grading worksheet: it lacks "
                             f"{', '.join(n for n in needed if n not in table.header)}")
    if "Feedback comments" not in table.header:
        table.header.append("Feedback comments")
        table.rows = [row + [""] for row in table.rows]
    header = table.header
    return _Layout(table, header.index("Grade"), [header.index("Identifier"), header.index("Email address")],
                   [header.index("Full name")])


def check_gradebook(kind: str, path: str | Path, assignment: str | None = None) -> None:
    """Read the gradebook to fill (``kind`` 'canvas' or 'moodle') and check its layout, before any
    grading: LMSFormatError says what is wrong."""
    _canvas_layout(path, assignment) if kind == "canvas" else _moodle_layout(path)


def _cell(row: list[str], index: int) -> str:
    return row[index].strip() if index < len(row) else ""


def _row_of(result: Result, layout: _Layout, moodle: bool) -> list[str] | None:
    """The export's row for ``result``'s student: by id (LMS id, roster id, email), else by a name
    only one row has."""
    rows = [r for r in layout.table.rows if r and r[0].strip() != "Points Possible" and _cell(r, layout.ids[0])]
    keys = {k.casefold() for k in (result.lms_id, result.student.student_id, result.student.email) if k}
    for row in rows:
        ids = {_cell(row, i).casefold() for i in layout.ids}
        if moodle:
            ids |= {_cell(row, layout.ids[0]).split()[-1].casefold()} if _cell(row, layout.ids[0]) else set()
        if ids & keys:
            return row
    name = result.student.name
    named = [r for r in rows if name and (same_name(name, " ".join(_cell(r, i) for i in layout.names))
                                          or same_name(" ".join(_cell(r, i) for i in layout.names), name))]
    return named[0] if len(named) == 1 else None


def fill_canvas(export: str | Path, results: Sequence[Result], out: str | Path,
                assignment: str | None = None) -> tuple[Path, list[str]]:
    """Fill an exported Canvas gradebook CSV with each result's points, scaled to the column's
    Points Possible, keeping every other row and column and the file's CSV dialect. Students are
    matched by Canvas ID (from the download), SIS User ID or SIS Login ID (the roster's
    student_id or email), else by name. Returns the file written and the results not placed."""
    layout = _canvas_layout(export, assignment)
    not_found = []
    for result in results:
        row = _row_of(result, layout, moodle=False)
        if row is None:
            not_found.append(_who(result))
            continue
        row.extend([""] * (layout.column + 1 - len(row)))
        scale = layout.possible / result.max_points if layout.possible and result.max_points else 1.0
        text = f"{round(result.points * scale, 2):g}"  # two decimals, as Canvas's own export writes
        row[layout.column] = text.replace(".", ",") if layout.decimal_comma else text
    return write_table(layout.table, out), not_found


def _who(result: Result) -> str:
    """'Ann Lee (12345), ann_12345/lab.ipynb': how a graded submission is named in messages."""
    ids = result.student.student_id or result.lms_id or "no id"
    who = f"{result.student.name} ({ids})" if result.student.name else ids
    return f"{who}, {result.submission}" if result.submission else who


def fill_moodle(worksheet: str | Path, results: Sequence[Result], out: str | Path) -> tuple[Path, list[str]]:
    """Fill Moodle's offline grading worksheet (``Identifier, Full name, Email address, Status,
    Grade, Maximum Grade, ..., Feedback comments``): each result's grade, scaled to the row's
    Maximum Grade, and its feedback; other rows and columns are kept. Students are matched by
    participant id (``Participant 123``, from the download) or email, else by name. Returns the
    file written and the results not placed."""
    layout = _moodle_layout(worksheet)
    header = layout.table.header
    maximum, feedback = header.index("Maximum Grade"), header.index("Feedback comments")
    not_found = []
    for result in results:
        row = _row_of(result, layout, moodle=True)
        if row is None:
            not_found.append(_who(result))
            continue
        row.extend([""] * (len(header) - len(row)))
        scale = (_number(row[maximum]) or 0) / result.max_points if _number(row[maximum]) and result.max_points \
            else 1.0
        row[layout.column] = f"{result.points * scale:.2f}"
        row[feedback] = result.feedback
    return write_table(layout.table, out), not_found


def results_from_rows(rows: Iterable) -> list[Result]:  # type: ignore[type-arg]
    """One :class:`Result` per student of the class's gradebook rows (:class:`flowlab.grader.gradebook.Row`):
    of a student's rows, those of their latest grading run, the best of them."""
    from flowlab.grader.records import Grade

    newest: dict[str, object] = {}
    for row in rows:
        student = row.identity or f"row:{row.submission}"  # a row nobody is known for stands alone
        earlier = newest.get(student)
        grade = Grade(row.submission, row.status, row.results, row.points_possible, late_penalty=row.late_penalty)
        rank = (row.graded_at, grade.final)
        if earlier is None or rank > earlier[0]:  # type: ignore[index]
            newest[student] = (rank, row, grade)
    results = []
    for _, row, grade in sorted(newest.values(), key=lambda item: item[1].submission):  # type: ignore[index]
        failed = [name for name, message in row.results.items() if message is not None]
        feedback = (f"{grade.final:g}/{grade.max_points:g} points ({row.status})"
                    + (f"; not passed: {', '.join(failed)}" if failed else "; every check passed")
                    + (f"; {row.late_note}" if row.late_note else ""))
        student = Student(row.student_id, row.name, row.email)
        results.append(Result(student, row.lms_id, grade.final, grade.max_points, feedback, row.submission))
    return results

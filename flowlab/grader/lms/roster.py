"""The class list: a **roster** (CSV: ``student_id``, ``name``, ``email``, optional ``pattern``) gives each
submission its student: by LMS id, then by the pattern (a glob on the path), then by name
(Unicode-normalised, accents and punctuation ignored, either word order).

:func:`same_name` is also how a gradebook's row is found by name (:mod:`.gradebooks`).
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flowlab.grader.lms.intake import Skipped, Student, Submitted
from flowlab.grader.lms.tables import LMSFormatError, read_csv_records

__all__ = ["Roster", "read_roster", "letters", "same_name", "match_roster", "handed_in_by"]


@dataclass
class Roster:
    """The class list, in the roster file's order."""

    students: list[Student]


def read_roster(path: str | Path) -> Roster:
    """Read a roster CSV with the columns ``student_id`` and ``name`` (required), ``email`` and
    ``pattern`` (optional; a glob on the submission's path, e.g. ``ann/*`` or ``*ann_lee*``).

    Raises LMSFormatError naming the file and what is missing or repeated.
    """
    path = Path(path)
    header, rows = read_csv_records(path, "roster")
    missing = [column for column in ("student_id", "name") if column not in header]
    if not rows or missing:
        raise LMSFormatError(f"roster {str(path)!r} needs a header with student_id and name (and optionally "
                             f"email, pattern) and one row per student; missing: {', '.join(missing) or 'rows'}")
    students = [Student(row["student_id"], row["name"], row.get("email", ""), row.get("pattern", ""))
                for row in rows]
    ids = [s.student_id for s in students]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated or "" in ids:
        raise LMSFormatError(f"roster {str(path)!r}: every student needs a unique student_id; "
                             f"{'repeated: ' + ', '.join(repeated) if repeated else 'one is empty'}")
    return Roster(students)


def letters(text: str) -> str:
    """Letters only, case and accents dropped (Unicode-normalised): 'O'Brien, Siobhán' -> 'obriensiobhan'.

    Example:
        >>> letters("O'Brien, Siobhán") == letters("obriensiobhán") == "obriensiobhan"
        True
    """
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if c.isalpha())


def same_name(lms_name: str, full_name: str) -> bool:
    """Whether an LMS's name for a student (Canvas: 'lastnamefirstname', Moodle: the full name) is
    ``full_name`` ('First Last' or 'Last, First'): letters compared with the words in any rotation."""
    words = [w for w in re.split(r"[\s,]+", full_name) if w]
    candidates = {letters("".join(words[i:] + words[:i])) for i in range(len(words))}
    candidates |= {letters("".join(reversed(words)))}
    return bool(lms_name) and bool(letters(lms_name)) and letters(lms_name) in candidates


def match_roster(submitted: Iterable[Submitted], roster: Roster) -> tuple[list[Submitted], list[Student]]:
    """Give each submission its student (by LMS id, then pattern, then name); returns the
    submissions nobody on the roster matched, and the students without a submission."""
    unmatched: list[Submitted] = []
    claimed: set[str] = set()
    for item in submitted:
        student = (next((s for s in roster.students if item.lms_id and s.student_id == item.lms_id), None)
                   or next((s for s in roster.students if s.pattern and
                            (fnmatch.fnmatch(item.key, s.pattern) or fnmatch.fnmatch(str(item.path), s.pattern))),
                           None)
                   or next((s for s in roster.students if same_name(item.name, s.name)), None)
                   or next((s for s in roster.students if item.key.split("/")[0] == s.student_id), None))
        item.student = student
        if student is None:
            unmatched.append(item)
        else:
            claimed.add(student.student_id)
    absent = [s for s in roster.students if s.student_id not in claimed]
    return unmatched, absent


def handed_in_by(student: Student, skipped: Iterable[Skipped]) -> list[Skipped]:
    """The files of ``student`` that were not graded (a PDF, say): why they have no grade."""
    return [item for item in skipped if (item.lms_id and item.lms_id == student.student_id)
            or same_name(item.name, student.name)]

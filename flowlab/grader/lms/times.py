"""Submission times: the instructor's own CSV (:func:`read_times`), the "Last modified (submission)"
column of Moodle's grading worksheet (:func:`moodle_times`), and each submission given its time
(:func:`attach_times`) for the late policy (:mod:`flowlab.grader.late`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone, tzinfo
from pathlib import Path

from flowlab.grader.late import parse_time
from flowlab.grader.lms.intake import Submitted
from flowlab.grader.lms.tables import LMSFormatError, read_table

__all__ = ["read_times", "moodle_times", "attach_times"]

_MOODLE_TIME_FORMATS = ("%A, %d %B %Y, %I:%M %p", "%A, %d %B %Y, %H:%M", "%d %B %Y, %I:%M %p", "%d %B %Y, %H:%M")


def read_times(path: str | Path, zone: tzinfo = timezone.utc) -> dict[str, datetime]:
    """Submission times the instructor exported: a CSV ``submission,submitted_at`` where
    ``submission`` is a row key (``ann/lab.ipynb``), a student id or an LMS id, and
    ``submitted_at`` an ISO time (in ``zone`` unless it has its own). LMSFormatError names the line."""
    table = read_table(path, "times")
    if [h.strip().lower() for h in table.header[:2]] != ["submission", "submitted_at"]:
        raise LMSFormatError(f"times {str(path)!r} needs the header submission,submitted_at; "
                             f"got {','.join(table.header)}")
    times = {}
    for number, row in enumerate(table.rows, start=2):
        try:
            times[row[0].strip()] = parse_time(row[1], f"line {number}: submitted_at", zone)
        except (ValueError, IndexError) as error:
            raise LMSFormatError(f"times {str(path)!r}: {error}") from None
    return times


def _moodle_time(text: str, zone: tzinfo) -> datetime | None:
    for layout in _MOODLE_TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), layout).replace(tzinfo=zone)
        except ValueError:
            continue
    return None


def moodle_times(worksheet: str | Path, zone: tzinfo = timezone.utc) -> tuple[dict[str, datetime], list[str]]:
    """Participant id -> "Last modified (submission)" from Moodle's grading worksheet (Moodle's
    English date formats, in ``zone``: Moodle writes the downloading user's time zone), and the
    rows whose time could not be read (``'Participant 7: lundi 1 décembre 2025, 21:14'``)."""
    table = read_table(worksheet, "Moodle worksheet")
    if "Identifier" not in table.header or "Last modified (submission)" not in table.header:
        return {}, []
    who, when = table.header.index("Identifier"), table.header.index("Last modified (submission)")
    times, unreadable = {}, []
    for row in table.rows:
        if len(row) <= max(who, when) or row[when].strip() in ("", "-"):
            continue
        time = _moodle_time(row[when], zone)
        if time is None:
            unreadable.append(f"{row[who]}: {row[when].strip()}")
        else:
            times[row[who].split()[-1]] = time
    return times, unreadable


def attach_times(submitted: Iterable[Submitted], times: Mapping[str, datetime]) -> None:
    """Give each submission its time from ``times``, looked up by row key, student id, then LMS id."""
    for item in submitted:
        for key in (item.key, item.student.student_id if item.student else "", item.lms_id):
            if key and key in times:
                item.submitted_at = times[key]
                break

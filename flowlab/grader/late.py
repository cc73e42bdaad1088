"""Late work: due dates, extensions, and a documented penalty policy (none by default).

The policy: a submission is late by the number of *started* days between its due date (the
student's extension if they have one, else ``--due``) and its submission time. Each late day
deducts ``per_day`` percent of the assignment's maximum points, at most ``cap`` percent in all;
points never go below zero. With ``per_day = 0`` (the default) lateness is recorded and shown, and
nothing is deducted.

Submission times come from where the LMS keeps them: Gradescope's submission metadata
(``created_at``), Moodle's grading worksheet ("Last modified (submission)"), or a ``--times`` CSV
the instructor exports; Canvas's download marks late files ``late`` in their names but carries no
time, so a marked file without a time counts as one day late. Times without a time zone are UTC.
A zip's own file timestamps are never used: they may be the download's time, not the student's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path

from flowlab.grader.lms.tables import read_csv_records

__all__ = ["LatePolicy", "Lateness", "parse_time", "parse_zone", "read_extensions", "NO_POLICY"]


def parse_time(text: str, name: str = "time", zone: tzinfo = timezone.utc) -> datetime:
    """An ISO 8601 time (``2026-12-01T23:59``, ``2026-12-01 23:59:00+01:00``, a trailing ``Z``, an
    offset without a colon ``-0800``, fractions of a second of any length), read by dateutil's
    ``isoparse`` the same on every Python; without a zone it is in ``zone`` (UTC by default).
    ValueError names ``name`` and the text.

    Example:
        >>> parse_time("2026-12-01T23:59Z").isoformat()
        '2026-12-01T23:59:00+00:00'
        >>> parse_time("2025-12-01T21:14:01.000-0800").isoformat()
        '2025-12-01T21:14:01-08:00'
    """
    from dateutil.parser import isoparse

    try:
        value = isoparse(text.strip())
    except (ValueError, OverflowError, AttributeError, TypeError):
        raise ValueError(f"{name} must be an ISO 8601 time such as 2026-12-01T23:59 or "
                         f"2026-12-01T23:59+01:00, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def parse_zone(text: str, name: str = "timezone") -> tzinfo:
    """A time zone by its IANA name (``Europe/Berlin``) or ``UTC``; ValueError names ``name``.

    Example:
        >>> str(parse_zone("Europe/Berlin"))
        'Europe/Berlin'
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if text.strip().upper() in ("UTC", "Z"):
        return timezone.utc
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name} must be an IANA time zone such as Europe/Berlin or America/New_York, "
                         f"or UTC; got {text!r}") from None


@dataclass(frozen=True)
class Lateness:
    """How late one submission is and what it costs."""

    days: int = 0
    penalty: float = 0.0  # points deducted
    note: str = ""


@dataclass(frozen=True)
class LatePolicy:
    """Due date, per-student extensions (student id -> due date), and the deduction."""

    due: datetime | None = None
    per_day: float = 0.0  # percent of the maximum points per started day late
    cap: float = 100.0  # percent of the maximum points at most
    extensions: Mapping[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in (("per_day", self.per_day), ("cap", self.cap)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 100):
                raise ValueError(f"{name} must be a percentage from 0 to 100, got {value!r}")

    def lateness(self, submitted: datetime | None, max_points: float, student_id: str = "",
                 flagged_late: bool = False) -> Lateness:
        """The lateness of a submission made at ``submitted`` (None: unknown) by ``student_id``.

        Example:
            >>> policy = LatePolicy(due=parse_time("2026-12-01T23:59"), per_day=10, cap=30)
            >>> policy.lateness(parse_time("2026-12-03T08:00"), max_points=20)
            Lateness(days=2, penalty=4.0, note='2 days late (due 2026-12-01 23:59 UTC): -4 points (10% per day)')
        """
        due = self.extensions.get(student_id, self.due) if student_id else self.due
        if due is not None and submitted is not None:
            days = max(0, math.ceil((submitted - due).total_seconds() / 86_400))
            when = f" (due {due.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" + \
                   (", extended)" if student_id in self.extensions else ")")
        elif flagged_late:
            days, when = 1, " (marked late by the LMS; counted as 1 day)"
        else:
            return Lateness()
        if days == 0:
            return Lateness()
        penalty = max_points * min(self.cap, self.per_day * days) / 100
        cost = f": -{penalty:g} points ({self.per_day:g}% per day)" if penalty else ": no deduction"
        return Lateness(days, penalty, f"{days} day{'s' if days != 1 else ''} late{when}{cost}")


#: Lateness recorded from the LMS's marks only, nothing deducted.
NO_POLICY = LatePolicy()


def read_extensions(path: str | Path, zone: tzinfo = timezone.utc) -> dict[str, datetime]:
    """An extensions CSV: ``student_id,due`` per row (ISO times, in ``zone`` unless they have their
    own). ValueError names the file and row."""
    path = Path(path)
    header, rows = read_csv_records(path, "extensions")
    if header[:2] != ["student_id", "due"]:
        raise ValueError(f"extensions {str(path)!r} needs the header student_id,due; got {','.join(header)}")
    return {row["student_id"]: parse_time(row["due"], f"extensions {path.name} line {number}: due", zone)
            for number, row in enumerate(rows, start=2)}

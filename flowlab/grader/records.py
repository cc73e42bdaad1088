"""The grader's records: the reference notebook's checks, a submission's job, its grade."""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

from flowlab.grader._limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
from flowlab.grader.student import check_name

__all__ = ["STATUSES", "Reference", "Grade", "Job"]

STATUSES = ("graded", "timeout", "crashed", "unreadable")


@dataclass(frozen=True)
class Reference:
    """The official check cells of a reference (student) notebook, in order, with their points."""

    text: str
    cells: dict[str, dict]
    points_possible: dict[str, float]  # check -> the points it is worth
    before: dict[str, str | None]  # check -> id of the cell just above it (its answer)

    @classmethod
    def from_text(cls, text: str) -> Reference:
        notebook = nbformat.reads(text, as_version=4)
        cells: dict[str, dict] = {}
        points: dict[str, float] = {}
        before: dict[str, str | None] = {}
        previous: str | None = None
        for cell in notebook.cells:
            name = check_name(cell)
            if name:
                if name in cells:
                    raise ValueError(f"reference notebook: check {name!r} has two cells")
                cells[name] = cell
                value = cell.metadata["flowlab"].get("points", 1)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"reference notebook: check {name!r} has points={value!r}; "
                                     "points must be a number >= 0")
                points[name] = float(value)
                before[name] = previous
            previous = cell.get("id")
        if not cells:
            raise ValueError("the reference notebook has no check cells (metadata.flowlab.check)")
        return cls(text=text, cells=cells, points_possible=points, before=before)


@dataclass
class Grade:
    """One submission's result. ``results`` maps check name -> None (passed) or the reason it failed."""

    submission: str
    status: str
    results: dict[str, str | None]
    points_possible: dict[str, float]  # check -> the points it is worth
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    executed: str | None = None  # the executed notebook (JSON), for disputes
    log: str = ""
    student_id: str = ""  # the roster's or the LMS's id, when known
    days_late: int = 0
    late_penalty: float = 0.0  # points deducted under the late policy (flowlab.grader.late)
    late_note: str = ""

    @property
    def final(self) -> float:
        """The points that count: the checks' points less the late penalty, never below zero."""
        return max(0.0, self.score - self.late_penalty)

    @property
    def passed(self) -> int:
        return sum(message is None for message in self.results.values())

    @property
    def score(self) -> float:
        return sum(self.points_possible[name] for name, message in self.results.items() if message is None)

    @property
    def max_points(self) -> float:
        return sum(self.points_possible.values())


@dataclass(frozen=True)
class Job:
    """Everything one submission's grading needs, picklable for any executor."""

    submission: str  # its name in the tables: the path relative to the submissions' common folder
    content: bytes
    reference_text: str  # the reference notebook itself (JSON), not its path
    sources: tuple[tuple[str, bytes], ...]
    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB
    threads: int | None = None  # CPU threads for the notebook's TensorFlow; None: its default

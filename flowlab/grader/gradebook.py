"""The class's grades across runs: one row per submission, kept in ``OUT/grades.json``.

``flowlab grade`` runs more than once on the same class: a run is interrupted, a student's
notebook is regraded alone, a late submission arrives. The gradebook makes each run add to the
record instead of replacing it:

- a submission's key is its path below the class's *root* folder (the folder the first run
  graded, remembered in ``grades.json``), so ``submissions/ann/lab.ipynb`` is ``ann/lab.ipynb``
  whether it is graded with the class or alone;
- a submission whose file is unchanged since its row was written is finished: a rerun skips it
  (``force=True`` regrades it), so an interrupted run resumes where it stopped;
- a regraded submission replaces its own row; every other row stays.

``grades.json`` is rewritten (atomically) after every row, so nothing graded is lost to a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

__all__ = ["Gradebook", "Row", "Handin", "GRADEBOOK", "content_digest", "class_root"]

#: The gradebook's file in the output folder.
GRADEBOOK = "grades.json"
_VERSION = 1


def content_digest(content: bytes) -> str:
    """The SHA-256 of a submission's bytes: a changed file is graded again.

    Example:
        >>> content_digest(b"")[:12]
        'e3b0c44298fc'
    """
    return hashlib.sha256(content).hexdigest()


@dataclass
class Row:
    """One submission's graded result, as kept between runs (no executed notebook, no log)."""

    submission: str
    status: str
    results: dict[str, str | None]
    points_possible: dict[str, float]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sha256: str = ""
    student_id: str = ""
    days_late: int = 0
    late_penalty: float = 0.0
    late_note: str = ""
    lms_id: str = ""  # the LMS's id of the student (Canvas user id, Moodle participant id)
    name: str = ""  # the student's name, from the roster or the LMS
    email: str = ""
    graded_at: str = ""  # when the run that graded it started (ISO, UTC): the newest run's row counts

    @property
    def identity(self) -> str:
        """The student this row belongs to, as :attr:`Handin.identity` names them ('' when unknown)."""
        return self.student_id or self.lms_id


@dataclass(frozen=True)
class Handin:
    """What the LMS or the roster says of one submission: who, when, and whether it was marked late."""

    student_id: str = ""
    submitted_at: datetime | None = None
    flagged_late: bool = False
    lms_id: str = ""
    name: str = ""
    email: str = ""

    @property
    def identity(self) -> str:
        """Who this is, for telling one student's rows from another's ('' when nobody is known)."""
        return self.student_id or self.lms_id


@dataclass
class Gradebook:
    """The rows of one output folder, keyed by submission, for one set of checks."""

    path: Path
    root: Path
    checks: list[str]
    rows: dict[str, Row] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)  # the LMS downloads graded into it, by name

    @classmethod
    def open(cls, out_dir: str | Path, checks: Sequence[str], paths: Sequence[Path],
             root: Path | None = None) -> Gradebook:
        """The gradebook of ``out_dir`` (a new one if it has none), for grading ``paths``.

        Its root is ``root`` if given, else the one it remembers when every path lies under it,
        else the submissions' common folder. Raises ValueError when ``out_dir`` holds grades of
        other checks (another reference notebook).
        """
        path = Path(out_dir) / GRADEBOOK
        stored = _load(path)
        resolved = [Path(p).resolve() for p in paths]
        if stored is not None and list(stored.get("checks", [])) != list(checks):
            raise ValueError(
                f"{path} holds grades for the checks {stored.get('checks')}, not {list(checks)} "
                "(another reference notebook?); choose another --out folder")
        remembered = Path(stored["root"]) if stored else None
        if root is None:
            root = _choose_root(remembered, resolved)
        book = cls(path=path, root=Path(root).resolve(), checks=list(checks),
                   downloads=list(stored.get("downloads", [])) if stored else [])
        if stored is not None:
            rows = [_row(row) for row in stored["rows"].values()]
            book.rows = {row.submission: row for row in map(book._rekeyed(remembered), rows)}
        return book

    def _rekeyed(self, old_root: Path):  # type: ignore[no-untyped-def]
        """A function giving a stored row its key below this root (a wider root than the one it
        was graded under renames it: ``lab.ipynb`` under ``class/ann`` is ``ann/lab.ipynb``)."""
        def rekey(row: Row) -> Row:
            path = old_root / row.submission
            if old_root != self.root and path.is_relative_to(self.root):
                row.submission = path.relative_to(self.root).as_posix()
            return row
        return rekey

    @classmethod
    def read(cls, out_dir: str | Path) -> Gradebook:
        """``out_dir``'s gradebook as stored (empty if it has none), for reading its rows."""
        path = Path(out_dir) / GRADEBOOK
        stored = _load(path)
        if stored is None:
            return cls(path=path, root=Path.cwd().resolve(), checks=[])
        book = cls(path=path, root=Path(stored["root"]), checks=list(stored.get("checks", [])),
                   downloads=list(stored.get("downloads", [])))
        book.rows = {key: _row(row) for key, row in stored["rows"].items()}
        return book

    def key(self, path: Path) -> str:
        """``path``'s row key: its path below the root (its file name if outside it)."""
        resolved = Path(path).resolve()
        if resolved.is_relative_to(self.root):
            return resolved.relative_to(self.root).as_posix()
        return resolved.name

    def finished(self, key: str, sha256: str) -> bool:
        """Whether ``key`` has a row for exactly this file content."""
        row = self.rows.get(key)
        return row is not None and row.sha256 == sha256

    def record(self, row: Row) -> None:
        """Add or replace ``row`` and save the gradebook at once."""
        self.rows[row.submission] = row
        self.save()

    def supersede(self, handins: Mapping[str, Handin]) -> list[str]:
        """Drop the earlier rows of every student handing in here under another key (a
        resubmission named ``lab-1.ipynb``, a file regraded alone); returns what was dropped, as
        ``'old key (student): replaced by new key'``. A student's rows are kept whole otherwise."""
        keys_of: dict[str, set[str]] = {}
        for key, handin in handins.items():
            if handin.identity:
                keys_of.setdefault(handin.identity, set()).add(key)
        dropped = []
        for key, row in list(self.rows.items()):
            if row.identity in keys_of and key not in keys_of[row.identity]:
                del self.rows[key]
                dropped.append(f"{key} ({row.identity}): replaced by {', '.join(sorted(keys_of[row.identity]))}")
        if dropped:
            self.save()
        return dropped

    def save(self) -> None:
        """Write ``grades.json`` atomically (a crash leaves the old or the new file, whole)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": _VERSION, "root": str(self.root), "checks": self.checks, "downloads": self.downloads,
                   "rows": {key: asdict(row) for key, row in sorted(self.rows.items())}}
        partial = self.path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(payload, indent=1) + "\n")
        os.replace(partial, self.path)


def _row(stored: dict) -> Row:
    """A stored row; fields a newer flowlab added get their defaults, unknown ones are dropped."""
    return Row(**{key: value for key, value in stored.items() if key in Row.__dataclass_fields__})


def class_root(out_dir: str | Path, paths: Sequence[Path]) -> Path:
    """The folder :meth:`Gradebook.open` keys ``paths`` below when given no root: the one
    ``out_dir``'s gradebook remembers if every path lies under it, else their common folder."""
    stored = _load(Path(out_dir) / GRADEBOOK)
    return _choose_root(Path(stored["root"]) if stored else None, [Path(p).resolve() for p in paths])


def _choose_root(remembered: Path | None, resolved: Sequence[Path]) -> Path:
    if remembered is not None and all(p.is_relative_to(remembered) for p in resolved):
        return remembered
    return _common_folder(resolved)


def _load(path: Path) -> dict | None:
    """The stored gradebook, None if there is none; ValueError if the file is not one."""
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        if not (isinstance(stored, dict) and isinstance(stored.get("root"), str)
                and isinstance(stored.get("rows"), dict)):
            raise ValueError("it lacks the root folder or the rows")
        return stored
    except (ValueError, OSError) as error:
        raise ValueError(f"{path} is not a flowlab gradebook ({error}); move it away or choose "
                         "another --out folder") from None


def _common_folder(paths: Sequence[Path]) -> Path:
    """The deepest folder holding every path (a single file's own folder)."""
    if not paths:
        return Path.cwd().resolve()
    return Path(os.path.commonpath([p.parent for p in paths]))

"""The instructor's world around ``flowlab grade``: LMS downloads in, a roster, LMS gradebooks out.

In:

- **Canvas** "Download submissions" zips name each file
  ``lastnamefirstname[_late]_userid_submissionid_originalname``; a resubmitted file gets ``-1``,
  ``-2`` before its extension. The newest file of each student is graded, the rest listed.
- **Moodle** assignment downloads put each student's files in a folder (or a name prefix)
  ``Full Name_participantid_assignsubmission_file_``.
- Anything else (plain folders, a zip of folders) is graded by path.

A zip is read without extracting its names: only ``.ipynb`` members are read, into a temporary
folder under names this module makes (so no member can write outside it), with bounded member
count, member size and total size (zip bombs stop with a clear error).

A **roster** (CSV: ``student_id``, ``name``, ``email``, optional ``pattern``) gives each
submission its student: by LMS id, then by the pattern (a glob on the path), then by name.
Unmatched files and students without a submission are listed, never dropped.

Out: a Canvas gradebook export filled in (:func:`fill_canvas`) and Moodle's offline grading
worksheet filled in (:func:`fill_moodle`), each written beside ``grades.csv``.
"""

from __future__ import annotations

import csv
import fnmatch
import re
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

__all__ = ["Student", "Submitted", "Collected", "Roster", "MAX_MEMBERS", "MAX_MEMBER_BYTES",
           "MAX_TOTAL_BYTES", "collect", "read_roster", "match_roster", "fill_canvas", "fill_moodle",
           "read_times", "moodle_times", "attach_times", "read_csv_records",
           "LMSFormatError"]

#: Bounds on what one zip may hold (a class's notebooks are far smaller).
MAX_MEMBERS = 20_000
MAX_MEMBER_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 4 * 2**30

_CANVAS = re.compile(r"^(?P<name>[a-z0-9]+)_(?:(?P<late>late)_)?(?P<id>\d+)_(?P<submission>\d+)_(?P<file>.+)$",
                     re.IGNORECASE)
_RESUBMISSION = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)(?P<suffix>\.ipynb)$", re.IGNORECASE)
_MOODLE = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_(?:file|onlinetext)_(?P<file>.*)$")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class LMSFormatError(ValueError):
    """An input (zip, roster, gradebook export) that cannot be used; the message says why."""


@dataclass(frozen=True)
class Student:
    """A student as the roster or the LMS knows them (empty strings where unknown)."""

    student_id: str = ""
    name: str = ""
    email: str = ""
    pattern: str = ""


@dataclass
class Submitted:
    """One file to grade: where it lies now, its row key, and who the LMS says handed it in."""

    path: Path
    key: str
    lms: str = ""  # "canvas", "moodle" or ""
    lms_id: str = ""  # Canvas user id, Moodle participant id
    name: str = ""  # the name in the LMS's file name
    late: bool = False  # as the LMS marked it (Canvas)
    student: Student | None = None
    submitted_at: datetime | None = None  # from --times or the LMS's worksheet, when known


@dataclass
class Collected:
    """What :func:`collect` found: files to grade, the folder their keys are below, and notes."""

    submitted: list[Submitted]
    root: Path | None
    notes: list[str] = field(default_factory=list)
    _temporary: tempfile.TemporaryDirectory | None = None

    def keyed(self, root: Path) -> None:
        """Key each submission by its path below ``root`` (when :func:`collect` left it open)."""
        self.root = root
        for item in self.submitted:
            item.key = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else item.path.name

    def cleanup(self) -> None:
        """Remove the temporary folder a zip was read into."""
        if self._temporary is not None:
            self._temporary.cleanup()


def _safe(part: str) -> str:
    """A file or folder name made only of letters, digits, '.', '_' and '-' (never '.' or '..').

    Example:
        >>> _safe("../Ann Lee/x.ipynb")
        '.._Ann_Lee_x.ipynb'
    """
    cleaned = _SAFE.sub("_", part).strip("_") or "file"
    return "file" if set(cleaned) <= {"."} else cleaned


def _identify(name: str) -> tuple[str, str, str, bool, str]:
    """(lms, lms_id, student name, late, original file name) from a submission's path in a download."""
    parts = PurePosixPath(name).parts
    canvas = _CANVAS.match(parts[-1])
    if canvas:
        return "canvas", canvas["id"], canvas["name"], bool(canvas["late"]), canvas["file"]
    for part in parts:
        moodle = _MOODLE.match(part)
        if moodle:
            original = parts[-1] if part != parts[-1] else moodle["file"]
            return "moodle", moodle["id"], moodle["name"], False, original
    return "", "", "", False, parts[-1]


def _resubmission(file_name: str) -> tuple[str, int]:
    """('lab.ipynb', 2) for 'lab-2.ipynb'; (file_name, 0) for a first submission."""
    match = _RESUBMISSION.match(file_name)
    return (match["stem"] + match["suffix"], int(match["n"])) if match else (file_name, 0)


def _notebook_members(archive: zipfile.ZipFile, label: str) -> list[zipfile.ZipInfo]:
    """The archive's notebook members, within :data:`MAX_MEMBERS` and the size bounds."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise LMSFormatError(f"{label} holds {len(infos):,} members, more than {MAX_MEMBERS:,}: not a class's "
                             "submissions")
    members = [info for info in infos if not info.is_dir() and info.filename.lower().endswith(".ipynb")
               and "__MACOSX" not in info.filename and ".ipynb_checkpoints" not in info.filename]
    total = sum(info.file_size for info in members)
    if total > MAX_TOTAL_BYTES:
        raise LMSFormatError(f"{label}'s notebooks would unpack to {total / 2**30:.1f} GiB, more than "
                             f"{MAX_TOTAL_BYTES / 2**30:.0f} GiB")
    return members


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    """A member's bytes, never more than :data:`MAX_MEMBER_BYTES` whatever its header claims."""
    with archive.open(info) as handle:
        data = handle.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise LMSFormatError(f"{label}: {info.filename!r} unpacks to more than {MAX_MEMBER_BYTES / 2**20:.0f} MiB")
    return data


def _from_zip(path: Path, folder: Path, notes: list[str]) -> list[Submitted]:
    label = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise LMSFormatError(f"{label} is not a readable zip file ({error})") from None
    found: list[Submitted] = []
    with archive:
        for number, info in enumerate(_notebook_members(archive, label)):
            lms, lms_id, name, late, original = _identify(info.filename)
            parent = PurePosixPath(info.filename).parent
            folders = ([_safe(f"{name}_{lms_id}")] if lms else
                       [_safe(part) for part in parent.parts if part not in ("..", ".", "/")])
            target = folder / f"{number:05d}" / _safe(original)
            target.parent.mkdir(parents=True)
            target.write_bytes(_read_member(archive, info, label))
            key = "/".join([*folders, _safe(original)])
            found.append(Submitted(target, key, lms, lms_id, name, late))
    return found


def _from_folder_or_file(path: Path) -> list[Submitted]:
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file())
    found = []
    for file in files:
        lms, lms_id, name, late, _ = _identify(file.relative_to(path).as_posix() if path.is_dir() else file.name)
        found.append(Submitted(file.resolve(), "", lms, lms_id, name, late))
    return found


def _newest_per_student(submitted: list[Submitted], notes: list[str]) -> list[Submitted]:
    """Of a student's files of the same name in one LMS download, the highest resubmission only."""
    chosen: dict[tuple[str, str, str], tuple[int, Submitted]] = {}
    kept: list[Submitted] = []
    for item in submitted:
        if not item.lms:
            kept.append(item)
            continue
        base, number = _resubmission(item.path.name)
        slot = (item.lms, item.lms_id, base)
        if slot in chosen:
            earlier_number, earlier = chosen[slot]
            newer, older = (item, earlier) if number > earlier_number else (earlier, item)
            notes.append(f"{newer.key}: resubmitted; graded the newest file, not {older.path.name}")
            chosen[slot] = (max(number, earlier_number), newer)
        else:
            chosen[slot] = (number, item)
    return kept + [item for _, item in chosen.values()]


def collect(paths: Sequence[str | Path]) -> Collected:
    """The notebooks to grade from folders and notebook files, or from one LMS zip (see the module
    docstring). :attr:`Collected.root` is the folder rows are keyed below when the input fixes
    one (the one folder given, the zip's temporary folder; else None: see
    :meth:`Collected.keyed`); a zip's submissions have their keys already.

    Raises LMSFormatError for a zip given with other paths, or one that is not a zip, too big or
    holds too many members, and FileNotFoundError for a path that does not exist.
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {str(path)!r}")
    zips = [p for p in paths if p.is_file() and p.suffix.lower() == ".zip"]
    if zips and len(paths) > 1:
        raise LMSFormatError("grade one LMS download (.zip) at a time, on its own: got "
                             + ", ".join(map(str, paths)))
    notes: list[str] = []
    if zips:
        temporary = tempfile.TemporaryDirectory(prefix="flowlab-lms-")
        try:
            root = Path(temporary.name).resolve()
            found = _newest_per_student(_from_zip(zips[0], root / "members", notes), notes)
            return Collected(_materialized_by_key(found, root / "class"), root / "class", notes, temporary)
        except BaseException:
            temporary.cleanup()
            raise
    found = _newest_per_student([item for path in paths for item in _from_folder_or_file(path)], notes)
    return Collected(found, paths[0].resolve() if len(paths) == 1 and paths[0].is_dir() else None, notes)


def _materialized_by_key(submitted: list[Submitted], root: Path) -> list[Submitted]:
    """Move each zip member to ``root/<its key>`` (keys made unique), so rows are named by student."""
    used: set[str] = set()
    for item in submitted:
        key, count = item.key, 1
        while key in used:
            count += 1
            key = f"{item.key.rsplit('.', 1)[0]}_{count}.ipynb"
        used.add(key)
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        item.path = item.path.replace(target)
        item.key = key
    return submitted


# ---- roster ----------------------------------------------------------------------------------

@dataclass
class Roster:
    """The class list, in the roster file's order."""

    students: list[Student]


def read_csv_records(path: Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV file's header (lower case, stripped) and its rows as such dicts of stripped values;
    LMSFormatError says which file (``what``) could not be read and why."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            rows = [{key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
                    for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LMSFormatError(f"{what} {str(path)!r} cannot be read ({error})") from None
    return header, rows


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


def _letters(text: str) -> str:
    """Lower-case letters only: 'Lee, Ann' and 'leeann' compare equal after sorting words."""
    return re.sub(r"[^a-z]", "", text.casefold())


def _same_name(lms_name: str, roster_name: str) -> bool:
    """Canvas writes 'lastnamefirstname', Moodle the full name: compare letters in either order."""
    words = [w for w in re.split(r"[\s,]+", roster_name) if w]
    candidates = {_letters("".join(words)), _letters("".join(reversed(words))),
                  _letters("".join(words[-1:] + words[:-1]))}
    return bool(lms_name) and _letters(lms_name) in candidates


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
                   or next((s for s in roster.students if _same_name(item.name, s.name)), None)
                   or next((s for s in roster.students if item.key.split("/")[0] == s.student_id), None))
        item.student = student
        if student is None:
            unmatched.append(item)
        else:
            claimed.add(student.student_id)
    absent = [s for s in roster.students if s.student_id not in claimed]
    return unmatched, absent


# ---- submission times ----------------------------------------------------------------------

_MOODLE_TIME_FORMATS = ("%A, %d %B %Y, %I:%M %p", "%A, %d %B %Y, %H:%M", "%d %B %Y, %I:%M %p")


def read_times(path: str | Path) -> dict[str, datetime]:
    """Submission times the instructor exported: a CSV ``submission,submitted_at`` where
    ``submission`` is a row key (``ann/lab.ipynb``), a student id or an LMS id, and
    ``submitted_at`` an ISO time (UTC unless it has a zone). LMSFormatError names the line."""
    from flowlab.late import parse_time

    header, rows = _read_table(Path(path), "times")
    if [h.strip().lower() for h in header[:2]] != ["submission", "submitted_at"]:
        raise LMSFormatError(f"times {str(path)!r} needs the header submission,submitted_at; got {','.join(header)}")
    times = {}
    for number, row in enumerate(rows, start=2):
        try:
            times[row[0].strip()] = parse_time(row[1], f"line {number}: submitted_at")
        except (ValueError, IndexError) as error:
            raise LMSFormatError(f"times {str(path)!r}: {error}") from None
    return times


def moodle_times(worksheet: str | Path) -> dict[str, datetime]:
    """Participant id -> "Last modified (submission)" from Moodle's grading worksheet, where that
    column holds a time in Moodle's English format (read as UTC); rows it cannot read are skipped."""
    from datetime import timezone

    header, rows = _read_table(Path(worksheet), "Moodle worksheet")
    if "Identifier" not in header or "Last modified (submission)" not in header:
        return {}
    who, when = header.index("Identifier"), header.index("Last modified (submission)")
    times = {}
    for row in rows:
        for layout in _MOODLE_TIME_FORMATS:
            try:
                times[row[who].split()[-1]] = datetime.strptime(row[when].strip(), layout).replace(tzinfo=timezone.utc)
                break
            except (ValueError, IndexError):
                continue
    return times


def attach_times(submitted: Iterable[Submitted], times: Mapping[str, datetime]) -> None:
    """Give each submission its time from ``times``, looked up by row key, student id, then LMS id."""
    for item in submitted:
        for key in (item.key, item.student.student_id if item.student else "", item.lms_id):
            if key and key in times:
                item.submitted_at = times[key]
                break


# ---- gradebooks out --------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    """What an LMS needs of one graded submission."""

    student: Student
    lms_id: str
    points: float
    max_points: float
    feedback: str


def _read_table(path: Path, what: str) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            table = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LMSFormatError(f"{what} {str(path)!r} cannot be read ({error})") from None
    if not table:
        raise LMSFormatError(f"{what} {str(path)!r} is empty")
    return table[0], table[1:]


def _write_table(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


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


def fill_canvas(export: str | Path, results: Sequence[Result], out: str | Path,
                assignment: str | None = None) -> tuple[Path, list[str]]:
    """Fill an exported Canvas gradebook CSV (``Student, ID, SIS User ID, SIS Login ID, Section``,
    then one column per assignment, ``Name (id)``, and a ``Points Possible`` row) with each
    result's points, scaled to the column's points possible; keep every other row and column
    as exported. Students are matched by Canvas ID (from the download), SIS User ID or SIS Login
    ID (the roster's student_id or email). Returns the file written and the roster students
    not found in the export."""
    header, rows = _read_table(Path(export), "Canvas export")
    needed = ["Student", "ID", "SIS User ID", "SIS Login ID"]
    if header[:2] != needed[:2] or not set(needed) <= set(header):
        raise LMSFormatError(f"{str(export)!r} is not a Canvas gradebook export: its header starts "
                             f"{header[:5]}, expected {needed + ['Section']}")
    column = _canvas_column(header, assignment)
    index = {name: header.index(name) for name in needed}
    possible = next((float(r[column]) for r in rows if r and r[0].strip() == "Points Possible"
                     and _is_number(r[column])), None)
    not_found = []
    for result in results:
        keys = {result.lms_id, result.student.student_id, result.student.email} - {""}
        row = next((r for r in rows if r and r[0].strip() != "Points Possible" and
                    {r[index["ID"]], r[index["SIS User ID"]], r[index["SIS Login ID"]]} & keys), None)
        if row is None:
            not_found.append(_who(result))
            continue
        scale = possible / result.max_points if possible and result.max_points else 1.0
        row[column] = f"{result.points * scale:g}"
    return _write_table(Path(out), header, rows), not_found


def _who(result: Result) -> str:
    """'Ann Lee (12345)': how a student is named in messages."""
    ids = result.student.student_id or result.lms_id or "no id"
    return f"{result.student.name} ({ids})" if result.student.name else ids


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def fill_moodle(worksheet: str | Path, results: Sequence[Result], out: str | Path) -> tuple[Path, list[str]]:
    """Fill Moodle's offline grading worksheet (``Identifier, Full name, Email address, Status,
    Grade, Maximum Grade, ..., Feedback comments``): each result's grade, scaled to the row's
    Maximum Grade, and its feedback; other rows and columns are kept. Students are matched by
    participant id (``Participant 123``, from the download) or email. Returns the file written and
    the students not found in the worksheet."""
    header, rows = _read_table(Path(worksheet), "Moodle worksheet")
    needed = ["Identifier", "Full name", "Email address", "Grade", "Maximum Grade"]
    if not set(needed) <= set(header):
        raise LMSFormatError(f"{str(worksheet)!r} is not a Moodle grading worksheet: it lacks "
                             f"{', '.join(n for n in needed if n not in header)}")
    if "Feedback comments" not in header:
        header.append("Feedback comments")
        rows = [row + [""] for row in rows]
    index = {name: header.index(name) for name in [*needed, "Feedback comments"]}
    not_found = []
    for result in results:
        row = next((r for r in rows if (result.lms_id and r[index["Identifier"]].split()[-1:] == [result.lms_id])
                    or (result.student.email and r[index["Email address"]].casefold() == result.student.email.casefold())),
                   None)
        if row is None:
            not_found.append(_who(result))
            continue
        maximum = row[index["Maximum Grade"]]
        scale = float(maximum) / result.max_points if _is_number(maximum) and result.max_points else 1.0
        row[index["Grade"]] = f"{result.points * scale:.2f}"
        row[index["Feedback comments"]] = result.feedback
    return _write_table(Path(out), header, rows), not_found


def results_by_student(submitted: Sequence[Submitted], grades: Mapping[str, object]) -> list[Result]:
    """One :class:`Result` per graded submission that has a student (the roster's or the LMS's)."""
    results = []
    for item in submitted:
        grade = grades.get(item.key)
        if grade is None:
            continue
        student = item.student or Student(name=item.name)
        failed = [name for name, message in grade.results.items() if message is not None]  # type: ignore[attr-defined]
        feedback = (f"{grade.final:g}/{grade.max_points:g} points ({grade.status})"  # type: ignore[attr-defined]
                    + (f"; not passed: {', '.join(failed)}" if failed else "; every check passed")
                    + (f"; {grade.late_note}" if grade.late_note else ""))  # type: ignore[attr-defined]
        results.append(Result(student, item.lms_id, grade.final, grade.max_points, feedback))  # type: ignore[attr-defined]
    return results

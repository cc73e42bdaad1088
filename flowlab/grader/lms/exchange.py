"""The instructor's world around ``flowlab grade``: LMS downloads in, a roster, LMS gradebooks out.

In (the names each LMS writes, from its own source):

- **Canvas** "Download submissions" (``lib/content_zipper.rb`` in instructure/canvas-lms) names
  each file ``<sortable name>[_LATE]_<user id>_<attachment id>_<original name>``: the sortable
  name lower-cased with every non-word character removed (letters of any script stay:
  ``obriensiobhán``); with anonymous grading ``[LATE_]anon_<anonymous id>_...`` and no name. A
  resubmitted file gets ``-1``, ``-2`` before its extension; the newest of each student is graded
  and the others listed as superseded.
- **Moodle** (``mod/assign/classes/downloader.php`` in moodle/moodle) puts each participant's files
  in a folder ``<Full Name>_<participant id>_assignsubmission_file/`` (the default since Moodle
  3.1), or with "download as folders" off prefixes each file with ``..._assignsubmission_file_``;
  blind marking writes ``Participant`` for the name.
- Anything else (plain folders, a zip of folders) is graded by path.

**Every file is accounted for**: each file of a download is graded, superseded by a newer
resubmission, or listed (:class:`Skipped`) with why it was not graded: not a notebook, a macOS or
Jupyter by-product, or a name that points outside the download (``../``, absolute).

A zip is read without extracting its names: notebook members are read into a temporary folder
under names this module makes, with bounded member count, member size and total size (zip bombs
stop with a clear error).

Rows are keyed by the student when the LMS names them: ``<name>_<id>/<file>`` (the
resubmission number dropped), the same key whether the class is graded from the zip, from its
unpacked folder or one file of it, so a regrade replaces the student's row.

A **roster** (CSV: ``student_id``, ``name``, ``email``, optional ``pattern``) gives each
submission its student: by LMS id, then by the pattern (a glob on the path), then by name
(Unicode-normalised, accents and punctuation ignored, either word order).

Out: a Canvas gradebook export filled in (:func:`fill_canvas`) and Moodle's offline grading
worksheet filled in (:func:`fill_moodle`), each written beside ``grades.csv`` in the export's own
CSV dialect.
"""

from __future__ import annotations

import fnmatch
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path, PurePosixPath, PureWindowsPath

from flowlab.grader.late import parse_time
from flowlab.grader.lms.tables import LMSFormatError, Table, read_csv_records, read_table, write_table

__all__ = ["Student", "Submitted", "Skipped", "Collected", "Roster", "MAX_MEMBERS", "MAX_MEMBER_BYTES",
           "MAX_TOTAL_BYTES", "collect", "read_roster", "match_roster", "fill_canvas", "fill_moodle",
           "check_gradebook", "read_times", "moodle_times", "attach_times", "read_csv_records",
           "results_from_rows", "LMSFormatError"]

#: Bounds on what one zip may hold (a class's notebooks are far smaller).
MAX_MEMBERS = 20_000
MAX_MEMBER_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 4 * 2**30

_CANVAS = re.compile(r"^(?:(?P<name>\w+?)_)??(?:(?P<late>LATE)_)?(?P<id>anon_[^\W_]+|\d+)_(?P<submission>\d+)_"
                     r"(?P<file>.+)$", re.IGNORECASE)
_RESUBMISSION = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)(?P<suffix>\.ipynb)$", re.IGNORECASE)
_MOODLE_FOLDER = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?$")
_MOODLE_FILE = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_(?P<plugin>file|onlinetext)_(?P<file>.+)$")
_SAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class Student:
    """A student as the roster or the LMS knows them (empty strings where unknown)."""

    student_id: str = ""
    name: str = ""
    email: str = ""
    pattern: str = ""


@dataclass(frozen=True)
class Identity:
    """Who the LMS says handed a file in, read from its name in the download."""

    lms: str = ""  # "canvas", "moodle" or ""
    lms_id: str = ""  # Canvas user id or anon_ id, Moodle participant id
    name: str = ""  # the name in the LMS's file name
    late: bool = False  # as the LMS marked it (Canvas)
    original: str = ""  # the file's own name, without the LMS's prefix

    @property
    def folder(self) -> str:
        """The row key's folder for this student: ``obriensiobhán_1002``, ``Participant_284712``."""
        return _safe(f"{self.name}_{self.lms_id}" if self.name else self.lms_id)


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
    source: str = ""  # its name in the download (or its path as given)


@dataclass(frozen=True)
class Skipped:
    """A file of the download that is not graded, and why."""

    source: str  # its name in the download
    reason: str
    lms_id: str = ""
    name: str = ""


@dataclass
class Collected:
    """What :func:`collect` found: files to grade, files not graded, the folder keys are below."""

    submitted: list[Submitted]
    root: Path | None
    notes: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    _temporary: tempfile.TemporaryDirectory | None = None

    def keyed(self, root: Path) -> None:
        """Key each submission still without a key by its path below ``root``."""
        self.root = root
        for item in self.submitted:
            if not item.key:
                item.key = (item.path.relative_to(root).as_posix() if item.path.is_relative_to(root)
                            else item.path.name)

    def cleanup(self) -> None:
        """Remove the temporary folder a zip was read into."""
        if self._temporary is not None:
            self._temporary.cleanup()


def _safe(part: str) -> str:
    """A file or folder name made only of letters (any script), digits, '.', '_' and '-' (never
    '.' or '..'), in Unicode's composed form.

    Example:
        >>> _safe("../Ann Lee/x.ipynb"), _safe("obriensiobhán_1002")
        ('.._Ann_Lee_x.ipynb', 'obriensiobhán_1002')
    """
    cleaned = _SAFE.sub("_", unicodedata.normalize("NFC", part)).strip("_") or "file"
    return "file" if set(cleaned) <= {"."} else cleaned


def identify(name: str) -> Identity:
    """Who handed in the file ``name`` (its path in a download), by the LMS's naming.

    Example:
        >>> identify("Ann Lee_284712_assignsubmission_file/lab.ipynb")
        Identity(lms='moodle', lms_id='284712', name='Ann Lee', late=False, original='lab.ipynb')
        >>> identify("LATE_anon_k2Ld9_9001_lab.ipynb")
        Identity(lms='canvas', lms_id='anon_k2Ld9', name='', late=True, original='lab.ipynb')
    """
    parts = PurePosixPath(name).parts or ("",)
    for number, part in enumerate(parts):
        folder = _MOODLE_FOLDER.match(part) if number < len(parts) - 1 else None
        flat = _MOODLE_FILE.match(part) if number == len(parts) - 1 else None
        if folder or flat:
            found = folder or flat
            return Identity("moodle", found["id"], found["name"], False, parts[-1] if folder else flat["file"])
    canvas = _CANVAS.match(unicodedata.normalize("NFC", parts[-1]))
    if canvas:
        return Identity("canvas", canvas["id"], canvas["name"] or "", bool(canvas["late"]), canvas["file"])
    return Identity(original=parts[-1])


def _resubmission(file_name: str) -> tuple[str, int]:
    """('lab.ipynb', 2) for 'lab-2.ipynb'; (file_name, 0) for a first submission."""
    match = _RESUBMISSION.match(file_name)
    return (match["stem"] + match["suffix"], int(match["n"])) if match else (file_name, 0)


def _not_gradable(name: str) -> str | None:
    """Why the download's file ``name`` is not graded, or None for a notebook to grade.

    Example:
        >>> _not_gradable("../../x.ipynb"), _not_gradable("Ann_1_2_lab.pdf")
        ('not graded: its name points outside the download (unsafe)', 'not graded: not a notebook (.pdf)')
    """
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in posix.parts or ".." in windows.parts:
        return "not graded: its name points outside the download (unsafe)"
    if "__MACOSX" in posix.parts or posix.name.startswith("._") or posix.name == ".DS_Store":
        return "ignored: macOS metadata, not a submission"
    if ".ipynb_checkpoints" in posix.parts:
        return "ignored: a Jupyter checkpoint copy, not the submission"
    if posix.suffix.lower() != ".ipynb":
        return f"not graded: not a notebook ({posix.suffix.lower() or 'no extension'})"
    return None


def _member_infos(archive: zipfile.ZipFile, label: str) -> list[zipfile.ZipInfo]:
    """The archive's file members, within :data:`MAX_MEMBERS`; the notebooks' total size bounded."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise LMSFormatError(f"{label} holds {len(infos):,} members, more than {MAX_MEMBERS:,}: not a class's "
                             "submissions")
    files = [info for info in infos if not info.is_dir()]
    total = sum(info.file_size for info in files if _not_gradable(info.filename) is None)
    if total > MAX_TOTAL_BYTES:
        raise LMSFormatError(f"{label}'s notebooks would unpack to {total / 2**30:.1f} GiB, more than "
                             f"{MAX_TOTAL_BYTES / 2**30:.0f} GiB")
    return files


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    """A member's bytes, never more than :data:`MAX_MEMBER_BYTES` whatever its header claims."""
    with archive.open(info) as handle:
        data = handle.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise LMSFormatError(f"{label}: {info.filename!r} unpacks to more than {MAX_MEMBER_BYTES / 2**20:.0f} MiB")
    return data


def _key(name: str, identity: Identity) -> str:
    """A file's row key: ``<student folder>/<file>`` when the LMS names the student (resubmission
    number dropped), else its own path, cleaned."""
    if identity.lms:
        return f"{identity.folder}/{_safe(_resubmission(identity.original)[0])}"
    return "/".join(_safe(part) for part in PurePosixPath(name).parts if part not in (".", "/"))


def _submitted(path: Path, name: str, identity: Identity) -> Submitted:
    return Submitted(path, _key(name, identity), identity.lms, identity.lms_id, identity.name, identity.late,
                     source=name)


def _from_zip(path: Path, folder: Path, skipped: list[Skipped]) -> list[Submitted]:
    label = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise LMSFormatError(f"{label} is not a readable zip file ({error})") from None
    found: list[Submitted] = []
    with archive:
        for number, info in enumerate(_member_infos(archive, label)):
            identity, reason = identify(info.filename), _not_gradable(info.filename)
            if reason is not None:
                skipped.append(Skipped(info.filename, reason, identity.lms_id, identity.name))
                continue
            target = folder / f"{number:05d}" / _safe(identity.original)
            target.parent.mkdir(parents=True)
            target.write_bytes(_read_member(archive, info, label))
            found.append(_submitted(target, info.filename, identity))
    return found


def _from_folder_or_file(path: Path, skipped: list[Skipped]) -> list[Submitted]:
    """The notebooks of a folder (or one file); other files listed in ``skipped``. Files the LMS
    did not name are keyed later, below the class folder (:meth:`Collected.keyed`)."""
    files = [(path, path.name)] if path.is_file() else \
        [(file, file.relative_to(path).as_posix()) for file in sorted(path.rglob("*")) if file.is_file()]
    found = []
    for file, name in files:
        identity, reason = identify(name), _not_gradable(name)
        if reason is not None:
            skipped.append(Skipped(name, reason, identity.lms_id, identity.name))
            continue
        item = _submitted(file.resolve(), name, identity)
        item.key = item.key if item.lms else ""
        found.append(item)
    return found


def _newest_per_student(submitted: list[Submitted], skipped: list[Skipped]) -> list[Submitted]:
    """Of a student's files of the same name in one LMS download, the highest resubmission only;
    the others are listed as superseded."""
    chosen: dict[tuple[str, str, str], tuple[int, Submitted]] = {}
    kept: list[Submitted] = []
    for item in submitted:
        if not item.lms:
            kept.append(item)
            continue
        base, number = _resubmission(identify(item.source).original)
        slot = (item.lms, item.lms_id, base)
        if slot in chosen:
            earlier_number, earlier = chosen[slot]
            newer, older = (item, earlier) if number > earlier_number else (earlier, item)
            skipped.append(Skipped(older.source, f"superseded: {newer.source} is a newer resubmission (graded)",
                                   older.lms_id, older.name))
            chosen[slot] = (max(number, earlier_number), newer)
        else:
            chosen[slot] = (number, item)
    return kept + [item for _, item in chosen.values()]


def collect(paths: Sequence[str | Path]) -> Collected:
    """The notebooks to grade from folders and files, or from one LMS zip (see the module
    docstring), and every other file listed with why it is not graded. :attr:`Collected.root` is
    the folder rows are keyed below when the input fixes one (the one folder given, the zip's
    temporary folder; else None: see :meth:`Collected.keyed`); LMS-named files have their keys.

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
    skipped: list[Skipped] = []
    if zips:
        temporary = tempfile.TemporaryDirectory(prefix="flowlab-lms-")
        try:
            root = Path(temporary.name).resolve()
            found = _newest_per_student(_from_zip(zips[0], root / "members", skipped), skipped)
            return Collected(_materialized_by_key(found, root / "class"), root / "class", [], skipped, temporary)
        except BaseException:
            temporary.cleanup()
            raise
    found = _newest_per_student([item for path in paths for item in _from_folder_or_file(path, skipped)], skipped)
    return Collected(found, paths[0].resolve() if len(paths) == 1 and paths[0].is_dir() else None, [], skipped)


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
    """Letters only, case and accents dropped (Unicode-normalised): 'O'Brien, Siobhán' -> 'obriensiobhan'.

    Example:
        >>> _letters("O'Brien, Siobhán") == _letters("obriensiobhán") == "obriensiobhan"
        True
    """
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if c.isalpha())


def _same_name(lms_name: str, full_name: str) -> bool:
    """Whether an LMS's name for a student (Canvas: 'lastnamefirstname', Moodle: the full name) is
    ``full_name`` ('First Last' or 'Last, First'): letters compared with the words in any rotation."""
    words = [w for w in re.split(r"[\s,]+", full_name) if w]
    candidates = {_letters("".join(words[i:] + words[:i])) for i in range(len(words))}
    candidates |= {_letters("".join(reversed(words)))}
    return bool(lms_name) and bool(_letters(lms_name)) and _letters(lms_name) in candidates


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


def handed_in_by(student: Student, skipped: Iterable[Skipped]) -> list[Skipped]:
    """The files of ``student`` that were not graded (a PDF, say): why they have no grade."""
    return [item for item in skipped if (item.lms_id and item.lms_id == student.student_id)
            or _same_name(item.name, student.name)]


# ---- submission times ----------------------------------------------------------------------

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


# ---- gradebooks out --------------------------------------------------------------------------

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
    named = [r for r in rows if name and (_same_name(name, " ".join(_cell(r, i) for i in layout.names))
                                          or _same_name(" ".join(_cell(r, i) for i in layout.names), name))]
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

"""LMS downloads in: the notebooks to grade from folders, files or one LMS zip (:func:`collect`), each
with who the LMS says handed it in, and every other file listed with why it is not graded.

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
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath, PureWindowsPath

from flowlab.grader.lms.tables import LMSFormatError

__all__ = ["Student", "Identity", "Submitted", "Skipped", "Collected", "MAX_MEMBERS", "MAX_MEMBER_BYTES",
           "MAX_TOTAL_BYTES", "identify", "collect"]

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

"""A realistic course as each LMS delivers it: the files and exports ``flowlab grade`` is given.

The names follow the LMSs' own source, not our reading of their manuals:

- Canvas, ``lib/content_zipper.rb`` (instructure/canvas-lms): ``get_filename`` joins the student's
  ``sortable_name`` (lower-cased by ``sanitize_user_name``), ``LATE`` for a late submission and
  the user id (``anon_<anonymous_id>`` with anonymous grading, and no name), then
  ``sanitize_file_name`` removes every non-word character (``[^[[:word:]]]``: letters of any
  script stay); ``add_upload_submission`` appends ``_<attachment id>_<display name>``. A file
  uploaded again under the same name is shown as ``lab-1.ipynb``.
- Canvas, ``lib/gradebook_exporter.rb``: the header is ``Student`` (or ``LastName``,
  ``FirstName`` with "show separate first and last names"), ``ID``, ``SIS User ID`` (only with
  SIS ids), ``SIS Login ID``, ``Section``, then one ``Title (id)`` column per assignment, and a
  ``    Points Possible`` row; ``CSVWithI18n`` writes the separator the user chose (``,`` or ``;``)
  and numbers in their locale.
- Moodle, ``mod/assign/classes/downloader.php`` (moodle/moodle): the prefix is the full name with
  ``_`` made spaces (``Participant`` under blind marking) and ``_<participant id>``; with
  "download as folders" (the default since 3.1) each file lies in
  ``<prefix>_assignsubmission_file/<file path>``, otherwise it is named
  ``<prefix>_assignsubmission_file_<file>``; online text is ``..._assignsubmission_onlinetext``.
- Moodle's offline grading worksheet, ``mod/assign/gradingtable.php`` and
  ``mod/assign/feedback/offline/importgradeslib.php``: ``Identifier`` is ``Participant <id>``,
  then ``Full name``, ``Email address``, ``Status``, ``Grade``, ``Maximum Grade``, ...,
  ``Last modified (submission)`` in the user's language and time zone, ``Feedback comments``.

Submissions hold ``SCORE=<n>`` instead of a notebook: the quick tests grade them with a stand-in
for the notebook runner (:func:`fake_grade_job`), so they test the LMS plumbing in milliseconds.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flowlab.grader.records import Grade, Job, Reference


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    canvas_id: int
    participant: int  # Moodle's participant id (assign's unique id for the user)
    sis: str
    email: str

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def sortable(self) -> str:
        return f"{self.last}, {self.first}"


CLASS = [
    Person("Ann", "Lee", 12345, 284712, "s-1", "ann@uni.edu"),
    Person("Siobhán", "O'Brien", 1002, 284713, "s-2", "siobhan@uni.edu"),
    Person("John", "Doe", 23456, 284714, "s-3", "john@uni.edu"),
    Person("Bo", "Smith", 34567, 284715, "s-4", "bo@uni.edu"),
    Person("Zoë", "Müller-Świątek", 45678, 284716, "s-5", "zoe@uni.edu"),
    Person("Cy", "Park", 56789, 284717, "s-6", "cy@uni.edu"),
    Person("Dana", "Ng", 67890, 284718, "s-7", "dana@uni.edu"),
]


_NOT_WORD = re.compile(r"[^\w]")  # sanitize_file_name: [^[[:word:]]]
_NOT_IN_NAMES = re.compile(r'[\x00/\\:*?"<>|]+')  # sanitize_attachment_filename


def canvas_name(person: Person | None, user_id: str, late: bool, attachment: int, display: str) -> str:
    """A file's name in Canvas's "Download submissions" zip (content_zipper.rb)."""
    name = person.sortable.lower() if person else None
    joined = "_".join(part for part in (name, "LATE" if late else None, user_id) if part is not None)
    return f"{re.sub(_NOT_WORD, '', joined)}_{attachment}_{re.sub(_NOT_IN_NAMES, '_', display)}"


def submission(score: int) -> bytes:
    return f"SCORE={score}".encode()


def canvas_download(path: Path, anonymous: bool = False) -> Path:
    """Seven students (checks passed of the mini lab's 4, worth 1, 1, 1, 2 points): Ann 4, Siobhán 3,
    John late with a resubmission (1 then 4), Bo a PDF only, Zoë 2, Cy 4 and a stray PDF, Dana 1;
    and the macOS by-product a Mac's zip adds."""
    ann, siobhan, john, bo, zoe, cy, dana = CLASS

    def name(person: Person, late: bool, attachment: int, display: str) -> str:
        user = f"anon_{'abcdefg'[CLASS.index(person)]}X{person.canvas_id % 97}" if anonymous else str(person.canvas_id)
        return canvas_name(None if anonymous else person, user, late, attachment, display)

    members = {
        name(ann, False, 900001, "lab.ipynb"): submission(4),
        name(siobhan, False, 900002, "lab.ipynb"): submission(3),
        name(john, True, 900003, "lab.ipynb"): submission(1),
        name(john, True, 900004, "lab-1.ipynb"): submission(4),
        name(bo, False, 900005, "lab.pdf"): b"%PDF-1.7",
        name(zoe, False, 900006, "my lab.ipynb"): submission(2),
        name(cy, False, 900007, "lab.ipynb"): submission(4),
        name(cy, False, 900008, "notes.pdf"): b"%PDF-1.7",
        name(dana, False, 900009, "lab.ipynb"): submission(1),
        f"__MACOSX/._{name(ann, False, 900001, 'lab.ipynb')}": b"resource fork",
    }
    return write_zip(path, members)


def canvas_export(path: Path, separator: str = ",", split_names: bool = False, decimal_comma: bool = False) -> Path:
    """Canvas's gradebook export of the class (gradebook_exporter.rb), two assignments."""
    names = ["LastName", "FirstName"] if split_names else ["Student"]
    header = [*names, "ID", "SIS User ID", "SIS Login ID", "Section", "Normalizing flows lab (4711)", "Quiz 1 (4712)",
              "Current Score", "Final Score"]
    possible = "36,00" if decimal_comma else "36.00"
    rows = [["    Points Possible", *[""] * len(names), "", "", "", possible, "10", "(read only)", "(read only)"]]
    rows[0] = rows[0][:len(header)]
    for person in CLASS:
        who = [person.last, person.first] if split_names else [person.sortable]
        rows.append([*who, str(person.canvas_id), person.sis, person.email, "Section A", "", "7", "70", "70"])
    return write_csv(path, [header, *rows], separator)


def moodle_download(path: Path, folders: bool = True, blind: bool = False) -> Path:
    """Six participants' files as Moodle zips them (downloader.php), checks passed: Ann 4, Siobhán 3
    (in a subfolder of her upload), John 1, Bo a PDF, Zoë 2 and an online text, Cy 4."""
    ann, siobhan, john, bo, zoe, cy, _ = CLASS
    files = [(ann, "file", "/", "lab.ipynb", submission(4)), (siobhan, "file", "/work/", "lab.ipynb", submission(3)),
             (john, "file", "/", "lab.ipynb", submission(1)), (bo, "file", "/", "lab.pdf", b"%PDF-1.7"),
             (zoe, "file", "/", "lab.ipynb", submission(2)), (zoe, "onlinetext", "/", "onlinetext.html", b"<p>hi</p>"),
             (cy, "file", "/", "lab.ipynb", submission(4))]
    members = {}
    for person, plugin, folder, file, data in files:
        prefix = ("Participant" if blind else person.full.replace("_", " ")) + f"_{person.participant}"
        members[f"{prefix}_assignsubmission_{plugin}{folder}{file}" if folders
                else f"{prefix}_assignsubmission_{plugin}_{file}"] = data
    return write_zip(path, members)


def moodle_worksheet(path: Path, times: dict[int, str] | None = None) -> Path:
    """Moodle's offline grading worksheet for the class (gradingtable.php's columns)."""
    header = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
              "Last modified (submission)", "Last modified (grade)", "Feedback comments"]
    rows = [[f"Participant {p.participant}", p.full, p.email, "Submitted for grading", "", "100.00", "Yes",
             (times or {}).get(p.participant, "-"), "-", ""] for p in CLASS]
    return write_csv(path, [header, *rows], ",")


def roster(path: Path) -> Path:
    rows = [["student_id", "name", "email"], *([str(p.canvas_id), p.full, p.email] for p in CLASS)]
    return write_csv(path, rows, ",")


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def write_csv(path: Path, rows: list[list[str]], separator: str) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=separator).writerows(rows)
    return path


def fake_grade_job(job: Job, progress: Callable[[str], None] | None = None) -> Grade:
    """Stands in for the notebook runner (the signature of :func:`flowlab.grader.grade.grade_job`): ``SCORE=n``
    passes the reference's first n checks; ``progress`` hears that it ran."""
    if progress is not None:
        progress("graded by the stand-in")
    reference = Reference.from_text(job.reference_text)
    found = re.fullmatch(rb"SCORE=(\d+)", job.content.strip())
    passed = int(found[1]) if found else 0
    results = {name: None if number < passed else "not passed" for number, name in enumerate(reference.cells)}
    return Grade(job.submission, "graded" if found else "unreadable", results, dict(reference.points_possible))

"""LMS downloads in (Canvas and Moodle zips, read safely), a roster, LMS gradebooks out (a Canvas
export and Moodle's worksheet filled in). Submissions that are not notebooks grade in
milliseconds, so the command-line tests are quick; one slow test grades real notebooks."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest

from flowlab import cli
from flowlab.grader.lms import exchange as lms
from flowlab.grader.lms import intake

MINI = Path(__file__).resolve().parent / "data" / "mini_lab.ipynb"
NOT_A_NOTEBOOK = b"my answers are in the PDF"


@pytest.fixture
def reference(mini_reference) -> Path:
    return mini_reference


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _canvas_zip(path: Path, honest: bytes = NOT_A_NOTEBOOK) -> Path:
    return _zip(path, {
        "leeann_12345_900001_lab.ipynb": honest,
        "doejohn_late_23456_900002_lab.ipynb": b"first try",
        "doejohn_late_23456_900003_lab-1.ipynb": NOT_A_NOTEBOOK,  # resubmitted: this one counts
        "smithbo_34567_900004_my lab.ipynb": NOT_A_NOTEBOOK,
        "../../escaped.ipynb": NOT_A_NOTEBOOK,  # a hostile member name
        "__MACOSX/._leeann_12345_900001_lab.ipynb": b"resource fork",
        "leeann_12345_900001_notes.pdf": b"%PDF",
    })


ROSTER = "student_id,name,email,pattern\n12345,Ann Lee,ann@uni.edu,\n23456,John Doe,john@uni.edu,\n" \
         "s-99,Bo Smith,bo@uni.edu,*smithbo*\ns-100,Cy Absent,cy@uni.edu,\n"


def test_canvas_zip_is_read_by_student_without_writing_outside(tmp_path):
    collected = lms.collect([_canvas_zip(tmp_path / "submissions.zip")])
    try:
        by_key = {item.key: item for item in collected.submitted}
        assert sorted(by_key) == ["doejohn_23456/lab.ipynb", "leeann_12345/lab.ipynb", "smithbo_34567/my_lab.ipynb"]
        assert by_key["doejohn_23456/lab.ipynb"].late and not by_key["leeann_12345/lab.ipynb"].late
        assert by_key["leeann_12345/lab.ipynb"].lms_id == "12345"
        assert by_key["doejohn_23456/lab.ipynb"].path.read_bytes() == NOT_A_NOTEBOOK  # the resubmission
        skipped = {item.source: item.reason for item in collected.skipped}
        assert skipped["../../escaped.ipynb"] == "not graded: its name points outside the download (unsafe)"
        assert skipped["leeann_12345_900001_notes.pdf"] == "not graded: not a notebook (.pdf)"
        assert skipped["doejohn_late_23456_900002_lab.ipynb"].startswith("superseded: doejohn_late_23456_900003")
        for item in collected.submitted:
            assert item.path.is_relative_to(collected.root)
        assert not (tmp_path / "escaped.ipynb").exists() and not (tmp_path.parent / "escaped.ipynb").exists()
    finally:
        collected.cleanup()
    assert not collected.root.exists()


def test_moodle_folders_and_prefixes(tmp_path):
    collected = lms.collect([_zip(tmp_path / "moodle.zip", {
        "Ann Lee_101_assignsubmission_file_/lab.ipynb": NOT_A_NOTEBOOK,
        "John Doe_102_assignsubmission_file_lab.ipynb": NOT_A_NOTEBOOK})])
    try:
        found = sorted((item.key, item.lms, item.lms_id, item.name) for item in collected.submitted)
        assert found == [("Ann_Lee_101/lab.ipynb", "moodle", "101", "Ann Lee"),
                         ("John_Doe_102/lab.ipynb", "moodle", "102", "John Doe")]
    finally:
        collected.cleanup()


@pytest.mark.parametrize("limit, value, message", [
    ("MAX_MEMBER_BYTES", 10, "unpacks to more than"),
    ("MAX_MEMBERS", 3, "holds 7 members, more than 3"),
    ("MAX_TOTAL_BYTES", 50, "would unpack to"),
])
def test_zip_bombs_and_floods_stop_with_a_clear_error(tmp_path, monkeypatch, limit, value, message):
    monkeypatch.setattr(intake, limit, value)  # the zip reader's own bounds (flowlab.lms re-exports them)
    with pytest.raises(lms.LMSFormatError, match=message):
        lms.collect([_canvas_zip(tmp_path / "submissions.zip")])


def test_a_zip_goes_alone_and_must_be_a_zip(tmp_path):
    (tmp_path / "fake.zip").write_text("no")
    with pytest.raises(lms.LMSFormatError, match="is not a readable zip file"):
        lms.collect([tmp_path / "fake.zip"])
    with pytest.raises(lms.LMSFormatError, match="one LMS download"):
        lms.collect([_canvas_zip(tmp_path / "a.zip"), tmp_path])


def test_roster_matches_by_lms_id_pattern_and_name_and_lists_the_rest(tmp_path):
    (tmp_path / "roster.csv").write_text(ROSTER.replace("12345,Ann Lee", "s-1,Ann Lee"))
    roster = lms.read_roster(tmp_path / "roster.csv")
    collected = lms.collect([_canvas_zip(tmp_path / "submissions.zip")])
    try:
        unmatched, absent = lms.match_roster(collected.submitted, roster)
        ids = {item.key: item.student.student_id for item in collected.submitted if item.student}
    finally:
        collected.cleanup()
    assert ids == {"leeann_12345/lab.ipynb": "s-1",  # by name: Canvas's 'leeann' is Ann Lee
                   "doejohn_23456/lab.ipynb": "23456",  # by Canvas id
                   "smithbo_34567/my_lab.ipynb": "s-99"}  # by pattern
    assert unmatched == []  # the hostile member is not graded at all (test_canvas_zip_is_read_...)
    assert [student.name for student in absent] == ["Cy Absent"]


@pytest.mark.parametrize("text, message", [
    ("id,name\n1,Ann\n", "needs a header with student_id and name"),
    ("student_id,name\n1,Ann\n1,Bo\n", "repeated: 1"),
    ("student_id,name\n", "missing: rows"),
])
def test_bad_rosters_are_refused_with_the_reason(tmp_path, text, message):
    (tmp_path / "roster.csv").write_text(text)
    with pytest.raises(lms.LMSFormatError, match=message):
        lms.read_roster(tmp_path / "roster.csv")


CANVAS_EXPORT = (
    "Student,ID,SIS User ID,SIS Login ID,Section,Normalizing flows lab (4711),Quiz 1 (4712)\n"
    "    Points Possible,,,,,36,10\n"
    "\"Lee, Ann\",12345,s-1,ann@uni.edu,A,,9\n"
    "\"Doe, John\",23456,s-2,john@uni.edu,A,,7\n"
    "\"Smith, Bo\",34567,s-99,bo@uni.edu,B,,8\n")
MOODLE_WORKSHEET = (
    "Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,"
    "Last modified (submission),Last modified (grade),Feedback comments\n"
    "Participant 101,Ann Lee,ann@uni.edu,Submitted,,100.00,Yes,,,\n"
    "Participant 102,John Doe,john@uni.edu,Submitted,,100.00,Yes,,,\n")


def _result(student_id: str, lms_id: str, points: float, email: str = "") -> lms.Result:
    return lms.Result(lms.Student(student_id, "x", email), lms_id, points, 18.0, f"{points:g}/18 points")


def test_canvas_export_is_filled_in_scaled_keeping_everything_else(tmp_path):
    (tmp_path / "export.csv").write_text(CANVAS_EXPORT)
    out, not_found = lms.fill_canvas(tmp_path / "export.csv", [
        _result("", "12345", 18), _result("s-99", "", 9), _result("s-404", "999", 1)], tmp_path / "canvas.csv",
        assignment="flows")
    rows = list(csv.reader(out.open()))
    assert rows[0] == next(csv.reader([CANVAS_EXPORT.splitlines()[0]]))
    assert [row[5] for row in rows[1:]] == ["36", "36", "", "18"]  # 18/18 -> 36; 9/18 -> 18
    assert [row[6] for row in rows[1:]] == ["10", "9", "7", "8"]  # other assignments untouched
    assert not_found == ["x (s-404)"]


def test_canvas_export_with_several_assignments_needs_one_named(tmp_path):
    (tmp_path / "export.csv").write_text(CANVAS_EXPORT)
    with pytest.raises(lms.LMSFormatError, match="exactly one assignment column matching 'quiz 2'; found none"):
        lms.fill_canvas(tmp_path / "export.csv", [], tmp_path / "o.csv", assignment="quiz 2")
    (tmp_path / "notcanvas.csv").write_text("Name,Score\nAnn,1\n")
    with pytest.raises(lms.LMSFormatError, match="is not a Canvas gradebook export"):
        lms.fill_canvas(tmp_path / "notcanvas.csv", [], tmp_path / "o.csv")


def test_moodle_worksheet_is_filled_in_with_grade_and_feedback(tmp_path):
    (tmp_path / "worksheet.csv").write_text(MOODLE_WORKSHEET)
    out, not_found = lms.fill_moodle(tmp_path / "worksheet.csv", [
        _result("", "102", 9), _result("s-1", "", 18, email="ANN@uni.edu")], tmp_path / "moodle.csv")
    rows = list(csv.DictReader(out.open()))
    assert [(r["Identifier"], r["Grade"], r["Feedback comments"]) for r in rows] == [
        ("Participant 101", "100.00", "18/18 points"), ("Participant 102", "50.00", "9/18 points")]
    assert not_found == []


def test_grade_command_from_a_canvas_zip_with_roster_into_canvas(tmp_path, reference, capsys):
    (tmp_path / "roster.csv").write_text(ROSTER)
    (tmp_path / "export.csv").write_text(CANVAS_EXPORT)
    download = _canvas_zip(tmp_path / "submissions.zip")
    out = tmp_path / "grades"
    arguments = ["grade", str(download), "--reference", str(reference), "--out", str(out), "--workers", "1",
                 "--roster", str(tmp_path / "roster.csv"), "--format", "canvas", "--gradebook",
                 str(tmp_path / "export.csv"), "--assignment", "flows"]
    assert cli.main(arguments) == 0
    printed = capsys.readouterr().out
    assert "../../escaped.ipynb: not graded: its name points outside" in printed
    assert "no notebook from Cy Absent (s-100)" in printed
    with (out / "grades.csv").open() as handle:
        ids = {row["submission"]: row["student_id"] for row in csv.DictReader(handle)}
    assert ids == {"doejohn_23456/lab.ipynb": "23456", "leeann_12345/lab.ipynb": "12345",
                   "smithbo_34567/my_lab.ipynb": "s-99"}
    filled = list(csv.reader((out / "canvas_grades.csv").open()))
    assert [row[5] for row in filled[2:]] == ["0", "0", "0"]  # graded (unreadable: 0 points), scaled
    assert cli.main(arguments) == 0  # the same download again: nothing regraded, export still filled
    assert "skipped 3 notebooks graded before" in capsys.readouterr().out
    assert (out / "canvas_grades.csv").is_file()


def test_grade_command_refuses_bad_lms_arguments_naming_them(tmp_path, reference, capsys):
    download = _canvas_zip(tmp_path / "submissions.zip")
    base = ["grade", str(download), "--reference", str(reference), "--out", str(tmp_path / "out")]
    assert cli.main([*base, "--format", "moodle"]) == 2
    assert "argument --gradebook: --format moodle fills in the gradebook you exported from Moodle" \
        in capsys.readouterr().err
    (tmp_path / "roster.csv").write_text("id,name\n1,Ann\n")
    assert cli.main([*base, "--roster", str(tmp_path / "roster.csv")]) == 2
    assert "error: argument --roster: roster" in capsys.readouterr().err
    assert cli.main(["grade", str(_zip(tmp_path / "empty.zip", {"a.pdf": b"%PDF"})), "--reference",
                     str(reference)]) == 2
    assert "argument submissions: no .ipynb files found in" in capsys.readouterr().err
    (tmp_path / "export.csv").write_text("Name,Score\nAnn,1\n")
    assert cli.main([*base, "--format", "canvas", "--gradebook", str(tmp_path / "export.csv")]) == 2
    assert "argument --gradebook: " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # checked before any notebook ran


@pytest.mark.slow
def test_a_canvas_class_with_real_notebooks(tmp_path, reference, capsys):
    honest = MINI.read_bytes()
    download = _canvas_zip(tmp_path / "submissions.zip", honest=honest)
    (tmp_path / "worksheet.csv").write_text(MOODLE_WORKSHEET)
    (tmp_path / "export.csv").write_text(CANVAS_EXPORT)
    out = tmp_path / "grades"
    assert cli.main(["grade", str(download), "--reference", str(reference), "--out", str(out), "--workers", "2",
                     "--format", "canvas", "--gradebook", str(tmp_path / "export.csv"),
                     "--assignment", "flows"]) == 0
    filled = list(csv.reader((out / "canvas_grades.csv").open()))
    assert filled[2][5] == "36"  # Ann's honest notebook: 5/5 points, scaled to the 36 possible
    assert "leeann_12345/lab.ipynb: graded, 5/5 points" in capsys.readouterr().out

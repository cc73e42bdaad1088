"""A class graded as the LMSs deliver it (tests/lms_course.py builds it from the LMSs' own source):
every file accounted for, every graded student's grade in the export, regrades that lose nothing,
bad inputs refused before any notebook runs. The notebook runner is stood in for
(``SCORE=n`` passes n checks), so these test the plumbing in milliseconds; test_lms.py's slow test
grades real notebooks."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

import lms_course as course
from flowlab import cli
from flowlab.grader import grade as grade_module


@pytest.fixture(autouse=True)
def fake_runner(monkeypatch):
    monkeypatch.setattr(grade_module, "grade_job", course.fake_grade_job)


def _grade(tmp_path: Path, reference: Path, *inputs: str, out: str = "grades") -> list[str]:
    return ["grade", *inputs, "--reference", str(reference), "--out", str(tmp_path / out), "--workers", "2"]


def _column(path: Path, name: str, key: str = "ID", separator: str = ",") -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter=separator))
    return {row[key]: row[name] for row in rows if row[key]}


LAB = "Normalizing flows lab (4711)"


def test_canvas_class_every_grade_filled_every_file_accounted(tmp_path, mini_reference, capsys):
    download = course.canvas_download(tmp_path / "course-lab submissions.zip")
    export = course.canvas_export(tmp_path / "export.csv")
    code = cli.main([*_grade(tmp_path, mini_reference, str(download)), "--format", "canvas",
                     "--gradebook", str(export), "--assignment", "flows"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    filled = _column(tmp_path / "grades" / "canvas_grades.csv", LAB)
    # 36 points possible: Ann 5/5, Siobhán 3/5 (Unicode name), John's resubmission 5/5, Zoë 2/5, Cy 5/5, Dana 1/5;
    # Bo handed in only a PDF: no grade, and said so
    assert filled == {"12345": "36", "1002": "21.6", "23456": "36", "34567": "", "45678": "14.4", "56789": "36",
                      "67890": "7.2"}
    assert "10 files in the input: 6 graded now, 0 graded before, 4 not graded" in printed
    report = (tmp_path / "grades" / "grades.md").read_text()
    for line in ["smithbo_34567_900005_lab.pdf: not graded: not a notebook (.pdf)",
                 "parkcy_56789_900008_notes.pdf: not graded: not a notebook (.pdf)",
                 "doejohn_LATE_23456_900003_lab.ipynb: superseded: doejohn_LATE_23456_900004_lab-1.ipynb",
                 "__MACOSX/._leeann_12345_900001_lab.ipynb: ignored: macOS metadata"]:
        assert line in report and line in printed
    assert "obriensiobhán_1002_900002_lab.ipynb: graded as obriensiobhán_1002/lab.ipynb" in report


def test_a_roster_names_the_student_whose_only_file_is_not_a_notebook(tmp_path, mini_reference, capsys):
    download = course.canvas_download(tmp_path / "submissions.zip")
    assert cli.main([*_grade(tmp_path, mini_reference, str(download)), "--roster",
                     str(course.roster(tmp_path / "roster.csv"))]) == 0
    printed = capsys.readouterr().out
    assert "no notebook from Bo Smith (34567): handed in smithbo_34567_900005_lab.pdf (not graded: not a notebook" \
        in printed
    assert "no submission from Siobhán" not in printed and "not on the roster" not in printed


def test_anonymous_canvas_names_are_graded_and_unplaceable_ones_fail_the_run(tmp_path, mini_reference, capsys):
    download = course.canvas_download(tmp_path / "submissions.zip", anonymous=True)
    export = course.canvas_export(tmp_path / "export.csv")
    code = cli.main([*_grade(tmp_path, mini_reference, str(download)), "--format", "canvas",
                     "--gradebook", str(export), "--assignment", "flows"])
    captured = capsys.readouterr()
    assert code == 1
    assert "anon_aX26/lab.ipynb: graded, 5/5 points" in captured.out
    assert "error: 6 graded students are not in" in captured.err and "anon_aX26, anon_aX26/lab.ipynb" in captured.err
    rows = json.loads((tmp_path / "grades" / "grades.json").read_text())["rows"]
    assert rows["anon_cX79/lab.ipynb"]["late_note"].startswith("1 day late (marked late by the LMS")


def test_moodle_folders_flat_and_blind_fill_the_worksheet(tmp_path, mini_reference, capsys):
    worksheet = course.moodle_worksheet(tmp_path / "worksheet.csv")
    expected = {"Participant 284712": "100.00", "Participant 284713": "60.00", "Participant 284714": "20.00",
                "Participant 284715": "", "Participant 284716": "40.00", "Participant 284717": "100.00",
                "Participant 284718": ""}
    for number, layout in enumerate([dict(), dict(folders=False), dict(blind=True)]):
        download = course.moodle_download(tmp_path / f"moodle{number}.zip", **layout)
        out = f"grades{number}"
        code = cli.main([*_grade(tmp_path, mini_reference, str(download), out=out), "--format", "moodle",
                         "--gradebook", str(worksheet)])
        printed = capsys.readouterr().out
        assert code == 0, (layout, printed)
        assert _column(tmp_path / out / "moodle_grades.csv", "Grade", key="Identifier") == expected, layout
        assert "5 of 5 graded students" in printed and "onlinetext.html: not graded: not a notebook (.html)" in printed


def _canvas_class(tmp_path: Path, reference: Path) -> tuple[list[str], Path]:
    download = course.canvas_download(tmp_path / "submissions.zip")
    export = course.canvas_export(tmp_path / "export.csv")
    lms = ["--format", "canvas", "--gradebook", str(export), "--assignment", "flows"]
    assert cli.main([*_grade(tmp_path, reference, str(download)), *lms]) == 0
    return lms, download


def _rows_of(tmp_path: Path, student: str) -> list[tuple[str, int]]:
    rows = json.loads((tmp_path / "grades" / "grades.json").read_text())["rows"].values()
    return [(row["submission"], sum(message is None for message in row["results"].values()))
            for row in rows if student in (row["student_id"], row["lms_id"])]


def test_regrading_one_student_of_a_zip_graded_class_keeps_every_grade(tmp_path, mini_reference, capsys):
    lms, download = _canvas_class(tmp_path, mini_reference)
    before = _column(tmp_path / "grades" / "canvas_grades.csv", LAB)
    # the instructor takes Dana's file out of the download and grades her fixed notebook alone
    with zipfile.ZipFile(download) as archive:
        name = next(n for n in archive.namelist() if n.startswith("ngdana_"))
    fixed = tmp_path / "regrade" / name
    fixed.parent.mkdir()
    fixed.write_bytes(course.submission(3))
    capsys.readouterr()
    assert cli.main([*_grade(tmp_path, mini_reference, str(fixed)), *lms]) == 0
    after = _column(tmp_path / "grades" / "canvas_grades.csv", LAB)
    assert after == {**before, "67890": "21.6"}  # Dana 1/5 -> 3/5, everyone else kept
    assert _rows_of(tmp_path, "67890") == [("ngdana_67890/lab.ipynb", 3)]


def test_regrading_from_a_fresh_download_leaves_one_row_per_student(tmp_path, mini_reference, capsys):
    lms, download = _canvas_class(tmp_path, mini_reference)
    fresh = tmp_path / "fresh" / "submissions (1).zip"
    fresh.parent.mkdir()
    with zipfile.ZipFile(download) as old, zipfile.ZipFile(fresh, "w") as new:
        for info in old.infolist():
            new.writestr(info, old.read(info))
        new.writestr("ngdana_LATE_67890_900010_lab-1.ipynb", course.submission(4))  # Dana resubmitted, late
    capsys.readouterr()
    assert cli.main([*_grade(tmp_path, mini_reference, str(fresh)), *lms]) == 0
    printed = capsys.readouterr().out
    assert "skipped" not in printed.lower() or "graded before" in printed
    assert "warning" not in printed  # the same download, fetched again
    assert _rows_of(tmp_path, "67890") == [("ngdana_67890/lab.ipynb", 4)]
    assert _column(tmp_path / "grades" / "canvas_grades.csv", LAB)["67890"] == "36"
    assert all(value for key, value in _column(tmp_path / "grades" / "canvas_grades.csv", LAB).items()
               if key != "34567")


def test_a_file_of_any_name_regrades_the_student_named_with_student(tmp_path, mini_reference, capsys):
    lms, _ = _canvas_class(tmp_path, mini_reference)
    emailed = tmp_path / "dana_fixed.ipynb"
    emailed.write_bytes(course.submission(2))
    capsys.readouterr()
    assert cli.main([*_grade(tmp_path, mini_reference, str(emailed)), *lms, "--student", "67890"]) == 0
    assert _rows_of(tmp_path, "67890") == [("ngdana_67890/lab.ipynb", 2)]
    assert _column(tmp_path / "grades" / "canvas_grades.csv", LAB)["67890"] == "14.4"


def test_another_assignments_download_into_the_same_out_is_warned_about(tmp_path, mini_reference, capsys):
    _canvas_class(tmp_path, mini_reference)
    other = course.canvas_download(tmp_path / "course-quiz submissions.zip")
    capsys.readouterr()
    assert cli.main(_grade(tmp_path, mini_reference, str(other))) == 0
    assert "warning: course-quiz submissions.zip is not the download" in capsys.readouterr().out


@pytest.mark.parametrize("layout", [dict(separator=";", decimal_comma=True), dict(split_names=True)])
def test_canvas_exports_in_other_layouts_are_read_and_written_back_alike(tmp_path, mini_reference, layout, capsys):
    download = course.canvas_download(tmp_path / "submissions.zip")
    export = course.canvas_export(tmp_path / "export.csv", **layout)
    assert cli.main([*_grade(tmp_path, mini_reference, str(download)), "--format", "canvas",
                     "--gradebook", str(export), "--assignment", "flows"]) == 0, capsys.readouterr()
    separator = layout.get("separator", ",")
    filled = _column(tmp_path / "grades" / "canvas_grades.csv", LAB, separator=separator)
    assert filled["1002"] == ("21,6" if layout.get("decimal_comma") else "21.6")
    original = export.read_text(encoding="utf-8").splitlines()
    written = (tmp_path / "grades" / "canvas_grades.csv").read_text(encoding="utf-8").splitlines()
    assert written[:2] == original[:2] and len(written) == len(original)


def _digests(*paths: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.mark.parametrize("extra, message", [
    (["--format", "canvas", "--assignment", "no such lab"], "argument --gradebook: the Canvas export needs exactly "
                                                            "one assignment column matching 'no such lab'"),
    (["--format", "moodle"], "argument --gradebook: "),
    (["--format", "canvas", "--assignment", "flows", "--timezone", "Mars/Olympus"], "argument --timezone must be an IANA time zone"),
    (["--format", "canvas", "--assignment", "flows", "--due", "1st of December"], "argument --due must be an ISO"),
    (["--format", "canvas", "--assignment", "flows", "--student", "12345"], "argument --student: names the student"),
])
def test_bad_inputs_stop_before_any_grading_and_change_no_file(tmp_path, mini_reference, capsys, extra, message):
    download = course.canvas_download(tmp_path / "submissions.zip")
    export = course.canvas_export(tmp_path / "export.csv")
    before = _digests(download, export, mini_reference)
    assert cli.main([*_grade(tmp_path, mini_reference, str(download)), "--gradebook", str(export), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "grades").exists() and _digests(download, export, mini_reference) == before


def test_unreadable_moodle_times_under_a_late_policy_stop_before_grading(tmp_path, mini_reference, capsys):
    worksheet = course.moodle_worksheet(tmp_path / "worksheet.csv", {284712: "lundi 1 décembre 2025, 21:14"})
    download = course.moodle_download(tmp_path / "moodle.zip")
    assert cli.main([*_grade(tmp_path, mini_reference, str(download)), "--format", "moodle", "--gradebook",
                     str(worksheet), "--due", "2025-12-01T23:59"]) == 2
    assert "not in Moodle's English date format (e.g. 'Participant 284712: lundi 1 décembre 2025, 21:14')" \
        in capsys.readouterr().err
    assert not (tmp_path / "grades").exists()


def test_moodle_times_are_read_in_the_instructors_time_zone(tmp_path, mini_reference, capsys):
    worksheet = course.moodle_worksheet(tmp_path / "worksheet.csv", {284712: "Tuesday, 2 December 2025, 12:30 AM"})
    download = course.moodle_download(tmp_path / "moodle.zip")
    base = [*_grade(tmp_path, mini_reference, str(download)), "--format", "moodle", "--gradebook", str(worksheet),
            "--due", "2025-12-01T23:59Z", "--late-penalty", "10"]
    assert cli.main([*base, "--timezone", "Europe/Berlin"]) == 0  # 00:30 in Berlin is 23:30 UTC: on time
    rows = json.loads((tmp_path / "grades" / "grades.json").read_text())["rows"]
    assert rows["Ann_Lee_284712/lab.ipynb"]["days_late"] == 0
    shutil.rmtree(tmp_path / "grades")
    assert cli.main(base) == 0  # read as UTC, the same time is 31 minutes late
    rows = json.loads((tmp_path / "grades" / "grades.json").read_text())["rows"]
    assert rows["Ann_Lee_284712/lab.ipynb"]["days_late"] == 1


def test_unsafe_member_names_are_listed_and_not_graded(tmp_path, mini_reference, capsys):
    download = course.write_zip(tmp_path / "submissions.zip", {
        "leeann_12345_900001_lab.ipynb": course.submission(5), "../../escaped.ipynb": course.submission(5),
        "/abs/olute.ipynb": course.submission(5)})
    assert cli.main(_grade(tmp_path, mini_reference, str(download))) == 0
    printed = capsys.readouterr().out
    assert "../../escaped.ipynb: not graded: its name points outside the download (unsafe)" in printed
    assert "/abs/olute.ipynb: not graded: its name points outside the download (unsafe)" in printed
    rows = json.loads((tmp_path / "grades" / "grades.json").read_text())["rows"]
    assert list(rows) == ["leeann_12345/lab.ipynb"]
    assert not (tmp_path / "escaped.ipynb").exists() and not (tmp_path.parent / "escaped.ipynb").exists()

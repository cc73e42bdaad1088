"""Late work: the documented policy (started days late, percent of the maximum per day, a cap,
none by default), extensions, where submission times come from, and how rows and Gradescope's
results show it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest

from flowlab import cli
from flowlab.grader import gradescope
from flowlab.grader.lms import exchange as lms
from flowlab.grader.grade import Grade, grade_all
from flowlab.grader.gradebook import Handin
from flowlab.grader.late import NO_POLICY, LatePolicy, parse_time, read_extensions
from flowlab.grader.student import make_student_notebook

MINI = Path(__file__).resolve().parent / "data" / "mini_lab.ipynb"
DUE = parse_time("2026-12-01T23:59")


@pytest.mark.parametrize("submitted, days, penalty", [
    ("2026-12-01T23:59", 0, 0.0),  # on the minute: on time
    ("2026-12-02T00:30", 1, 2.0),  # half an hour late: a started day
    ("2026-12-04T00:00", 3, 6.0),
    ("2026-12-20T00:00", 19, 10.0),  # capped at 50 % of 20 points
    ("2026-12-02T00:30+02:00", 0, 0.0),  # 22:30 UTC: on time
])
def test_started_days_late_cost_a_percentage_of_the_maximum_up_to_the_cap(submitted, days, penalty):
    lateness = LatePolicy(due=DUE, per_day=10, cap=50).lateness(parse_time(submitted), max_points=20)
    assert (lateness.days, lateness.penalty) == (days, penalty)
    assert bool(lateness.note) == (days > 0)


def test_an_extension_moves_the_due_date_for_that_student_only():
    policy = LatePolicy(due=DUE, per_day=10, extensions={"s-1": parse_time("2026-12-05T12:00")})
    when = parse_time("2026-12-03T10:00")
    assert policy.lateness(when, 10, "s-1").days == 0
    assert policy.lateness(when, 10, "s-2").days == 2
    assert "extended" in policy.lateness(parse_time("2026-12-06T10:00"), 10, "s-1").note


def test_no_policy_records_lms_late_marks_and_deducts_nothing():
    lateness = NO_POLICY.lateness(None, 18, flagged_late=True)
    assert (lateness.days, lateness.penalty) == (1, 0.0) and "marked late by the LMS" in lateness.note
    assert NO_POLICY.lateness(None, 18) == NO_POLICY.lateness(parse_time("2030-01-01T00:00"), 18)


def test_bad_policies_and_times_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="per_day must be a percentage from 0 to 100, got 150"):
        LatePolicy(per_day=150)
    with pytest.raises(ValueError, match="--due must be an ISO 8601 time"):
        parse_time("next friday", "--due")
    (tmp_path / "ext.csv").write_text("student_id,due\ns-1,tomorrow\n")
    with pytest.raises(ValueError, match="line 2: due must be an ISO 8601 time"):
        read_extensions(tmp_path / "ext.csv")
    (tmp_path / "ext.csv").write_text("id,when\n")
    with pytest.raises(ValueError, match="needs the header student_id,due"):
        read_extensions(tmp_path / "ext.csv")


def test_final_points_never_go_below_zero():
    grade = Grade("a", "graded", {"x": None}, {"x": 3.0}, late_penalty=2.0)
    assert grade.final == 1.0
    grade.late_penalty = 5.0
    assert grade.final == 0.0


def test_rows_show_raw_points_penalty_and_days_and_a_later_policy_reaches_old_rows(tmp_path):
    reference = tmp_path / "reference.ipynb"
    nbformat.write(make_student_notebook(nbformat.read(str(MINI), as_version=4)), str(reference))
    (tmp_path / "class" / "ann").mkdir(parents=True)
    (tmp_path / "class" / "ann" / "lab.ipynb").write_text("not a notebook")
    paths = [tmp_path / "class" / "ann" / "lab.ipynb"]
    handins = {"ann/lab.ipynb": Handin("s-1", parse_time("2026-12-03T08:00"))}
    grade_all(paths, reference, tmp_path / "out", workers=1, handins=handins, root=tmp_path / "class")
    with (tmp_path / "out" / "grades.csv").open() as handle:
        (row,) = csv.DictReader(handle)
    assert (row["student_id"], row["days_late"], row["late_penalty"]) == ("s-1", "0", "0")  # no --due: not late
    policy = LatePolicy(due=DUE, per_day=10)
    assert grade_all(paths, reference, tmp_path / "out", workers=1, handins=handins, late_policy=policy) == []
    with (tmp_path / "out" / "grades.csv").open() as handle:
        (row,) = csv.DictReader(handle)
    assert (row["days_late"], row["late_penalty"], row["raw_points"], row["points"]) == ("2", "1", "0", "0")
    assert row["notes"].startswith("2 days late (due 2026-12-01 23:59 UTC): -1 points (10% per day)")


def test_times_come_from_a_csv_or_moodles_worksheet(tmp_path):
    (tmp_path / "times.csv").write_text("submission,submitted_at\nann/lab.ipynb,2026-12-02T10:00\n102,2026-12-01T09:00Z\n")
    (tmp_path / "sheet.csv").write_text("Identifier,Full name,Last modified (submission)\n"
                                        "Participant 101,Ann Lee,\"Wednesday, 2 December 2026, 9:15 AM\"\n"
                                        "Participant 103,Cy,-\n")
    items = [lms.Submitted(Path("a"), "ann/lab.ipynb"), lms.Submitted(Path("b"), "x/lab.ipynb", "moodle", "102"),
             lms.Submitted(Path("c"), "y/lab.ipynb", "moodle", "101")]
    lms.attach_times(items, lms.read_times(tmp_path / "times.csv"))
    times, unreadable = lms.moodle_times(tmp_path / "sheet.csv")
    lms.attach_times(items[2:], times)
    assert unreadable == []  # "-" is no time, not an unreadable one
    assert [item.submitted_at.isoformat() for item in items] == [
        "2026-12-02T10:00:00+00:00", "2026-12-01T09:00:00+00:00", "2026-12-02T09:15:00+00:00"]
    (tmp_path / "bad.csv").write_text("who,when\n")
    with pytest.raises(lms.LMSFormatError, match="needs the header submission,submitted_at"):
        lms.read_times(tmp_path / "bad.csv")


def test_gradescope_applies_its_due_date(tmp_path):
    (tmp_path / "submission_metadata.json").write_text(json.dumps(
        {"created_at": "2026-12-02T14:22:32.365935-07:00", "assignment": {"due_date": "2026-12-01T23:00:00-07:00"}}))
    grade = Grade("lab.ipynb", "graded", {"a": None}, {"a": 10.0})
    gradescope._lateness(tmp_path, grade, late_penalty=20, late_cap=100)
    results = gradescope.results_for(grade)
    assert (grade.days_late, results["score"]) == (1, 8.0) and "Late: 1 day late" in results["output"]


def test_cli_late_options_are_checked_by_name(tmp_path, capsys):
    (tmp_path / "lab.ipynb").write_text("x")
    for arguments, message in [(["--due", "soon"], "argument --due must be an ISO 8601 time"),
                               (["--extensions", str(tmp_path / "none.csv")], "argument --extensions: no such file"),
                               (["--times", str(tmp_path / "none.csv")], "argument --times: no such file")]:
        assert cli.main(["grade", str(tmp_path / "lab.ipynb"), "--out", str(tmp_path / "o"), *arguments]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["grade", str(tmp_path / "lab.ipynb"), "--late-penalty", "101"])
    assert "--late-penalty: must be a number from 0 to 100, got '101'" in capsys.readouterr().err

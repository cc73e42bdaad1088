"""Grading a class more than once: a rerun skips what is graded, a regrade of one student replaces
only that row (named as with the class), an interrupted run resumes, nothing graded is lost.
Unreadable submissions grade in milliseconds (no kernel), so these tests are quick."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest

from flowlab import cli
from flowlab.grader.grade import Grade, grade_all
from flowlab.grader.gradebook import GRADEBOOK, Gradebook

MINI = Path(__file__).resolve().parent / "data" / "mini_lab.ipynb"


@pytest.fixture
def reference(mini_reference) -> Path:
    return mini_reference


@pytest.fixture
def klass(tmp_path) -> Path:
    """A class folder of three students whose files are not notebooks (graded at once)."""
    for student in ("ann", "bob", "cy"):
        (tmp_path / "class" / student).mkdir(parents=True)
        (tmp_path / "class" / student / "lab.ipynb").write_text(f"{student}'s answers are in the PDF")
    return tmp_path / "class"


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "grades.csv").open() as handle:
        return {row["submission"]: row for row in csv.DictReader(handle)}


def _files(klass: Path) -> list[Path]:
    return sorted(klass.rglob("*.ipynb"))


def test_a_rerun_skips_what_is_graded_and_keeps_every_row(klass, reference, tmp_path):
    out = tmp_path / "grades"
    first = grade_all(_files(klass), reference, out, workers=1)
    assert [g.submission for g in first] == ["ann/lab.ipynb", "bob/lab.ipynb", "cy/lab.ipynb"]
    before = (out / "grades.csv").read_text()
    assert grade_all(_files(klass), reference, out, workers=1) == []
    assert (out / "grades.csv").read_text() == before
    assert "| bob/lab.ipynb | unreadable |" in (out / "grades.md").read_text()


@pytest.mark.slow  # grades a real notebook in a kernel
def test_a_regrade_of_one_replaces_only_its_row(klass, reference, tmp_path):
    out = tmp_path / "grades"
    grade_all(_files(klass), reference, out, workers=1)
    nbformat.write(nbformat.read(str(MINI), as_version=4), str(klass / "bob" / "lab.ipynb"))  # resubmitted
    (klass / "ann" / "lab.ipynb").write_text("{}")  # changed too, but not named in the regrade
    regraded = grade_all([klass / "bob" / "lab.ipynb"], reference, out, workers=1)
    assert [(g.submission, g.status) for g in regraded] == [("bob/lab.ipynb", "graded")]
    rows = _rows(out)
    assert sorted(rows) == ["ann/lab.ipynb", "bob/lab.ipynb", "cy/lab.ipynb"]
    assert rows["bob/lab.ipynb"]["status"] == "graded" and rows["bob/lab.ipynb"]["points"] == "5"
    assert rows["ann/lab.ipynb"]["moons_data"].startswith("FAIL: unreadable: not a Jupyter notebook (")
    assert "| bob/lab.ipynb | graded | 5/5 |" in (out / "grades.md").read_text()


def test_force_regrades_unchanged_files(klass, reference, tmp_path):
    out = tmp_path / "grades"
    grade_all(_files(klass), reference, out, workers=1)
    again = grade_all(_files(klass), reference, out, workers=1, force=True)
    assert len(again) == 3 and len(_rows(out)) == 3


def test_an_interrupted_run_resumes_where_it_stopped(klass, reference, tmp_path):
    out = tmp_path / "grades"

    def interrupt(grade: Grade) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        grade_all(_files(klass), reference, out, workers=1, progress=interrupt)
    assert len(json.loads((out / GRADEBOOK).read_text())["rows"]) == 1
    rest = grade_all(_files(klass), reference, out, workers=1)
    assert len(rest) == 2 and len(_rows(out)) == 3


def test_the_cli_names_rows_below_the_class_folder_when_one_student_is_regraded(klass, reference, tmp_path, capsys):
    out = tmp_path / "grades"
    base = ["--reference", str(reference), "--out", str(out), "--workers", "1"]
    assert cli.main(["grade", str(klass / "ann"), *base]) == 0  # the first run sees one student only
    capsys.readouterr()
    assert cli.main(["grade", str(klass), *base]) == 0  # then the class: the root becomes the class folder
    assert "skipped 1 notebook graded before" in capsys.readouterr().out  # ann, known under her new name
    (klass / "cy" / "lab.ipynb").write_text("resubmitted, still not a notebook")
    capsys.readouterr()
    assert cli.main(["grade", str(klass / "cy" / "lab.ipynb"), *base]) == 0
    printed = capsys.readouterr().out
    assert "  cy/lab.ipynb: unreadable" in printed
    assert sorted(_rows(out)) == ["ann/lab.ipynb", "bob/lab.ipynb", "cy/lab.ipynb"]  # ann's row renamed
    assert cli.main(["grade", str(klass), *base]) == 0
    assert "skipped 3 notebooks graded before from the same file (--force regrades them)" in capsys.readouterr().out


def test_a_gradebook_of_other_checks_is_refused_by_name(klass, reference, tmp_path, capsys):
    out = tmp_path / "grades"
    grade_all(_files(klass), reference, out, workers=1)
    stored = json.loads((out / GRADEBOOK).read_text())
    stored["checks"] = ["something_else"]
    (out / GRADEBOOK).write_text(json.dumps(stored))
    assert cli.main(["grade", str(klass), "--reference", str(reference), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowlab grade: error: argument --out: ") and "choose another --out folder" in err
    (out / GRADEBOOK).write_text("{not json")
    with pytest.raises(ValueError, match="is not a flowlab gradebook"):
        Gradebook.open(out, ["moons_data"], _files(klass))


def test_rows_are_sorted_whatever_order_they_were_graded_in(klass, reference, tmp_path):
    out = tmp_path / "grades"
    grade_all([klass / "cy" / "lab.ipynb"], reference, out, workers=1, root=klass)
    grade_all(_files(klass), reference, out, workers=1)
    assert list(_rows(out)) == ["ann/lab.ipynb", "bob/lab.ipynb", "cy/lab.ipynb"]


def test_a_run_without_a_late_policy_keeps_the_lateness_rows_were_given(klass, reference, tmp_path):
    from flowlab.grader.gradebook import Handin
    from flowlab.grader.late import LatePolicy, parse_time

    out = tmp_path / "grades"
    handins = {"ann/lab.ipynb": Handin("s-1", parse_time("2026-12-03T00:00"))}
    policy = LatePolicy(due=parse_time("2026-12-01T00:00"), per_day=10)
    grade_all(_files(klass), reference, out, workers=1, handins=handins, late_policy=policy)
    grade_all(_files(klass), reference, out, workers=1, handins=handins)  # e.g. an export, no options
    assert (_rows(out)["ann/lab.ipynb"]["days_late"], _rows(out)["ann/lab.ipynb"]["late_penalty"]) == ("2", "1")


def test_an_interrupted_grader_ends_the_notebooks_still_running(klass, reference, tmp_path):
    import subprocess
    import time

    from flowlab.grader import run as grade_run

    sleeper = subprocess.Popen(["sleep", "300"])
    with grade_run._RUNNING_LOCK:
        grade_run._RUNNING.add(sleeper)
    try:
        assert grade_run.stop_running() == 1
        start = time.monotonic()
        sleeper.wait(timeout=10)
        assert time.monotonic() - start < 10
    finally:
        with grade_run._RUNNING_LOCK:
            grade_run._RUNNING.discard(sleeper)
        sleeper.kill()

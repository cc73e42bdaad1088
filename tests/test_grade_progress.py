"""flowlab.grader.progress: what `flowlab check` shows while the notebook runs, from the records the
grader's plugin writes as each cell finishes; and `flowlab check` on the small lab of tests/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowlab.grader.progress import CellProgress

#: Code cells of a small notebook, in order: (id, check name or None).
CELLS = [("setup", None), ("data", None), ("check-moons_data", "moons_data"), ("zdist", None),
         ("check-base_distribution", "base_distribution")]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _record(path: Path, cell_id: str, check: str | None, outcome: str = "passed", end: str = "\n") -> None:
    with path.open("a") as handle:
        handle.write(json.dumps({"id": cell_id, "check": check, "when": "call", "outcome": outcome}) + end)


@pytest.fixture
def followed(tmp_path):
    clock, lines = Clock(), []
    return tmp_path / "results.jsonl", clock, lines, CellProgress(tmp_path / "results.jsonl", CELLS, lines.append,
                                                                  heartbeat=15.0, clock=clock)


def test_a_finished_check_is_shown_with_the_time_and_the_cell_running_next(followed):
    results, clock, lines, progress = followed
    progress.poll()  # no file yet: the kernel is starting
    assert lines == []
    _record(results, "setup", None)
    _record(results, "data", None)
    clock.now += 7
    progress.poll()
    assert lines == []  # ordinary cells only: no line before the heartbeat
    _record(results, "check-moons_data", "moons_data", outcome="failed")
    clock.now += 2
    progress.poll()
    assert lines == ["      9 s  moons_data: cell failed; running code cell 4 of 5, before the base_distribution check"]


def test_the_heartbeat_names_the_running_cell_after_15_quiet_seconds(followed):
    results, clock, lines, progress = followed
    _record(results, "setup", None)
    clock.now += 14
    progress.poll()
    assert lines == []
    clock.now += 1
    progress.poll()
    assert lines == ["     15 s  running code cell 2 of 5, before the moons_data check"]
    _record(results, "data", None)
    clock.now += 15
    progress.poll()
    assert lines[-1] == "     30 s  running code cell 3 of 5: the moons_data check"


def test_a_line_still_being_written_waits_for_its_end(followed):
    results, clock, lines, progress = followed
    _record(results, "check-moons_data", "moons_data", end="")  # the plugin has not finished the line
    progress.poll()
    assert lines == []
    results.open("a").write("\n")
    progress.poll()
    assert lines == ["      0 s  moons_data: cell passed; running code cell 4 of 5, before the base_distribution check"]


def test_the_last_check_says_the_run_is_finishing(followed):
    results, clock, lines, progress = followed
    _record(results, "check-base_distribution", "base_distribution")
    progress.poll()
    assert lines == ["      0 s  base_distribution: cell passed; finishing"]


def test_a_heartbeat_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="heartbeat must be > 0 seconds, got 0"):
        CellProgress(tmp_path / "results.jsonl", CELLS, print, heartbeat=0)


@pytest.mark.slow
def test_check_shows_each_check_as_it_finishes_and_keeps_its_report(mini_reference, tmp_path, capsys):
    """`flowlab check` on the small lab: one progress line per check on stderr, in notebook order, with
    the seconds so far; stdout is the report alone, as before."""
    from flowlab.cli import main

    solution = Path(__file__).resolve().parent / "data" / "mini_lab.ipynb"
    status = main(["check", str(solution), "--reference", str(mini_reference)])
    captured = capsys.readouterr()
    assert status == 0, captured.out + captured.err
    shown = [line.split()[2].rstrip(":") for line in captured.err.splitlines() if ": cell " in line]
    assert shown == ["moons_data", "base_distribution", "base_samples", "bijectors"], captured.err
    seconds = [float(line.split()[0]) for line in captured.err.splitlines() if ": cell " in line]
    assert seconds == sorted(seconds)
    out = captured.out.splitlines()
    assert out[0].startswith(f"checking {solution} as the grader would")
    assert [line.split()[0] for line in out[1:5]] == shown  # the report, check by check, unchanged
    assert out[-1] == "graded: 5/5 points, 4 of 4 checks passed"


# `flowlab grade`: the same lines, after the key of the notebook they are about, on stderr.

def _class_of_text_files(folder: Path) -> list[Path]:
    """Three submissions that are not notebooks: graded at once, without a kernel."""
    paths = []
    for student in ("ann", "bob", "cy"):
        (folder / student).mkdir(parents=True)
        (folder / student / "lab.ipynb").write_text(f"{student}'s answers are in the PDF")
        paths.append(folder / student / "lab.ipynb")
    return paths


def _with_cell_lines(monkeypatch) -> None:
    """grade_job as before, after telling its progress one finished check, as CellProgress would."""
    from flowlab.grader import grade

    real = grade.grade_job

    def grade_job(job, progress=None):  # type: ignore[no-untyped-def]
        if progress is not None:
            progress("      9 s  moons_data: cell passed; running code cell 4 of 5, before the base_distribution check")
        return real(job, progress)
    monkeypatch.setattr(grade, "grade_job", grade_job)


def test_grade_all_tells_running_each_notebook_start_and_its_cells(tmp_path, mini_reference, monkeypatch):
    from flowlab.grader.grade import grade_all

    _with_cell_lines(monkeypatch)
    paths, heard = _class_of_text_files(tmp_path / "class"), []
    grade_all(paths, mini_reference, tmp_path / "followed", workers=1, running=lambda *line: heard.append(line))
    assert heard == [(f"{student}/lab.ipynb", line) for student in ("ann", "bob", "cy") for line in
                     ("started", "9 s  moons_data: cell passed; running code cell 4 of 5, before the "
                                 "base_distribution check")]
    grade_all(paths, mini_reference, tmp_path / "quiet", workers=1)
    for name in ("grades.csv", "grades.md"):  # the same report, followed or not
        assert (tmp_path / "followed" / name).read_text() == (tmp_path / "quiet" / name).read_text()


def test_grade_all_on_an_executor_does_not_call_running(tmp_path, mini_reference):
    """Another executor's workers may be other processes: no lines from there."""
    from concurrent.futures import ThreadPoolExecutor

    from flowlab.grader.grade import grade_all

    heard = []
    with ThreadPoolExecutor(1) as executor:
        grades = grade_all(_class_of_text_files(tmp_path / "class"), mini_reference, tmp_path / "out",
                           executor=executor, running=lambda *line: heard.append(line))
    assert len(grades) == 3 and heard == []


def test_grade_command_shows_which_notebook_runs_on_stderr(tmp_path, mini_reference, monkeypatch, capsys):
    from flowlab import cli

    _with_cell_lines(monkeypatch)
    _class_of_text_files(tmp_path / "class")
    arguments = ["grade", str(tmp_path / "class"), "--reference", str(mini_reference), "--workers", "1"]
    assert cli.main([*arguments, "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"  {student}/lab.ipynb: {line}" for student in ("ann", "bob", "cy") for line in
        ("started", "9 s  moons_data: cell passed; running code cell 4 of 5, before the base_distribution check")]
    assert "started" not in captured.out and "9 s" not in captured.out  # stdout: the report alone, as before
    assert "  bob/lab.ipynb: unreadable, 0/5 points" in captured.out


@pytest.mark.slow
def test_grade_shows_each_check_of_each_notebook_as_it_finishes(mini_reference, tmp_path, capsys):
    """`flowlab grade` on the small lab: the notebook's start, then one line per check on stderr, in
    notebook order, each after the notebook's key; the report files are written as without them."""
    from flowlab.cli import main

    solution = Path(__file__).resolve().parent / "data" / "mini_lab.ipynb"
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "lab.ipynb").write_bytes(solution.read_bytes())
    status = main(["grade", str(tmp_path / "ann"), "--reference", str(mini_reference), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert status == 0, captured.out + captured.err
    lines = captured.err.splitlines()
    assert lines[0] == "  lab.ipynb: started"
    shown = [line.split()[3].rstrip(":") for line in lines if ": cell " in line]
    assert shown == ["moons_data", "base_distribution", "base_samples", "bijectors"], captured.err
    assert all(line.startswith("  lab.ipynb: ") for line in lines)
    assert "| lab.ipynb | graded | 5/5 |" in (tmp_path / "out" / "grades.md").read_text()

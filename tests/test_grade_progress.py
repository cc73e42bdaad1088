"""flowlab.grade_progress: what `flowlab check` shows while the notebook runs, from the records the
grader's plugin writes as each cell finishes; and `flowlab check` on the small lab of tests/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowlab.grade_progress import CellProgress

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

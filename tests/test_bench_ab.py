"""benchmarks/bench_ab.py's pure parts: parsing a run, the ratio table and its median (no timing)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_ab.py"
_SPEC = importlib.util.spec_from_file_location("bench_ab", _PATH)
bench_ab = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_ab"] = bench_ab  # dataclasses look their module up
_SPEC.loader.exec_module(bench_ab)
Run, Pair = bench_ab.Run, bench_ab.Pair


def test_parse_run_reads_the_last_line():
    stdout = 'epoch 1/80 ...\n{"train_seconds": 12.5, "heldout_nll": 0.3404046270775795, "kl_to_exact": 0.0486}\n'
    assert bench_ab.parse_run(7, stdout) == Run(7, 12.5, 0.3404046270775795, 0.0486)


@pytest.mark.parametrize("stdout", ["", "trained in 3 s\n"])
def test_parse_run_refuses_output_without_json(stdout):
    with pytest.raises(ValueError):
        bench_ab.parse_run(0, stdout)


def test_ratio_identical_and_median():
    pairs = [Pair(Run(0, 10.0, 0.34, 0.05), Run(0, 12.0, 0.34, 0.05)),
             Pair(Run(1, 20.0, 0.35, 0.06), Run(1, 19.0, 0.35, 0.06)),
             Pair(Run(2, 10.0, 0.33, 0.04), Run(2, 10.5, 0.3300000000000001, 0.04))]
    assert [p.ratio for p in pairs] == pytest.approx([1.2, 0.95, 1.05])
    assert [p.identical for p in pairs] == [True, True, False]
    assert bench_ab.median_ratio(pairs) == pytest.approx(1.05)
    assert bench_ab.median_ratio(pairs[:2]) == pytest.approx(1.075)  # even count: mean of the middle two
    with pytest.raises(ValueError):
        bench_ab.median_ratio([])


def test_table_has_a_row_per_seed_and_the_median():
    pairs = [Pair(Run(0, 10.0, 0.34, 0.05), Run(0, 12.0, 0.34, 0.05)),
             Pair(Run(1, 10.0, 0.35, 0.06), Run(1, 9.0, 0.36, 0.06))]
    lines = bench_ab.table(pairs, ("fcd", "new")).splitlines()
    assert lines[0].split()[:4] == ["seed", "fcd", "s", "new"]
    assert lines[1].split()[:4] == ["0", "10.00", "12.00", "1.200"] and lines[1].endswith("yes")
    assert lines[2].split()[:4] == ["1", "10.00", "9.00", "0.900"] and lines[2].endswith("NO")
    assert lines[3] == "median B/A over 2 seeds: 1.050"


def test_the_trees_take_turns_going_first():
    assert [bench_ab.order(i) for i in range(4)] == [(0, 1), (1, 0), (0, 1), (1, 0)]

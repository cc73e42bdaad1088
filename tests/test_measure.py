"""Measurements used to compare flows."""

import numpy as np
import pytest

from flowlab import measure
from flowlab.data import MOONS_GAP, make_moons, moons_log_prob


def test_gap_mass_of_a_uniform_density_is_its_overlap_area():
    def unit_square(x):  # uniform density on [0, 1]^2
        inside = np.all((x >= 0) & (x <= 1), axis=1)
        return np.where(inside, 0.0, -np.inf)
    # the gap box [0.25, 0.75] x [-0.1, 0.6] overlaps the unit square in 0.5 x 0.6
    assert measure.gap_mass(unit_square) == pytest.approx(0.3, abs=1e-9)


def test_gap_mass_of_the_exact_density_is_the_share_of_samples_in_the_gap():
    n = 1_000_000
    x = make_moons(n, seed=3)
    x0, x1, y0, y1 = MOONS_GAP
    share = float(np.mean((x[:, 0] > x0) & (x[:, 0] < x1) & (x[:, 1] > y0) & (x[:, 1] < y1)))
    standard_error = np.sqrt(share * (1 - share) / n)
    assert 0.001 < share < 0.01  # almost empty, not empty
    assert measure.gap_mass(moons_log_prob) == pytest.approx(share, abs=4 * standard_error)


def test_best_time_takes_the_fastest_run(monkeypatch):
    now = [0.0]
    durations = iter([3.0, 1.0, 2.0, 5.0])  # seconds each run takes on a fake clock

    def work():
        now[0] += next(durations)
    monkeypatch.setattr(measure.time, "perf_counter", lambda: now[0])
    assert measure.best_time(work, repeats=4) == 1.0  # not the mean (2.75), last (5) or max
    with pytest.raises(StopIteration):
        next(durations)  # all four runs happened
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        measure.best_time(lambda: None, repeats=0)

"""Measurements used to compare flows."""

import numpy as np
import pytest

from flowlab import measure
from flowlab.data import moons_log_prob


def test_gap_mass_of_a_uniform_density_is_its_overlap_area():
    def unit_square(x):  # uniform density on [0, 1]^2
        inside = np.all((x >= 0) & (x <= 1), axis=1)
        return np.where(inside, 0.0, -np.inf)
    # the gap box [0.25, 0.75] x [-0.1, 0.6] overlaps the unit square in 0.5 x 0.6
    assert measure.gap_mass(unit_square) == pytest.approx(0.3, abs=1e-9)


def test_exact_density_leaves_little_mass_in_the_gap():
    assert 0.003 < measure.gap_mass(moons_log_prob) < 0.006


def test_best_time_takes_the_fastest_run():
    calls = []
    assert measure.best_time(lambda: calls.append(1), repeats=4) >= 0 and len(calls) == 4
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        measure.best_time(lambda: None, repeats=0)

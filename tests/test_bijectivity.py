"""flowlab.bijectivity: each kind of non-bijection is caught with its own reason, bijections pass,
the sheet's examples get the verdicts the lab teaches, and bad arguments are named."""

import numpy as np
import pytest

from flowlab.bijectivity import SHEET_EXAMPLES, check_bijection, grid

EXPECTED = {  # the verdicts the lab teaches for its examples
    "cos on [0, pi]": True, "cos on [0, 2pi]": False, "x**2 on the reals": False,
    "x**3 on the reals": True, "x**3 - x on the reals": False, "sum of x1 and x2": False,
    "matrix [[2, 1], [1, 1]]": True, "matrix [[1, 2], [2, 4]]": False,
}


def test_sheet_examples_get_the_lab_s_verdicts():
    assert {name: example.verdict().bijective for name, example in SHEET_EXAMPLES.items()} == EXPECTED


@pytest.mark.parametrize("f, domain, needle", [
    (np.cos, (0.0, 2 * np.pi), "turns back at x = 3.14"),
    (np.square, (-3.0, 3.0), "f(-3) = 9 and f(3) = 9"),
    (lambda x: np.tanh(x) - 0.5 * x, (-3.0, 3.0), "its derivative changes sign"),
    (lambda x: np.zeros_like(x), (0.0, 1.0), "f is constant"),
    (lambda x: x.sum(axis=1), [(-1, 1), (-1, 1)], "takes 2 numbers to 1"),
    (lambda x: np.stack([x, x**2], axis=1), (-1.0, 1.0), "takes 1 numbers to 2"),
    (lambda x: x @ np.array([[1.0, 2.0], [2.0, 4.0]]).T, [(-1, 1), (-1, 1)], "singular everywhere"),
    (lambda x: np.stack([x[:, 0], x[:, 1] ** 3 - x[:, 1]], axis=1), [(-2, 2), (-2, 2)],
     "determinant changes sign"),
    (lambda x: np.stack([x[:, 0] + x[:, 1], x[:, 0] + x[:, 1], x[:, 2]], axis=1), [(-1, 1)] * 3,
     "singular everywhere"),
    (np.log, (-1.0, 1.0), "not finite at x = -1"),
])
def test_non_bijections_are_caught_with_their_reason(f, domain, needle):
    with np.errstate(all="ignore"):
        verdict = check_bijection(f, domain)
    assert not verdict.bijective and needle in verdict.reason, verdict


@pytest.mark.parametrize("f, domain", [
    (np.exp, (-2.0, 2.0)), (np.sinh, (-3.0, 3.0)), (np.tanh, (-3.0, 3.0)), (lambda x: -3 * x + 1, (0.0, 1.0)),
    (lambda x: x @ np.array([[0.0, 1.0], [1.0, 0.0]]).T, [(-1, 1), (-2, 2)]),  # a permutation: det -1
    (lambda x: np.stack([x[:, 0], x[:, 1] * np.exp(x[:, 0]) + x[:, 0] ** 2], axis=1), [(-1, 1), (-1, 1)]),
])
def test_bijections_pass(f, domain):
    verdict = check_bijection(f, domain)
    assert verdict.bijective, verdict


def test_a_derivative_that_vanishes_at_a_point_is_noted_not_fatal():
    verdict = check_bijection(lambda x: x**3, (-1.0, 1.0))
    assert verdict.bijective and "derivative vanishes at x = 0" in verdict.reason


def test_round_trip_through_the_inverse():
    assert check_bijection(np.exp, (-2.0, 2.0), inverse=np.log).bijective
    wrong = check_bijection(np.exp, (-2.0, 2.0), inverse=np.sqrt)
    assert not wrong.bijective and "inverse does not undo f" in wrong.reason
    shaped = check_bijection(lambda x: x, [(-1, 1), (-1, 1)], inverse=lambda y: y[:, :1])
    assert not shaped.bijective and "inverse returns 1 numbers per point" in shaped.reason


@pytest.mark.parametrize("domain, needle", [
    ((1.0, 0.0), "low < high"), ([(0, 1)] * 4, "1 to 3 of them"), ("reals", "(low, high) pair"),
    ((0.0, np.inf), "finite pairs"),
])
def test_bad_domains_are_named(domain, needle):
    with pytest.raises(ValueError, match="domain must") as error:
        check_bijection(np.cos, domain)
    assert needle in str(error.value)


def test_bad_maps_are_named():
    with pytest.raises(ValueError, match="f must be a function"):
        check_bijection(3.0, (0.0, 1.0))
    with pytest.raises(ValueError, match="f must return one output"):
        check_bijection(lambda x: np.zeros(3), (0.0, 1.0))
    with pytest.raises(ValueError, match="inverse must be a function or None"):
        check_bijection(np.cos, (0.0, 1.0), inverse="arccos")


def test_grid_sizes():
    assert grid((0, 1))[0].shape == (2001, 1)
    assert grid([(0, 1)] * 3)[0].shape == (17**3, 3)

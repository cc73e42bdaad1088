"""flowlab.studies.digits.data: the split, bits per dimension, dequantization and the baselines, against
closed forms and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from flowlab.studies.digits import data as digits
from flowlab.data import Estimate


def test_the_split_is_disjoint_complete_and_seeded():
    splits = digits.load_digit_splits(seed=3)
    assert [len(part) for part in splits] == [1350, 150, 297]
    flat = np.concatenate([part.reshape(len(part), -1) for part in splits])
    from sklearn.datasets import load_digits

    every = load_digits().images.reshape(1797, -1).astype(np.int32)
    assert sorted(map(bytes, flat)) == sorted(map(bytes, every))  # each image exactly once
    again, other = digits.load_digit_splits(seed=3), digits.load_digit_splits(seed=4)
    assert np.array_equal(again.test, splits.test) and not np.array_equal(other.test, splits.test)


@pytest.mark.parametrize("call, message", [
    (lambda: digits.load_digit_splits(n_test=1000, n_validation=797), "must leave training images"),
    (lambda: digits.load_digit_splits(seed=-1), "seed must be an integer >= 0"),
    (lambda: digits.independent_pixels_nll(np.zeros((3, 8, 7)), np.zeros((1, 64))), "8x8 pixels"),
    (lambda: digits.independent_pixels_nll(np.full((3, 64), 17), np.zeros((1, 64))), "grey levels 0..16"),
    (lambda: digits.independent_pixels_nll(np.full((3, 64), 1.5), np.zeros((1, 64))), "grey levels 0..16"),
    (lambda: digits.independent_pixels_nll(np.zeros((3, 64)), np.zeros((2, 64)), pseudocount=0),
     "pseudocount must be > 0"),
])
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bits_per_dim_converts_nats_per_image():
    assert digits.bits_per_dim(64 * math.log(2) * 1.5) == pytest.approx(1.5)
    converted = digits.bits_per_dim(Estimate(64 * math.log(2), 64 * math.log(2) / 10))
    assert isinstance(converted, Estimate) and np.allclose(converted, (1.0, 0.1))


def test_uniform_dequantization_stays_in_each_pixels_bin():
    images = np.random.default_rng(0).integers(0, 17, size=(50, 8, 8))
    x = digits.uniform_dequantize(images, seed=2)
    flat = images.reshape(50, 64)
    assert np.all(x >= flat) and np.all(x < flat + 1) and x.dtype == np.float32
    assert abs(float(np.mean(x - flat)) - 0.5) < 0.02  # uniform: mean 1/2


def test_independent_pixels_is_the_exact_categorical_nll():
    """Training images all 0 except one pixel that is 3 in half of them: the NLL of a test image is
    the sum of each pixel's smoothed frequency, by hand."""
    train = np.zeros((10, 64), dtype=int)
    train[:5, 7] = 3
    test = np.zeros((2, 64), dtype=int)
    test[1, 7] = 3
    c = 0.5
    zero_always = -math.log((10 + c) / (10 + 17 * c))
    half = -math.log((5 + c) / (10 + 17 * c))
    expected = 63 * zero_always + half  # both test images: pixel 7 is 0 in one and 3 in the other
    estimate = digits.independent_pixels_nll(train, test, pseudocount=c)
    assert estimate.mean == pytest.approx(expected) and estimate.standard_error == pytest.approx(0.0, abs=1e-12)


def test_the_gaussian_baseline_is_scipys_density_on_dequantized_pixels():
    rng = np.random.default_rng(1)
    train = rng.integers(0, 17, size=(400, 64))
    test = rng.integers(0, 17, size=(5, 64))
    estimate = digits.gaussian_nll(train, test, draws=3, seed=4, ridge=1e-3)
    x = digits.uniform_dequantize(train, 4).astype(np.float64)
    model = stats.multivariate_normal(x.mean(0), np.cov(x.T, bias=True) + 1e-3 * np.eye(64))
    by_scipy = -np.mean([model.logpdf(digits.uniform_dequantize(test, 5 + d)) for d in range(3)], axis=0)
    assert estimate.mean == pytest.approx(by_scipy.mean(), rel=1e-9)


def test_the_baselines_on_the_default_split():
    """Measured: 2.42 (independent pixels) and 2.97 (Gaussian) bits/dim; the Gaussian is worse
    because a density that is smooth in each pixel wastes mass on the many pixels stuck at 0."""
    splits = digits.load_digit_splits()
    independent = digits.bits_per_dim(digits.independent_pixels_nll(splits.train, splits.test))
    gaussian = digits.bits_per_dim(digits.gaussian_nll(splits.train, splits.test))
    assert 2.3 < independent.mean < 2.55 and 2.8 < gaussian.mean < 3.1
    assert independent.mean + 3 * independent.standard_error < gaussian.mean


def test_nearest_neighbours_match_brute_force():
    rng = np.random.default_rng(2)
    queries, references = rng.normal(8, 4, size=(7, 64)), rng.integers(0, 17, size=(30, 64))
    index, distance = digits.nearest_neighbours(queries, references)
    brute = np.linalg.norm(queries[:, None, :] - references[None], axis=2)
    assert index.tolist() == brute.argmin(1).tolist()
    assert np.allclose(distance, brute.min(1))

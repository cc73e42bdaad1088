"""8x8 digit images for the sheet's further reading (image flows), with no download:
scikit-learn's bundled ``load_digits`` (1,797 images, grey levels 0-16), split by seed;
bits per dimension; and the baselines an image flow is judged against.

Pixels are integers, so a continuous density must be *dequantized* to be compared with
a discrete model: a density ``p`` on the cube ``[0, 17)^64`` gives each image ``x`` the
probability ``P(x) = integral over x + [0, 1)^64 of p``, and for any noise ``u`` in the unit
cube with density ``q(u | x)``, ``log P(x) >= E_q[log p(x + u) - log q(u | x)]`` (Jensen).
Uniform noise (``q = 1``) gives the plain bound ``E_u[log p(x + u)]``. With unit bins, bits
per dimension are ``-log2 P(x) / 64``; every number here is in those units.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from flowlab import _validate
from flowlab.data import Estimate, monte_carlo_mean

__all__ = ["LEVELS", "SIDE", "DIMS", "DigitSplits", "load_digit_splits", "bits_per_dim",
           "uniform_dequantize", "independent_pixels_nll", "gaussian_nll", "nearest_neighbours", "as_pixels"]

#: Grey levels of a pixel (0 to 16), pixels per side, and dimensions of an image.
LEVELS, SIDE, DIMS = 17, 8, 64


class DigitSplits(NamedTuple):
    """Images as int arrays of shape ``(n, 8, 8)`` with values 0..16, split three ways."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def load_digit_splits(seed: int = 0, n_test: int = 297, n_validation: int = 150) -> DigitSplits:
    """scikit-learn's digits shuffled by ``seed`` and cut into train, validation and test
    (by default 1,350 / 150 / 297: the test set of the baselines' 1,500 / 297 split).

    Example:
        >>> splits = load_digit_splits(seed=0)
        >>> [len(part) for part in splits], splits.test.dtype, int(splits.train.max())
        ([1350, 150, 297], dtype('int32'), 16)
    """
    from sklearn.datasets import load_digits

    seed = _validate.non_negative_int("seed", seed)
    n_test = _validate.positive_int("n_test", n_test)
    n_validation = _validate.positive_int("n_validation", n_validation)
    images = load_digits().images.astype(np.int32)
    if n_test + n_validation >= len(images):
        raise ValueError(f"n_test + n_validation must leave training images (there are {len(images)}), "
                         f"got {n_test} + {n_validation}")
    order = np.random.default_rng(seed).permutation(len(images))
    test, validation = order[:n_test], order[n_test:n_test + n_validation]
    return DigitSplits(images[order[n_test + n_validation:]], images[validation], images[test])


def bits_per_dim(nll_nats: float | Estimate, dims: int = DIMS) -> float | Estimate:
    """A negative log-likelihood per image in nats, as bits per dimension (unit bins).

    Example:
        >>> round(bits_per_dim(64 * math.log(2)), 6)
        1.0
    """
    dims = _validate.positive_int("dims", dims)
    factor = 1.0 / (dims * math.log(2))
    if isinstance(nll_nats, Estimate):
        return Estimate(nll_nats.mean * factor, nll_nats.standard_error * factor)
    return float(nll_nats) * factor


def as_pixels(name: str, images: np.ndarray) -> np.ndarray:
    """``images`` as an int array of shape (n, 64) with values in 0..16, or a ValueError naming
    ``name``: the check every digits function (and :mod:`flowlab.studies.digits.train`) makes of images.

    Example:
        >>> as_pixels("images", np.full((2, 8, 8), 16.0)).shape
        (2, 64)
        >>> as_pixels("images", np.zeros((2, 7, 7)))
        Traceback (most recent call last):
        ...
        ValueError: images must hold images of 8x8 pixels, shape (n, 8, 8) or (n, 64), got (2, 7, 7)
    """
    array = np.asarray(images)
    if array.ndim < 2 or array.shape[0] < 1 or math.prod(array.shape[1:]) != DIMS:
        raise ValueError(f"{name} must hold images of {SIDE}x{SIDE} pixels, shape (n, 8, 8) or (n, 64), "
                         f"got {array.shape}")
    flat = array.reshape(len(array), DIMS)
    if not np.all(np.isfinite(flat)) or np.any(flat != np.round(flat)) or flat.min() < 0 or flat.max() >= LEVELS:
        raise ValueError(f"{name} must hold integer grey levels 0..{LEVELS - 1}, got values in "
                         f"[{flat.min()}, {flat.max()}]")
    return flat.astype(np.int32)


def uniform_dequantize(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """``images + u`` with ``u`` uniform on ``[0, 1)`` per pixel: float32, shape (n, 64).

    Example:
        >>> x = uniform_dequantize(np.zeros((2, 8, 8), dtype=int), seed=1)
        >>> x.shape, bool(((x >= 0) & (x < 1)).all())
        ((2, 64), True)
    """
    pixels = as_pixels("images", images)
    noise = np.random.default_rng(_validate.non_negative_int("seed", seed)).random(pixels.shape)
    return np.minimum(pixels + noise, np.nextafter(LEVELS, 0)).astype(np.float32)


def independent_pixels_nll(train: np.ndarray, test: np.ndarray, pseudocount: float = 0.5) -> Estimate:
    """NLL in nats per test image of independent categorical pixels, each pixel's 17 level
    frequencies counted on ``train`` with ``pseudocount`` added to every level (so a level
    never seen in training does not get probability zero). A discrete model: no
    dequantization, so this is the exact NLL, not a bound.

    Example:
        >>> splits = load_digit_splits()
        >>> round(bits_per_dim(independent_pixels_nll(splits.train, splits.test)).mean, 2)
        2.42
    """
    train, test = as_pixels("train", train), as_pixels("test", test)
    pseudocount = _validate.finite_float("pseudocount", pseudocount, minimum=0.0, strict=True)
    counts = np.stack([np.bincount(column, minlength=LEVELS) for column in train.T]) + pseudocount
    log_p = np.log(counts / counts.sum(axis=1, keepdims=True))  # (64 pixels, 17 levels)
    return monte_carlo_mean(-log_p[np.arange(DIMS), test].sum(axis=1))


def gaussian_nll(train: np.ndarray, test: np.ndarray, draws: int = 8, seed: int = 0,
                 ridge: float = 1e-3) -> Estimate:
    """The uniform-dequantization bound on the NLL (nats per test image) of one full-covariance
    Gaussian fitted by maximum likelihood to the uniformly dequantized training images
    (``ridge`` added to the covariance's diagonal keeps it invertible), averaged over ``draws``
    noise draws per test image.

    Example:
        >>> splits = load_digit_splits()
        >>> round(bits_per_dim(gaussian_nll(splits.train, splits.test)).mean, 2)
        2.97
    """
    train, test = as_pixels("train", train), as_pixels("test", test)
    draws = _validate.positive_int("draws", draws)
    seed = _validate.non_negative_int("seed", seed)
    ridge = _validate.finite_float("ridge", ridge, minimum=0.0, strict=True)
    x = uniform_dequantize(train, seed).astype(np.float64)
    mean, covariance = x.mean(axis=0), np.cov(x.T, bias=True) + ridge * np.eye(DIMS)
    cholesky = np.linalg.cholesky(covariance)
    log_norm = -0.5 * DIMS * math.log(2 * math.pi) - np.log(np.diag(cholesky)).sum()
    nll = np.zeros(len(test))
    for draw in range(draws):
        y = uniform_dequantize(test, seed + 1 + draw).astype(np.float64) - mean
        solved = np.linalg.solve(cholesky, y.T)
        nll -= (log_norm - 0.5 * (solved**2).sum(axis=0)) / draws
    return monte_carlo_mean(nll)


def nearest_neighbours(queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the index of the nearest reference image and the Euclidean
    distance to it, in grey levels (queries may be real-valued, e.g. model samples).

    Example:
        >>> refs = np.stack([np.zeros((8, 8)), np.full((8, 8), 16)])
        >>> index, distance = nearest_neighbours(np.full((1, 8, 8), 15.0), refs)
        >>> index.tolist(), distance.round(1).tolist()
        ([1], [8.0])
    """
    q = np.asarray(queries, dtype=np.float64).reshape(len(queries), -1)
    r = np.asarray(references, dtype=np.float64).reshape(len(references), -1)
    if q.shape[1] != DIMS or r.shape[1] != DIMS or len(r) == 0:
        raise ValueError(f"queries and references must be images of {DIMS} pixels, got shapes "
                         f"{np.shape(queries)} and {np.shape(references)}")
    squared = (q**2).sum(1)[:, None] - 2 * q @ r.T + (r**2).sum(1)[None, :]
    index = np.argmin(squared, axis=1)
    return index, np.sqrt(np.maximum(squared[np.arange(len(q)), index], 0.0))

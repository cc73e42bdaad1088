"""The image lab headless (``flowlab train --data digits``): train a digits flow, score it in
bits per dimension against baselines measured in the same run, draw its samples and
interpolations, check it for memorization, and write it all to a folder.

The test score is the importance-weighted bound (:func:`flowlab.studies.digits.train.bits_per_dim_estimate`
with ``importance=True``): like the dequantization bound the flow trains on, an upper bound on
the discrete NLL, but a tighter one; metrics.json gives both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from flowlab import _validate
from flowlab.studies.digits.data import (DigitSplits, bits_per_dim, gaussian_nll, independent_pixels_nll,
                                        load_digit_splits, nearest_neighbours)
from flowlab.studies.digits.flows import ImageFlow, ImageFlowConfig, VariationalDequantizer, make_image_flow
from flowlab.studies.digits.train import DIGITS_SETTINGS, bits_per_dim_estimate, fit_digits, sample_images
from flowlab.train import TrainSettings

__all__ = ["DEQUANTIZATIONS", "baselines", "interpolate", "memorization", "run_digits"]

DEQUANTIZATIONS = ("uniform", "variational")
#: Noise draws per test image for the importance-weighted bound that metrics.json reports.
TEST_DRAWS = 64


def baselines(splits: DigitSplits, seed: int = 0) -> dict[str, float]:
    """Test bits per dimension of the two baselines, fitted on ``splits.train``: independent
    categorical pixels (exact) and a full-covariance Gaussian (the uniform-dequantization bound).

    Example:
        >>> {k: round(v, 2) for k, v in baselines(load_digit_splits()).items()}
        {'independent_pixels': 2.42, 'gaussian': 2.97}
    """
    return {"independent_pixels": bits_per_dim(independent_pixels_nll(splits.train, splits.test)).mean,
            "gaussian": bits_per_dim(gaussian_nll(splits.train, splits.test, seed=seed)).mean}


def interpolate(flow: ImageFlow, first: np.ndarray, second: np.ndarray, steps: int = 8) -> np.ndarray:
    """Images on the straight line in z between two images (each taken at its pixels' bin
    centres, mapped to z by the flow): ``steps`` images from ``first`` to ``second``, shape
    (steps, 8, 8), grey levels."""
    steps = _validate.positive_int("steps", steps)
    ends = np.stack([np.asarray(first), np.asarray(second)]).reshape(2, -1).astype(np.float32) + 0.5
    z = flow.bijector.inverse(ends).numpy()
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    x = flow.bijector.forward((1 - t) * z[0] + t * z[1]).numpy()
    return np.clip(np.floor(x), 0, 16).reshape(steps, 8, 8).astype(np.int32)


def memorization(samples: np.ndarray, splits: DigitSplits) -> dict[str, float]:
    """Median distance (grey levels) from each sample to its nearest training image, beside the
    same for the test images: samples that copy training images sit much nearer than test ones."""
    _, to_samples = nearest_neighbours(samples, splits.train)
    _, to_test = nearest_neighbours(splits.test, splits.train)
    return {"samples_median_nearest_distance": float(np.median(to_samples)),
            "test_median_nearest_distance": float(np.median(to_test)),
            "samples_nearer_than_any_test_image": float(np.mean(to_samples < to_test.min()))}


def _figures(out: Path, flow: ImageFlow, splits: DigitSplits, history: dict, scores: dict, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flowlab.studies.digits import plots as image_plots

    samples = sample_images(flow, 30, seed=seed)
    index, distance = nearest_neighbours(samples[:10], splits.train)
    pairs = [(splits.test[2 * i], splits.test[2 * i + 1]) for i in range(4)]
    figures = {
        "data.png": lambda: image_plots.plot_image_grid(splits.train[:30], "Training digits (8x8, 17 grey levels)"),
        "samples.png": lambda: image_plots.plot_image_grid(samples, "Samples of the trained flow"),
        "nearest.png": lambda: image_plots.plot_nearest(samples[:10], splits.train[index], distance),
        "interpolation.png": lambda: image_plots.plot_image_grid(
            np.concatenate([interpolate(flow, a, b) for a, b in pairs]),
            "Straight lines in z between pairs of test digits", columns=8),
        "loss.png": lambda: image_plots.plot_bits_per_dim(history, {
            "independent pixels": scores["independent_pixels"], "Gaussian": scores["gaussian"]}),
    }
    for name, draw in figures.items():
        draw()
        plt.savefig(out / name, dpi=100, bbox_inches="tight")
        plt.close("all")


def run_digits(out: Path, config: ImageFlowConfig | None = None, settings: TrainSettings = DIGITS_SETTINGS,
               dequantization: str = "variational", progress: bool = True) -> dict:
    """Train a digits flow on the split of ``settings.seed``, score it and the baselines on the
    test images, and write ``metrics.json``, the figures and the saved flow (``flow/``, reload with
    :func:`flowlab.io.load_image_flow`) into ``out``. Returns the metrics. ``config`` None: the
    default :class:`ImageFlowConfig`.

    Raises:
        flowlab.TrainingDiverged: if training diverges.
    """
    from flowlab.studies.digits.io import save_image_flow

    dequantization = _validate.one_of("dequantization", dequantization, DEQUANTIZATIONS)
    config = ImageFlowConfig() if config is None else config
    splits = load_digit_splits(seed=settings.seed)
    flow = make_image_flow(config)
    dequantizer = VariationalDequantizer(seed=settings.seed) if dequantization == "variational" else None
    start = time.perf_counter()
    history = fit_digits(flow, splits, settings, dequantizer=dequantizer, progress=progress).history
    train_seconds = time.perf_counter() - start
    test = bits_per_dim_estimate(flow, splits.test, dequantizer, draws=TEST_DRAWS, seed=settings.seed + 1,
                                 importance=True)
    bound = bits_per_dim_estimate(flow, splits.test, dequantizer, draws=4, seed=settings.seed + 1)
    reference = baselines(splits, seed=settings.seed)
    metrics = {
        "data": "digits", "dequantization": dequantization, "flow": config.to_dict(),
        "epochs": settings.epochs, "train_seconds": round(train_seconds, 3),
        "test_bits_per_dim": test.mean, "test_bits_per_dim_standard_error": test.standard_error,
        "test_bound": f"importance-weighted over {TEST_DRAWS} noise draws per image",
        "test_bits_per_dim_dequantization_bound": bound.mean,
        "best_validation_bits_per_dim": float(min(history["val_loss"])),
        "baseline_bits_per_dim": reference,
        "ratio_to_independent_pixels": test.mean / reference["independent_pixels"],
        "split": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test),
                  "seed": settings.seed},
        **memorization(sample_images(flow, 300, seed=settings.seed + 2), splits),
        "settings": {"batch_size": settings.batch_size, "learning_rate": settings.learning_rate,
                     "seed": settings.seed},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    save_image_flow(flow, out / "flow", dequantizer)
    _figures(out, flow, splits, history, reference, settings.seed)
    return metrics

"""Figures for the digits flows (:mod:`flowlab.studies.digits.flows`): image grids, samples beside their
nearest training images, interpolations, and the bits-per-dimension curve. Every figure has a
title; grids say what a tile is, curves have labelled axes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from flowlab.studies.digits.data import LEVELS, SIDE

__all__ = ["plot_image_grid", "plot_nearest", "plot_bits_per_dim"]


def _images(images: np.ndarray) -> np.ndarray:
    array = np.asarray(images, dtype=np.float64)
    if array.ndim < 2 or array.size % (SIDE * SIDE) or len(array) == 0:
        raise ValueError(f"images must be 8x8 images, shape (n, 8, 8) or (n, 64), got {array.shape}")
    return array.reshape(-1, SIDE, SIDE)


def plot_image_grid(images: np.ndarray, title: str, columns: int = 10,
                    row_labels: Sequence[str] | None = None, tile_inches: float = 0.8) -> plt.Figure:
    """Images in rows of ``columns`` tiles (grey levels 0 black to 16 white), with ``title`` and,
    optionally, a label at the left of each row.

    Example:
        >>> figure = plot_image_grid(np.zeros((3, 8, 8)), "Three blank images", columns=3)
        >>> len(figure.axes), figure._suptitle.get_text()
        (3, 'Three blank images')
    """
    images = _images(images)
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * tile_inches, rows * tile_inches + 0.6),
                                squeeze=False)
    for index, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if index < len(images):
            ax.imshow(images[index], cmap="gray", vmin=0, vmax=LEVELS - 1)
        else:
            ax.axis("off")
    for row, label in enumerate(row_labels or ()):
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_nearest(samples: np.ndarray, nearest: np.ndarray, distances: np.ndarray,
                 title: str = "Samples (top) and their nearest training images (bottom)") -> plt.Figure:
    """Each sample above the training image nearest to it, titled with their distance.

    Example:
        >>> figure = plot_nearest(np.zeros((2, 8, 8)), np.ones((2, 8, 8)), np.array([8.0, 8.0]))
        >>> len(figure.axes)
        4
    """
    samples, nearest = _images(samples), _images(nearest)
    figure = plot_image_grid(np.concatenate([samples, nearest]), title, columns=len(samples),
                             row_labels=["sample", "nearest\ntraining"])
    for ax, distance in zip(figure.axes, np.asarray(distances, dtype=float)):
        ax.set_title(f"{distance:.0f}", fontsize=7)
    return figure


def plot_bits_per_dim(history: Mapping[str, Sequence[float]], baselines: Mapping[str, float] | None = None,
                      title: str = "Training: bits per dimension") -> plt.Axes:
    """The training and validation bound per epoch, in bits per dimension, with horizontal lines
    at the ``baselines`` (name -> bits/dim).

    Example:
        >>> ax = plot_bits_per_dim({"loss": [3.0, 2.5], "val_loss": [2.9, 2.6]}, {"independent pixels": 2.42})
        >>> ax.get_ylabel()
        'bits per dimension'
    """
    ax = plt.figure(figsize=(6, 4)).gca()
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="training (this epoch's batches)")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], label="validation")
    for (name, value), style in zip((baselines or {}).items(), (":", "--", "-.")):
        ax.axhline(value, color="grey", linestyle=style, label=f"{name} ({value:.2f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per dimension")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax

"""Training and scoring a digits flow (:mod:`flowlab.studies.digits.flows`) on dequantized pixels.

The loss is minus the dequantization bound in bits per dimension (:mod:`flowlab.studies.digits.data`):
each step draws fresh noise ``u`` for its batch, uniform or from a
:class:`~flowlab.studies.digits.flows.VariationalDequantizer`, and the flow maximizes
``log p(x + u) - log q(u | x)``. Training is :func:`flowlab.train.run_training`'s loop (NaN
stop, progress), with the validation images' bound each epoch and the best epoch's weights
kept.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from flowlab import _validate
from flowlab.data import Estimate, monte_carlo_mean
from flowlab.studies.digits.data import DIMS, DigitSplits, as_pixels, uniform_dequantize
from flowlab.studies.digits.flows import ImageFlow, VariationalDequantizer, initialize_actnorms
from flowlab.train import TrainSettings, batch_stream, run_training

__all__ = ["DIGITS_SETTINGS", "DequantizedBound", "fit_digits", "bits_per_dim_estimate", "sample_images"]

_BITS = 1.0 / (DIMS * math.log(2))

#: How a digits flow trains by default (``flowlab train --data digits``): the moons' recipe (Adam
#: warming up, then a cosine decay) at the batch size and rate measured best on the digits
#: (``benchmarks/bench_digits.py``, figures in ``benchmarks/README.md``).
DIGITS_SETTINGS = TrainSettings(epochs=60, batch_size=128, learning_rate=3e-3)


def _logistic(uniform: tf.Tensor) -> tf.Tensor:
    return tf.math.log(uniform) - tf.math.log1p(-uniform)


class DequantizedBound(tf.keras.Model):
    """A Keras model around a digits flow whose ``loss`` is minus the dequantized lower bound
    on ``log P(x)``, in bits per dimension. ``dequantizer`` None: uniform noise.

    Noise comes from a generator seeded by ``seed`` (training) and from stateless draws keyed
    by the batch (validation: the same noise every epoch, so epochs compare fairly)."""

    def __init__(self, flow: ImageFlow, dequantizer: VariationalDequantizer | None = None, seed: int = 0):
        super().__init__()
        self.flow, self.dequantizer = flow, dequantizer
        self.flow_variables = list(flow.trainable_variables)
        self.dequantizer_variables = list(dequantizer.trainable_variables) if dequantizer else []
        self.noise = tf.random.Generator.from_seed(_validate.non_negative_int("seed", seed))

    def bound(self, pixels: tf.Tensor, uniform: tf.Tensor) -> tf.Tensor:
        """Per image, ``log p(x + u) - log q(u | x)`` in nats, ``u`` made from ``uniform`` draws."""
        pixels = tf.cast(pixels, tf.float32)
        if self.dequantizer is None:
            return self.flow.log_prob(pixels + uniform)
        u, log_q = self.dequantizer.sample(pixels, _logistic(uniform))
        return self.flow.log_prob(pixels + u) - log_q

    def _uniform(self, shape: tf.TensorShape) -> tf.Tensor:
        return self.noise.uniform(shape, minval=1e-6, maxval=1.0 - 1e-6)

    def train_step(self, data):
        pixels = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(self.bound(pixels, self._uniform(tf.shape(pixels)))) * _BITS
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss}

    def test_step(self, data):
        pixels = data[0] if isinstance(data, tuple) else data
        key = tf.stack([tf.cast(tf.reduce_sum(pixels), tf.int32), 7])
        uniform = tf.random.stateless_uniform(tf.shape(pixels), key, minval=1e-6, maxval=1.0 - 1e-6)
        return {"loss": -tf.reduce_mean(self.bound(pixels, uniform)) * _BITS}


def fit_digits(flow: ImageFlow, splits: DigitSplits, settings: TrainSettings = DIGITS_SETTINGS,
               dequantizer: VariationalDequantizer | None = None, progress: bool = True) -> tf.keras.callbacks.History:
    """Train ``flow`` (and ``dequantizer``, if given) on ``splits.train`` by the dequantized
    bound; the ActNorms start from one uniformly dequantized batch; each epoch logs
    ``loss`` and ``val_loss`` (bits/dim on ``splits.validation``) and the weights of the epoch with
    the lowest ``val_loss`` are restored at the end.

    Raises:
        flowlab.TrainingDiverged: if an epoch's loss is NaN or infinite.
    """
    train = as_pixels("splits.train", splits.train).astype(np.float32)
    validation = as_pixels("splits.validation", splits.validation).astype(np.float32)
    initialize_actnorms(flow, uniform_dequantize(train[:512], seed=settings.seed))
    model = DequantizedBound(flow, dequantizer, seed=settings.seed)
    model.compile(optimizer=settings.optimizer(len(train)), steps_per_execution=settings.steps_per_execution,
                  jit_compile=settings.jit_compile)
    keep_best = tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.epochs,
                                                 restore_best_weights=True)
    return run_training(model, batch_stream(train, settings), settings, settings.steps_per_epoch(len(train)),
                        progress, callbacks=[keep_best],
                        validation=(validation, np.zeros(len(validation), np.float32)))


def bits_per_dim_estimate(flow: ImageFlow, images: np.ndarray, dequantizer: VariationalDequantizer | None = None,
                          draws: int = 4, seed: int = 0, importance: bool = False) -> Estimate:
    """Bits per dimension of ``images`` under the flow: an upper bound on the discrete NLL,
    ``-log2 P(x) / 64``, with its standard error over the images. The noise is uniform, or the
    ``dequantizer``'s (pass the one the flow was trained with).

    ``importance=False``: the dequantization bound, each image's ``log p(x + u) - log q(u | x)``
    averaged over ``draws`` noise draws (what training maximizes). ``importance=True``: the
    importance-weighted bound over the ``draws`` draws, ``log mean_k p(x + u_k) / q(u_k | x)``,
    which is never looser and tightens towards ``log P(x)`` as ``draws`` grows (Burda et al.).
    """
    pixels = as_pixels("images", images).astype(np.float32)
    draws = _validate.positive_int("draws", draws)
    generator = np.random.default_rng(_validate.non_negative_int("seed", seed))
    model = DequantizedBound(flow, dequantizer)
    bounds = np.zeros((draws, len(pixels)))
    for draw in range(draws):
        uniform = np.clip(generator.random(pixels.shape), 1e-6, 1 - 1e-6).astype(np.float32)
        for start in range(0, len(pixels), 512):
            chunk = slice(start, start + 512)
            bounds[draw, chunk] = model.bound(tf.constant(pixels[chunk]), tf.constant(uniform[chunk])).numpy()
    if importance:
        peak = bounds.max(axis=0)
        per_image = peak + np.log(np.mean(np.exp(bounds - peak), axis=0))
    else:
        per_image = bounds.mean(axis=0)
    return monte_carlo_mean(-per_image * _BITS)


def sample_images(flow: ImageFlow, n: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
    """``n`` images drawn from the flow, shape (n, 8, 8), as grey levels: the continuous sample
    rounded down to its bin (clipped to 0..16). ``temperature`` scales the base noise (1: the
    model's own distribution; below 1: the more typical images)."""
    n = _validate.positive_int("n", n)
    temperature = _validate.finite_float("temperature", temperature, minimum=0.0, strict=True)
    z = tf.random.stateless_normal([n, DIMS], seed=[_validate.non_negative_int("seed", seed), 11]) * temperature
    x = flow.bijector.forward(z).numpy()
    return np.clip(np.floor(x), 0, 16).reshape(n, 8, 8).astype(np.int32)

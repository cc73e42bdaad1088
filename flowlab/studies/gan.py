"""A generative adversarial network (GAN) for 2-D points, for comparing with a flow on the moons.

A generator MLP maps 2-D Gaussian noise to points; a discriminator MLP maps points to a logit,
"real" vs "generated". Both train with Adam, one discriminator step and one generator step per
batch, on the non-saturating loss of Goodfellow et al. (2014):

    discriminator: -log D(x) - log(1 - D(G(z)))       generator: -log D(G(z))

(with ``D = sigmoid(logit)``, computed as softplus of logits).

**No density.** A GAN is an implicit model: its distribution is the pushforward of the noise
through the generator, a network that is neither invertible nor constrained to be, so there is
no change-of-variables formula for ``p(x)``: several z can land on one x, and the generator's
image of the 2-D noise can even fold onto a curve (no density at all). Only samples can be
scored (:func:`flowlab.measure.sample_metrics`); a GAN reports no NLL or bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from flowlab import _validate
from flowlab.flows import ACTIVATIONS
from flowlab.train import TrainSettings, batch_stream, learning_rate_schedule, run_training

__all__ = ["NOISE_DIM", "GAN", "fit_gan"]

#: Dimension of the generator's Gaussian noise.
NOISE_DIM = 2


def _mlp(hidden_units: tuple[int, ...], activation: str, outputs: int, seed: int, part: int,
         name: str) -> tf.keras.Sequential:
    """Dense layers from 2-D inputs to ``outputs``, built, each with its own seeded Glorot start."""
    def glorot(j: int) -> tf.keras.initializers.Initializer:
        return tf.keras.initializers.GlorotUniform(seed=(seed * 10 + part) * 100 + j)
    layers = [tf.keras.layers.Dense(units, activation=activation, kernel_initializer=glorot(j))
              for j, units in enumerate(hidden_units)]
    layers.append(tf.keras.layers.Dense(outputs, kernel_initializer=glorot(99)))
    network = tf.keras.Sequential(layers, name=name)
    network.build((None, 2))
    return network


class GAN(tf.keras.Model):
    """An MLP generator (2-D noise to 2-D points) and an MLP discriminator (point to logit), both
    with ``hidden_units`` and ``activation``, weights seeded by ``seed``. Train with
    :func:`fit_gan`; ``model(z)`` is the generator. It has no ``log_prob``: see the module's
    docstring.

    Example:
        >>> gan = GAN(hidden_units=(8,), seed=1)
        >>> gan.sample(3, seed=0).shape
        (3, 2)
    """

    def __init__(self, hidden_units: Sequence[int] = (64, 64, 64), activation: str = "relu",
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = _validate.hidden_units("hidden_units", hidden_units)
        self.activation = _validate.one_of("activation", activation, ACTIVATIONS)
        self.seed = _validate.non_negative_int("seed", seed)
        self.generator = _mlp(self.hidden_units, self.activation, 2, self.seed, 1, "generator")
        self.discriminator = _mlp(self.hidden_units, self.activation, 1, self.seed, 2, "discriminator")
        self.train_seed = 0  # fit_gan sets these: the noise's seed and the discriminator's Adam
        self.d_optimizer: tf.keras.optimizers.Optimizer | None = None
        self.trackers = [tf.keras.metrics.Mean(name) for name in ("loss", "d_loss", "g_loss")]

    @property
    def metrics(self) -> list[tf.keras.metrics.Metric]:
        return self.trackers

    def call(self, z: tf.Tensor) -> tf.Tensor:
        return self.generator(z)

    def train_step(self, data):
        x, _ = data
        step = tf.cast(self.optimizer.iterations, tf.int32)
        shape = tf.stack([tf.shape(x)[0], NOISE_DIM])
        z_d = tf.random.stateless_normal(shape, seed=tf.stack([self.train_seed, 2 * step]))
        z_g = tf.random.stateless_normal(shape, seed=tf.stack([self.train_seed, 2 * step + 1]))
        with tf.GradientTape() as tape:
            real, fake = self.discriminator(x), self.discriminator(self.generator(z_d))
            d_loss = tf.reduce_mean(tf.nn.softplus(-real) + tf.nn.softplus(fake))
        d_vars = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        with tf.GradientTape() as tape:
            g_loss = tf.reduce_mean(tf.nn.softplus(-self.discriminator(self.generator(z_g))))
        g_vars = self.generator.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        for tracker, value in zip(self.trackers, (d_loss + g_loss, d_loss, g_loss)):
            tracker.update_state(value)
        return {tracker.name: tracker.result() for tracker in self.trackers}

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` generated points as float32 ``(n, 2)``: the same seed, the same points.

        Example:
            >>> gan = GAN(hidden_units=(8,))
            >>> bool(np.array_equal(gan.sample(4, seed=3), gan.sample(4, seed=3)))
            True
        """
        n = _validate.positive_int("n", n)
        seed = _validate.non_negative_int("seed", seed)
        z = tf.random.stateless_normal([n, NOISE_DIM], tf.constant([seed, 0], tf.int32))
        return self.generator(z).numpy()

    def discriminate(self, x: np.ndarray) -> np.ndarray:
        """The discriminator's probability that each point is real, ``sigmoid(logit)``."""
        x = _validate.points("x", x).astype(np.float32)
        return tf.sigmoid(self.discriminator(x))[:, 0].numpy().astype(np.float64)


#: Adam's beta_1 for both networks: 0.5, the usual GAN choice (Radford et al., 2016) that damps
#: the momentum carried across the two players' alternating updates.
ADAM_BETA_1 = 0.5


def _adam(settings: TrainSettings, steps_per_epoch: int) -> tf.keras.optimizers.Adam:
    schedule = learning_rate_schedule(settings.learning_rate, settings.epochs * steps_per_epoch,
                                      settings.effective_warmup_epochs * steps_per_epoch)
    return tf.keras.optimizers.Adam(schedule, beta_1=ADAM_BETA_1)


#: Defaults for :func:`fit_gan`: the flow's recipe (batch 128, 80 epochs, warm-up, cosine) with a
#: peak rate of 1e-3. One trial on 10,000 moons (seed 0): at 1e-3 the samples' mean exact
#: log-density was -0.06 and the energy distance 0.0012; at 3e-3, -0.36 and 0.0019.
GAN_SETTINGS = TrainSettings(learning_rate=1e-3)


def fit_gan(gan: GAN, data: np.ndarray, settings: TrainSettings = GAN_SETTINGS, progress: bool = True,
            callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> tf.keras.callbacks.History:
    """Train ``gan`` on ``data``; return the Keras history: ``d_loss`` and ``g_loss`` (each
    epoch's mean, in nats) and ``loss``, their sum (what the progress lines and the NaN stop read).
    Neither falls steadily as a likelihood does: the two players push against each other.

    Same loop as :func:`flowlab.train.fit`: the same batches, a warm-up + cosine schedule for
    each player's Adam (``beta_1 = 0.5``), progress lines and the NaN stop. The noise comes from
    ``settings.seed`` and the step: the same settings and initial GAN give the same losses.

    Raises:
        TrainingDiverged: if the loss becomes NaN or infinite.

    Example:
        >>> from flowlab.data import make_moons
        >>> history = fit_gan(GAN(hidden_units=(8,)), make_moons(256),
        ...                   TrainSettings(epochs=1, batch_size=128), progress=False)
        >>> sorted(history.history)
        ['d_loss', 'g_loss', 'loss']
    """
    if not isinstance(gan, GAN):
        raise ValueError(f"gan must be a flowlab.gan.GAN, got {type(gan).__name__}")
    data = _validate.points("data", data).astype(np.float32)
    steps_per_epoch = settings.steps_per_epoch(len(data))
    gan.train_seed = settings.seed
    gan.d_optimizer = _adam(settings, steps_per_epoch)
    gan.compile(optimizer=_adam(settings, steps_per_epoch), jit_compile=settings.jit_compile,
                steps_per_execution=settings.steps_per_execution)
    return run_training(gan, batch_stream(data, settings), settings, steps_per_epoch, progress, callbacks)

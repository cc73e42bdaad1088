"""Training a flow with Keras on the negative log-likelihood. Scoring it against the exact
two-moons density is :func:`flowlab.measure.evaluate`'s."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.data import make_moons
from flowlab.flows import build, initialize_actnorms

tfd = tfp.distributions

__all__ = [
    "TrainingDiverged",
    "TrainSettings",
    "nll_loss",
    "LogProb",
    "build_model",
    "learning_rate_schedule",
    "ProgressPrinter",
    "StopOnNaN",
    "batch_stream",
    "run_training",
    "fit",
]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite during training."""


def nll_loss(y_true: tf.Tensor, log_prob: tf.Tensor) -> tf.Tensor:
    """Keras loss: the negative log-likelihood. ``y_true`` holds the fake zero
    labels Keras insists on and is ignored."""
    del y_true
    return -log_prob


class LogProb(tf.keras.layers.Layer):
    """A Keras layer computing ``flow.log_prob``, owning the flow's weights.

    The lab builds its model functionally, ``tf.keras.Model(x, td.log_prob(x))``,
    which works for a MAF but not for flows whose log_prob loops (an IAF's
    ``tf.while_loop`` rejects Keras' symbolic tensors); inside a layer's ``call``
    every flow works.
    """

    def __init__(self, flow: tfd.Distribution, ndim: int, **kwargs):
        super().__init__(**kwargs)
        self.flow = build(flow, ndim)  # its weights must exist for Keras to track them
        self.flow_variables = list(flow.trainable_variables)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.flow.log_prob(x)


def build_model(flow: tfd.Distribution, ndim: int = 2) -> tf.keras.Model:
    """A Keras model mapping points of shape ``(batch, ndim)`` to their log-density.

    Example:
        >>> from flowlab.flows import FlowConfig, make_flow
        >>> build_model(make_flow(FlowConfig(num_layers=1, hidden_units=(4,)))).output_shape
        (None,)
    """
    ndim = _validate.positive_int("ndim", ndim)
    x = tf.keras.Input(shape=(ndim,), dtype=tf.float32)
    return tf.keras.Model(x, LogProb(flow, ndim)(x))


def learning_rate_schedule(learning_rate: float, total_steps: int,
                           warmup_steps: int = 0) -> tf.keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up to ``learning_rate`` over ``warmup_steps``, then cosine decay to 0."""
    learning_rate = _validate.finite_float("learning_rate", learning_rate, minimum=0.0, strict=True)
    total_steps = _validate.positive_int("total_steps", total_steps)
    warmup_steps = _validate.non_negative_int("warmup_steps", warmup_steps)
    if warmup_steps >= total_steps:
        raise ValueError(f"warmup_steps must be < total_steps ({total_steps}), got {warmup_steps}")
    if warmup_steps == 0:
        return tf.keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    return tf.keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=total_steps - warmup_steps,
        warmup_target=learning_rate,
        warmup_steps=warmup_steps,
    )


class ProgressPrinter(tf.keras.callbacks.Callback):
    """Print one line when training starts (so a reader sees at once that it runs: TensorFlow builds
    the training graph before the first epoch ends, several seconds), then one short line every
    ``every`` epochs and after the first and last: epoch, loss, elapsed seconds.

    Example:
        >>> printer = ProgressPrinter(epochs=80)
        >>> printer.on_train_begin()
        training for 80 epochs: a line after epoch 1, every 10 epochs and at the end (epoch 1 includes building TensorFlow's graph)
    """

    def __init__(self, epochs: int, every: int = 10):
        super().__init__()
        self.epochs = _validate.positive_int("epochs", epochs)
        self.every = _validate.positive_int("every", every)
        self._start = 0.0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        print(f"training for {self.epochs} epochs: a line after epoch 1, every {self.every} epochs and at the "
              "end (epoch 1 includes building TensorFlow's graph)", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every == 0 or done == self.epochs or done == 1:
            logs = logs or {}
            extra = f"  val_loss {logs['val_loss']:.4f}" if "val_loss" in logs else ""
            print(f"epoch {done:>{len(str(self.epochs))}}/{self.epochs}  "
                  f"loss {logs.get('loss', float('nan')):.4f}{extra}  "
                  f"({time.perf_counter() - self._start:.1f} s)", flush=True)


class StopOnNaN(tf.keras.callbacks.Callback):
    """Raise :class:`TrainingDiverged` with advice when an epoch's loss is not finite.

    It checks once an epoch, at the epoch's end (so a diverged run stops within one epoch),
    never per batch, which would make Keras wait for every step (``benchmarks/README.md``).
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise TrainingDiverged(
                f"training diverged: the loss became {float(loss)} in epoch {epoch + 1}. "
                "Try a smaller learning rate or a larger batch size."
            )


@dataclass(frozen=True)
class TrainSettings:
    """How :func:`fit` trains: ``epochs`` passes of ``len(data) // batch_size`` full batches
    (:func:`batch_stream`), Adam warming up linearly over the first ``warmup_epochs`` epochs
    (None: ``epochs // 8``) to ``learning_rate``, then decaying along a cosine to zero, with
    ``steps_per_execution`` steps per call into TensorFlow (the same numbers, less Python
    overhead). The defaults are the recipe chosen by ``benchmarks/bench_training.py`` and
    ``benchmarks/bench_stalls.py``; what was measured and left out, and how often the affine
    flows still stall in a poor optimum, is in ``benchmarks/README.md``.

    ``deterministic`` (default True) makes the same seed give the same losses bit for bit:
    while :func:`fit` runs, TensorFlow's graph optimizer (Grappler) is turned off, whose
    rewrites otherwise reorder floating-point sums from run to run. The switch is
    **process-wide**: functions other threads trace meanwhile run unoptimized too. The
    previous value comes back when ``fit`` returns or raises. With ``deterministic=False``
    ``fit`` leaves Grappler as it finds it (training is faster; see
    ``benchmarks/README.md``). ``fit`` never reseeds the global generators: its randomness
    (batch order, initial weights) comes from ``seed`` and the flow's own seeds."""

    epochs: int = 80
    batch_size: int = 128
    learning_rate: float = 3e-3
    warmup_epochs: int | None = None
    seed: int = 0
    jit_compile: bool = False
    steps_per_execution: int = 20
    deterministic: bool = True

    def __post_init__(self):
        for name in ("epochs", "batch_size", "learning_rate", "seed"):  # the bounds of flowlab train's options
            _validate.within(name, name, getattr(self, name))
        if self.warmup_epochs is not None:
            _validate.non_negative_int("warmup_epochs", self.warmup_epochs)
        _validate.positive_int("steps_per_execution", self.steps_per_execution)
        if not isinstance(self.deterministic, bool):
            raise ValueError(f"deterministic must be True or False, got {self.deterministic!r}")
        if self.effective_warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs must be < epochs ({self.epochs}), got {self.warmup_epochs}")

    @property
    def effective_warmup_epochs(self) -> int:
        """Epochs of warm-up this run uses: ``warmup_epochs``, or an eighth of the epochs.

        Example:
            >>> [TrainSettings(**kw).effective_warmup_epochs for kw in ({}, {"epochs": 4}, {"warmup_epochs": 1})]
            [10, 0, 1]
        """
        return self.epochs // 8 if self.warmup_epochs is None else self.warmup_epochs

    def steps_per_epoch(self, n_samples: int) -> int:
        """Full batches in one pass over ``n_samples`` points.

        Example:
            >>> TrainSettings(batch_size=128).steps_per_epoch(10_000)
            78
        """
        n_samples = _validate.positive_int("n_samples", n_samples)
        if n_samples < self.batch_size:
            raise ValueError(f"batch_size must be at most the number of training points ({n_samples}), "
                             f"got {self.batch_size}")
        return n_samples // self.batch_size

    def optimizer(self, n_samples: int) -> tf.keras.optimizers.Optimizer:
        """Adam on the warm-up + cosine schedule for ``n_samples`` training points."""
        steps_per_epoch = self.steps_per_epoch(n_samples)
        schedule = learning_rate_schedule(self.learning_rate, self.epochs * steps_per_epoch,
                                          self.effective_warmup_epochs * steps_per_epoch)
        return tf.keras.optimizers.Adam(schedule)


def batch_stream(data: np.ndarray, settings: TrainSettings) -> tf.data.Dataset:
    """``(points, fake zero labels)`` batches for :func:`fit`: each epoch is a fresh order of
    ``data`` (seeded by ``settings.seed`` and the epoch) cut into full batches; the last
    ``len(data) % batch_size`` points of that order sit the epoch out (the next epoch
    reshuffles all of them).

    Every batch has the same, static shape and tf.data's autotuning is off: the training step is
    traced once, and no background thread outlives ``fit`` (why, measured: ``benchmarks/README.md``).
    The same settings give the same batches; the same losses bit for bit also need
    ``TrainSettings.deterministic``.

    Example:
        >>> batches = batch_stream(np.arange(20, dtype=np.float32).reshape(10, 2),
        ...                        TrainSettings(epochs=2, batch_size=4))
        >>> [tuple(x.shape) for x, _ in batches]
        [(4, 2), (4, 2), (4, 2), (4, 2)]
    """
    batch_size, seed = settings.batch_size, settings.seed
    steps = settings.steps_per_epoch(len(data))
    points = tf.constant(data, dtype=tf.float32)

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(tf.range(len(data)), seed=tf.stack([seed, epoch]))
        batches = tf.reshape(tf.gather(points, order[:steps * batch_size]), [steps, batch_size, -1])
        return tf.data.Dataset.from_tensor_slices((batches, tf.zeros([steps, batch_size])))

    options = tf.data.Options()
    options.autotune.enabled = False
    return (tf.data.Dataset.range(settings.epochs, output_type=tf.int32).flat_map(epoch_batches)
            .with_options(options))


@contextlib.contextmanager
def _graph_rewrites_off() -> Iterator[None]:
    """Turn TensorFlow's graph optimizer (Grappler) off for the functions traced inside, and
    put the previous setting back afterwards, also after an exception. Process-wide.

    Grappler's rewrites reorder floating-point sums from run to run; without them the same seed
    gives the same numbers (what it costs in speed: ``benchmarks/README.md``).
    """
    was_off = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": was_off})


def fit(flow: tfd.Distribution, data: np.ndarray, settings: TrainSettings = TrainSettings(),
        progress: bool = True,
        callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> tf.keras.callbacks.History:
    """Train ``flow`` on ``data`` by maximum likelihood; return the Keras history.

    The same ``settings`` and the same initial flow give the same losses (with
    ``settings.deterministic``). The caller's global random generators (Python's, NumPy's,
    TensorFlow's) are not reseeded: the batch order comes from ``settings.seed``.

    ``callbacks`` are extra Keras callbacks (e.g. :class:`flowlab.anatomy.DensitySnapshots`).

    Raises:
        TrainingDiverged: if the loss becomes NaN or infinite.

    Example:
        >>> from flowlab.flows import FlowConfig, make_flow
        >>> flow = make_flow(FlowConfig(num_layers=1, hidden_units=(8,)))
        >>> history = fit(flow, make_moons(256), TrainSettings(epochs=2, batch_size=64), progress=False)
        >>> len(history.history["loss"])
        2
    """
    data = _validate.points("data", data).astype(np.float32)
    model = build_model(flow, ndim=data.shape[1])
    initialize_actnorms(flow, data[:4096])  # any ActNorm not yet set starts standardized
    model.compile(optimizer=settings.optimizer(len(data)), loss=nll_loss,
                  jit_compile=settings.jit_compile,
                  steps_per_execution=settings.steps_per_execution)
    return run_training(model, batch_stream(data, settings), settings, settings.steps_per_epoch(len(data)),
                        progress, callbacks)


def run_training(model: tf.keras.Model, batches: tf.data.Dataset, settings: TrainSettings,
                 steps_per_epoch: int, progress: bool = True,
                 callbacks: Sequence[tf.keras.callbacks.Callback] = (),
                 validation: tuple[np.ndarray, np.ndarray] | None = None) -> tf.keras.callbacks.History:
    """The loop every flowlab model trains with: Keras' ``fit`` on a compiled ``model`` for
    ``settings.epochs`` epochs of ``steps_per_epoch`` batches, with :class:`StopOnNaN` (on the
    ``loss`` the model logs), a :class:`ProgressPrinter` when ``progress``, and Grappler off while
    it runs when ``settings.deterministic``. ``validation`` (inputs, labels), if given, is scored
    after every epoch as ``val_loss``. :func:`fit`, the VAE, GAN and reverse-KL trainers
    (:mod:`flowlab.studies.vae`, :mod:`flowlab.studies.gan`, :mod:`flowlab.studies.reverse_kl`) and the digits flows'
    (:mod:`flowlab.studies.digits.train`) all call it.

    Raises:
        TrainingDiverged: if an epoch's loss is NaN or infinite.
    """
    steps_per_epoch = _validate.positive_int("steps_per_epoch", steps_per_epoch)
    hooks: list[tf.keras.callbacks.Callback] = [StopOnNaN(), *callbacks]
    if progress:
        hooks.append(ProgressPrinter(settings.epochs))
    with _graph_rewrites_off() if settings.deterministic else contextlib.nullcontext():
        return model.fit(batches, epochs=settings.epochs, steps_per_epoch=steps_per_epoch,
                         callbacks=hooks, verbose=0, validation_data=validation, validation_batch_size=512)

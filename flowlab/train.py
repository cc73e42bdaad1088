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
from flowlab.flows import build

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
    """Print one short line every ``every`` epochs: epoch, loss, elapsed seconds."""

    def __init__(self, epochs: int, every: int = 10):
        super().__init__()
        self.epochs = _validate.positive_int("epochs", epochs)
        self.every = _validate.positive_int("every", every)
        self._start = 0.0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

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

    Checked once an epoch, not every batch: a batch-level callback makes Keras
    wait for every step's loss and slows training several-fold.
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
    """How :func:`fit` trains. The defaults are the recipe measured in
    ``benchmarks/bench_training.py`` and ``benchmarks/bench_stalls.py``: batches of 128
    instead of 32, Adam warming up over the first eighth of the epochs (10 of 80) to 3e-3
    then decaying along a cosine to zero, and 20 steps per call into TensorFlow (same
    numbers, less Python overhead). An epoch is ``len(data) // batch_size`` full batches
    (see :func:`batch_stream`). ``warmup_epochs`` (None: ``epochs // 8``) sets the warm-up
    in epochs. Measured and left out: XLA (slower here, and it changed the results),
    gradient clipping and a lower Adam beta_2 (worse), standardizing the data inside the
    flow (no gain), a peak rate of 1e-3 (more stalls), and screening several initial
    weights by their NLL after a few epochs (it kept a worse start). Some runs of the affine
    flows stall in a poor optimum that longer training does not leave; bounded log-scales
    (:func:`flowlab.flows.soft_clamp`) and the long warm-up make these stalls rarer, not
    impossible (the stall study in ``benchmarks/README.md``).

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
        _validate.positive_int("epochs", self.epochs)
        _validate.positive_int("batch_size", self.batch_size)
        _validate.finite_float("learning_rate", self.learning_rate, minimum=0.0, strict=True)
        if self.warmup_epochs is not None:
            _validate.non_negative_int("warmup_epochs", self.warmup_epochs)
        _validate.non_negative_int("seed", self.seed)
        _validate.positive_int("steps_per_execution", self.steps_per_execution)
        if not isinstance(self.deterministic, bool):
            raise ValueError(f"deterministic must be True or False, got {self.deterministic!r}")
        if self.warmup >= self.epochs:
            raise ValueError(f"warmup_epochs must be < epochs ({self.epochs}), got {self.warmup_epochs}")

    @property
    def warmup(self) -> int:
        """Epochs of warm-up this run uses: ``warmup_epochs``, or an eighth of the epochs.

        Example:
            >>> TrainSettings().warmup, TrainSettings(epochs=4).warmup, TrainSettings(warmup_epochs=1).warmup
            (10, 0, 1)
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
                                          self.warmup * steps_per_epoch)
        return tf.keras.optimizers.Adam(schedule)


def batch_stream(data: np.ndarray, settings: TrainSettings) -> tf.data.Dataset:
    """``(points, fake zero labels)`` batches for :func:`fit`: each epoch is a fresh order of
    ``data`` (seeded by ``settings.seed`` and the epoch) cut into full batches; the last
    ``len(data) % batch_size`` points of that order sit the epoch out (the next epoch
    reshuffles all of them).

    Why not hand Keras the NumPy array: its pipeline leaves tf.data's autotuning thread
    running, which held up the end of ``fit`` by seconds in about half the runs, for every
    family (autotuning is off here), and its smaller last batch makes Keras trace the training
    step a second time for a batch of unknown size. Every batch here has the same, static
    size, and that matters: trained on batches of unknown size the spline flow is markedly
    slower (its gradient graph then carries some 800 more ops, most of them run-time shape
    arithmetic; timings in ``benchmarks/README.md``). With static sizes training repeats bit
    for bit only with ``TrainSettings.deterministic``, which turns Grappler's graph rewrites off.

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

    With batches of static size, Grappler's rewrites made training repeat only most of the
    time: in full test-suite runs the same seed gave a different first-epoch loss (at 1e-4) in
    2 of 4 runs, and the losses even changed with ``steps_per_execution``. Without them the
    numbers follow the graph as written, at some cost in speed (see ``benchmarks/README.md``).
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
    model.compile(optimizer=settings.optimizer(len(data)), loss=nll_loss,
                  jit_compile=settings.jit_compile,
                  steps_per_execution=settings.steps_per_execution)
    return run_training(model, batch_stream(data, settings), settings, settings.steps_per_epoch(len(data)),
                        progress, callbacks)


def run_training(model: tf.keras.Model, batches: tf.data.Dataset, settings: TrainSettings,
                 steps_per_epoch: int, progress: bool = True,
                 callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> tf.keras.callbacks.History:
    """The loop every flowlab model trains with: Keras' ``fit`` on a compiled ``model`` for
    ``settings.epochs`` epochs of ``steps_per_epoch`` batches, with :class:`StopOnNaN` (on the
    ``loss`` the model logs), a :class:`ProgressPrinter` when ``progress``, and Grappler off while
    it runs when ``settings.deterministic``. :func:`fit` and the VAE, GAN and reverse-KL trainers
    (:mod:`flowlab.vae`, :mod:`flowlab.gan`, :mod:`flowlab.reverse_kl`) all call it.

    Raises:
        TrainingDiverged: if an epoch's loss is NaN or infinite.
    """
    steps_per_epoch = _validate.positive_int("steps_per_epoch", steps_per_epoch)
    hooks: list[tf.keras.callbacks.Callback] = [StopOnNaN(), *callbacks]
    if progress:
        hooks.append(ProgressPrinter(settings.epochs))
    with _graph_rewrites_off() if settings.deterministic else contextlib.nullcontext():
        return model.fit(batches, epochs=settings.epochs, steps_per_epoch=steps_per_epoch,
                         callbacks=hooks, verbose=0)

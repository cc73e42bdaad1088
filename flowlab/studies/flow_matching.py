"""Training a continuous flow (:mod:`flowlab.flows.continuous`) two ways, and measuring its paths.

**Maximum likelihood** (FFJORD's way, :func:`fit_likelihood`): :func:`flowlab.train.fit` itself,
whose every step solves the ODE backwards from the data with the log-density alongside and
differentiates through the solve (TFP's adjoint): exact in 2-D, and slow.

**Conditional flow matching** (Lipman et al. 2023; rectified flow, Liu et al. 2023,
:func:`fit_matching`): draw noise ``x0``, data ``x1`` and a time ``t``, put ``x_t = (1 - t) x0 +
t x1`` on the straight line between them and regress the velocity there on the line's direction,

    loss = E || v(t, x_t) - (x1 - x0) ||^2,

a plain regression with no ODE during training. Its minimiser is ``E[x1 - x0 | x_t]``, the field
whose flow carries the noise's distribution to the data's (the conditional paths cross; their
average does not). With ``ot`` each batch's noise is first paired with its data by the exact
mini-batch optimal-transport assignment (squared distances; Tong et al. 2023, Pooladian et al.
2023), which makes the learned paths straighter, so that fewer Euler steps sample well.

:func:`euler_paths` draws the paths of a trained field, :func:`straightness` measures them, and
:func:`cost` times a sample and a density evaluation with their function evaluations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.flows.continuous import VelocityField, cnf_bijector, cnf_of, count_evaluations
from flowlab.flows import Flow, FlowConfig, standard_normal, standardize_bijector
from flowlab.measure import best_time
from flowlab.train import TrainSettings, batch_stream, fit, run_training

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["CNF_CONFIG", "with_solver", "OBJECTIVES", "straight_path", "matching_loss", "ot_pairing", "FlowMatching", "fit_matching",
           "fit_likelihood", "train_cnf", "euler_paths", "straightness", "cost"]

#: The continuous flow's default: one velocity field of three hidden layers of 128 (swish), with
#: :data:`flowlab.flows.continuous.CNF_OPTIONS`'s defaults (Dormand-Prince at 1e-5, the exact trace).
CNF_CONFIG = FlowConfig(flow="cnf", num_layers=1, hidden_units=(128, 128, 128), activation="swish")

def with_solver(flow: Flow, **options: Any) -> Flow:
    """The same continuous flow (the same velocity field, its weights shared) integrated with other
    :data:`flowlab.flows.continuous.CNF_OPTIONS`, e.g. ``with_solver(flow, solver="euler", steps=5)``:
    its config says so.

    Example:
        >>> from flowlab.flows import make_flow
        >>> flow = make_flow(FlowConfig(flow="cnf", num_layers=1, hidden_units=(8,)))
        >>> with_solver(flow, solver="euler", steps=5).config.options["steps"]
        5
    """
    cnf = cnf_of(flow)
    config = dataclasses.replace(flow.config, options={**flow.config.options, **options})
    bijector = cnf_bijector(cnf.velocity, config.seed, dict(config.options))
    if config.loc is not None:
        bijector = tfb.Chain([standardize_bijector(config.loc, config.scale), bijector])
    return Flow(standard_normal(config.ndim), bijector, config)


#: How ``flowlab train --flow cnf`` can train: maximum likelihood through the ODE, or flow matching.
OBJECTIVES = ("likelihood", "matching")


def straight_path(x0: tf.Tensor, x1: tf.Tensor, t: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The point ``x_t = (1 - t) x0 + t x1`` and the regression target ``x1 - x0`` (``t``: one per point).

    Example:
        >>> xt, target = straight_path(tf.zeros([1, 2]), tf.ones([1, 2]), tf.constant([0.25]))
        >>> xt.numpy().tolist(), target.numpy().tolist()
        ([[0.25, 0.25]], [[1.0, 1.0]])
    """
    t = tf.reshape(tf.cast(t, x0.dtype), [-1, 1])
    return (1.0 - t) * x0 + t * x1, x1 - x0


def matching_loss(velocity: Any, x0: tf.Tensor, x1: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
    """The conditional flow-matching loss: the mean over points of ``|v(t, x_t) - (x1 - x0)|^2``
    (summed over coordinates). ``velocity(t, x)`` takes one time per point.

    Example:
        >>> exact = lambda t, x: tf.ones_like(x)  # every path runs from 0 to 1: v = 1 is exact
        >>> float(matching_loss(exact, tf.zeros([4, 2]), tf.ones([4, 2]), tf.fill([4], 0.3)))
        0.0
    """
    xt, target = straight_path(x0, x1, t)
    return tf.reduce_mean(tf.reduce_sum((velocity(t, xt) - target) ** 2, axis=-1))


def _assignment(cost: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    rows, columns = linear_sum_assignment(cost)
    order = np.empty_like(columns)
    order[columns] = rows
    return order.astype(np.int32)


def ot_pairing(x0: tf.Tensor, x1: tf.Tensor) -> tf.Tensor:
    """``x0`` reordered so that ``x0[i]`` goes with ``x1[i]`` in the exact optimal-transport
    assignment of the batch (least total squared distance; SciPy's ``linear_sum_assignment``).

    Example:
        >>> ot_pairing(tf.constant([[1.0, 0.0], [0.0, 0.0]]), tf.constant([[0.1, 0.0], [0.9, 0.0]])).numpy().tolist()
        [[0.0, 0.0], [1.0, 0.0]]
    """
    cost = tf.reduce_sum((x0[:, None, :] - x1[None, :, :]) ** 2, axis=-1)
    order = tf.numpy_function(_assignment, [cost], tf.int32, stateful=False)
    return tf.gather(x0, tf.reshape(order, [-1]))


class FlowMatching(tf.keras.Model):
    """A Keras model around a :class:`flowlab.flows.continuous.VelocityField` whose training step is one
    flow-matching regression on the batch of data it is fed: the noise and times are drawn from
    ``seed`` and the step (the same seed gives the same draws), paired by OT when ``ot``."""

    def __init__(self, velocity: VelocityField, seed: int = 0, ot: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.velocity = velocity
        self.train_seed = _validate.non_negative_int("seed", seed)
        if not isinstance(ot, bool):
            raise ValueError(f"ot must be True or False, got {ot!r}")
        self.ot = ot
        self.tracker = tf.keras.metrics.Mean("loss")

    @property
    def metrics(self) -> list[tf.keras.metrics.Metric]:
        return [self.tracker]

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.velocity(tf.ones_like(x[..., 0]), x)

    def draws(self, x1: tf.Tensor, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Step ``step``'s noise (OT-paired with ``x1`` when ``ot``) and times."""
        seed = tf.stack([tf.constant(self.train_seed, tf.int64), tf.cast(step, tf.int64)])
        x0 = tf.random.stateless_normal(tf.shape(x1), seed=seed, dtype=x1.dtype)
        t = tf.random.stateless_uniform(tf.shape(x1)[:1], seed=seed + [0, 2**40], dtype=x1.dtype)
        return (ot_pairing(x0, x1) if self.ot else x0), t

    def train_step(self, data):
        x1, _ = data
        x0, t = self.draws(x1, self.optimizer.iterations)
        with tf.GradientTape() as tape:
            loss = matching_loss(self.velocity, x0, x1, t)
        variables = self.velocity.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.tracker.update_state(loss)
        return {"loss": self.tracker.result()}


def fit_matching(flow: tfd.Distribution, data: np.ndarray, settings: TrainSettings = TrainSettings(),
                 ot: bool = False, progress: bool = True,
                 callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> tf.keras.callbacks.History:
    """Train a continuous flow's velocity field on ``data`` by conditional flow matching (with
    mini-batch OT pairing when ``ot``); return the Keras history, whose ``loss`` is each epoch's
    mean regression loss (not a likelihood: its floor is the paths' crossing, not 0).

    The budget and loop are :func:`flowlab.train.fit`'s: ``epochs`` passes of full batches in a
    seeded order, Adam on the warm-up + cosine schedule, progress lines, the NaN stop.

    Example:
        >>> from flowlab.data import make_moons
        >>> from flowlab.flows import FlowConfig, make_flow
        >>> flow = make_flow(FlowConfig(flow="cnf", num_layers=1, hidden_units=(8,)))
        >>> history = fit_matching(flow, make_moons(256), TrainSettings(epochs=2, batch_size=64), progress=False)
        >>> len(history.history["loss"])
        2
    """
    velocity = cnf_of(flow).velocity
    data = _validate.points("data", data).astype(np.float32)
    model = FlowMatching(velocity, settings.seed, ot)
    model.compile(optimizer=settings.optimizer(len(data)), jit_compile=settings.jit_compile,
                  steps_per_execution=settings.steps_per_execution)
    return run_training(model, batch_stream(data, settings), settings, settings.steps_per_epoch(len(data)),
                        progress, callbacks)


def fit_likelihood(flow: tfd.Distribution, data: np.ndarray, settings: TrainSettings = TrainSettings(),
                   progress: bool = True,
                   callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> tf.keras.callbacks.History:
    """Train a continuous flow by maximum likelihood through the ODE: :func:`flowlab.train.fit`
    (its loss is the NLL in nats), after checking that ``flow`` is continuous."""
    cnf_of(flow)
    return fit(flow, data, settings, progress, callbacks)


def train_cnf(flow: tfd.Distribution, data: np.ndarray, settings: TrainSettings, objective: str = "matching",
              ot: bool = False, progress: bool = True,
              callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> tf.keras.callbacks.History:
    """:func:`fit_likelihood` or :func:`fit_matching` by ``objective`` (one of :data:`OBJECTIVES`);
    ``ot`` applies to matching only."""
    objective = _validate.one_of("objective", objective, OBJECTIVES)
    if objective == "likelihood":
        if ot:
            raise ValueError("ot applies to objective 'matching' only, got objective 'likelihood' with ot=True")
        return fit_likelihood(flow, data, settings, progress, callbacks)
    return fit_matching(flow, data, settings, ot, progress, callbacks)


def euler_paths(flow: tfd.Distribution, z: np.ndarray, steps: int = 100) -> np.ndarray:
    """The paths of base points ``z`` (shape (n, 2)) under the flow's velocity field by ``steps``
    Euler steps from t = 0 to 1: shape ``(steps + 1, n, 2)``, noise first, samples last.

    Example:
        >>> from flowlab.flows import FlowConfig, make_flow
        >>> flow = make_flow(FlowConfig(flow="cnf", num_layers=1, hidden_units=(8,)))
        >>> euler_paths(flow, np.zeros((3, 2)), steps=4).shape  # an untrained field is zero: no motion
        (5, 3, 2)
    """
    velocity = cnf_of(flow).velocity
    steps = _validate.within("ode_steps", "steps", steps)
    x = tf.constant(_validate.points("z", z), tf.float32)
    return _euler_paths(velocity, x, tf.constant(steps)).numpy()


@tf.function(reduce_retracing=True)
def _euler_paths(velocity: VelocityField, x: tf.Tensor, steps: tf.Tensor) -> tf.Tensor:
    h = 1.0 / tf.cast(steps, tf.float32)
    path = tf.TensorArray(tf.float32, size=steps + 1).write(0, x)
    for k in tf.range(steps):
        x = x + h * velocity(tf.cast(k, tf.float32) * h, x)
        path = path.write(k + 1, x)
    return path.stack()


def straightness(flow: tfd.Distribution, n: int = 2000, seed: int = 0, steps: int = 100) -> dict[str, float]:
    """How straight the flow's paths are (Liu et al. 2023): ``E int_0^1 |(x1 - x0) - v(t, x_t)|^2
    dt`` along ``n`` paths of ``steps`` Euler steps from seeded noise (0 for straight paths, which
    one Euler step follows exactly), and the mean ratio of a path's length to the distance between
    its ends (1 for straight paths).

    Example:
        >>> from flowlab.flows import FlowConfig, make_flow
        >>> flow = make_flow(FlowConfig(flow="cnf", num_layers=1, hidden_units=(8,)))
        >>> straightness(flow, n=10, steps=4)["straightness"]  # an untrained field does not move
        0.0
    """
    n = _validate.positive_int("n", n)
    z = tf.random.stateless_normal([n, 2], seed=[_validate.non_negative_int("seed", seed), 3]).numpy()
    paths = euler_paths(flow, z, steps)
    moves = np.diff(paths, axis=0)  # each step's displacement, h * v
    chord = paths[-1] - paths[0]
    deviation = np.mean(np.sum((chord[None] - moves * steps) ** 2, axis=-1))  # mean over t and paths
    length = np.sum(np.linalg.norm(moves, axis=-1), axis=0)
    ratio = np.mean(length / np.maximum(np.linalg.norm(chord, axis=-1), 1e-12))
    return {"straightness": float(deviation), "length_ratio": float(ratio) if np.any(chord) else 1.0}


def cost(flow: tfd.Distribution, n: int = 10_000, seed: int = 0, repeats: int = 1) -> dict[str, float]:
    """Seconds (best of ``repeats``) and ODE function evaluations of ``n`` samples and of the
    log-density at ``n`` points, for a continuous flow; seconds only for any other flow
    (its function evaluations are None)."""
    n = _validate.positive_int("n", n)
    x = tf.random.stateless_normal([n, 2], seed=[_validate.non_negative_int("seed", seed), 4])
    try:
        cnf_of(flow)
    except ValueError:
        return {"sample_s": best_time(lambda: flow.sample(n, seed=seed).numpy(), repeats),
                "log_prob_s": best_time(lambda: flow.log_prob(x).numpy(), repeats),
                "sample_evaluations": None, "log_prob_evaluations": None}
    sample_n = count_evaluations(flow, lambda: flow.sample(n, seed=seed))[1]
    log_prob_n = count_evaluations(flow, lambda: flow.log_prob(x))[1]
    return {"sample_s": best_time(lambda: flow.sample(n, seed=seed).numpy(), repeats),
            "log_prob_s": best_time(lambda: flow.log_prob(x).numpy(), repeats),
            "sample_evaluations": sample_n, "log_prob_evaluations": log_prob_n}

"""The layers the flow families are built of: ActNorm, the soft-clamped log-scale, the spline coupling
with its one-pass inverse, the seeded initializers and the coupling networks, and the walk through
a chain in the density direction."""

from __future__ import annotations

import contextlib
import contextvars
import math
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.flows import spline

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["ActNorm", "density_steps", "kind_name", "initialize_actnorms", "layer_seed", "glorot",
           "LOG_SCALE_BOUND", "soft_clamp", "SoftClampedLogScale", "shift_and_log_scale_network",
           "log_scale_bound_of", "CouplingNetwork", "SPLINE_BINS", "SPLINE_BOUND", "one_pass",
           "OnePassInverse", "OnePassDensity", "SplineCoupling"]


class ActNorm(tfb.Bijector):
    """A learned per-number affine map, ``x = z * exp(log_scale) + loc``, of the first
    ``prod(block)`` numbers of a point (the rest pass through): Glow's activation normalization,
    per coordinate (the moons' flows) or per position and channel (the digits' ``block``).
    :func:`initialize_actnorms` sets it from data so that its output starts standardized; then it
    trains like any weight.

    Example:
        >>> norm = ActNorm((2,))
        >>> norm.initialize(np.array([[0.0, 10.0], [2.0, 30.0]]))
        >>> np.round(norm.inverse([[1.0, 20.0]]).numpy(), 3).tolist()
        [[0.0, 0.0]]
    """

    def __init__(self, block: tuple[int, ...], name: str = "actnorm", weights: tuple[tf.Variable, ...] | None = None):
        # ``weights``: (loc, log_scale, initialized) to share, as copy() does; new ones when None
        parameters = dict(locals())
        super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, dtype=tf.float32,
                         parameters=parameters, name=name)
        self.block, self.size = tuple(block), math.prod(block)
        if weights is None:
            weights = (tf.Variable(tf.zeros(self.size), name=f"{name}_loc"),
                       tf.Variable(tf.zeros(self.size), name=f"{name}_log_scale"),
                       tf.Variable(False, trainable=False, name=f"{name}_initialized"))
        self.loc, self.log_scale = weights[0], weights[1]
        #: Whether :meth:`initialize` ran (saved with the weights: a reloaded flow is not reset).
        self.initialized = weights[2]
        self._parameters["weights"] = (self.loc, self.log_scale, self.initialized)

    def _get_parameterization(self) -> dict[str, Any]:
        """What TFP's cache and ``==`` identify it by: its block and its own variables (by reference)."""
        return {"block": self.block, "weights": tuple(v.ref() for v in self._parameters["weights"])}

    def _split(self, value: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return value[..., :self.size], value[..., self.size:]

    def _forward(self, z: tf.Tensor) -> tf.Tensor:
        block, rest = self._split(z)
        return tf.concat([block * tf.exp(self.log_scale) + self.loc, rest], axis=-1)

    def _inverse(self, x: tf.Tensor) -> tf.Tensor:
        block, rest = self._split(x)
        return tf.concat([(block - self.loc) * tf.exp(-self.log_scale), rest], axis=-1)

    def _forward_log_det_jacobian(self, z: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(self.log_scale) * tf.ones_like(z[..., 0])

    def initialize(self, x: np.ndarray) -> None:
        """Set loc and scale so that the inverse of ``x`` (a batch of points, shape (n, d), finite, d
        at least the block's size) has mean 0 and standard deviation 1 in every number of the block."""
        block = _validate.points("x", x, ndim=None, min_width=self.size)[:, :self.size]
        self.loc.assign(block.mean(axis=0).astype(np.float32))
        self.log_scale.assign(np.log(block.std(axis=0) + 1e-3).astype(np.float32))
        self.initialized.assign(True)


def density_steps(bijector: tfb.Bijector) -> list[tfb.Bijector]:
    """The bijectors of a (nested) chain in the density direction, data first: what
    :func:`initialize_actnorms` walks, and reversed, the stages of :mod:`flowlab.anatomy`.

    ``tfb.Chain([b0, b1])`` computes ``b0(b1(z))``, so its density runs ``b0`` first.

    Example:
        >>> [kind_name(b) for b in density_steps(tfb.Chain([tfb.Shift(1.0), tfb.Chain([tfb.Scale(2.0), tfb.Exp()])]))]
        ['Shift', 'Scale', 'Exp']
    """
    if kind_name(bijector) == "Chain":
        return [step for inner in bijector.bijectors for step in density_steps(inner)]
    return [bijector]


def kind_name(value: object) -> str:
    """Class name without TFP's private prefix (``_Chain`` and ``Chain`` are one kind).

    Example:
        >>> kind_name(tfb.Chain([])), kind_name(tfb.Scale(2.0))
        ('Chain', 'Scale')
    """
    return type(value).__name__.lstrip("_")


def initialize_actnorms(flow: tfd.TransformedDistribution, x: np.ndarray) -> None:
    """Data-dependent initialization: pass the batch ``x`` (shape (n, d)) through the flow in
    the density direction and set each :class:`ActNorm` on the way that was not initialized yet
    to standardize what reaches it (so that continued training keeps what was learned).

    Example:
        >>> from flowlab.flows import FlowConfig, make_flow
        >>> flow = make_flow(FlowConfig(num_layers=1, hidden_units=(4,), options={"actnorm": True}))
        >>> initialize_actnorms(flow, np.array([[0.0, 10.0], [2.0, 30.0]], np.float32))
        >>> np.round(flow.bijector.bijectors[0].loc.numpy(), 3).tolist()
        [1.0, 20.0]
    """
    if not isinstance(flow, tfd.TransformedDistribution):
        raise ValueError(f"flow must be a flow (a TransformedDistribution, as make_flow makes), "
                         f"got {type(flow).__name__}")
    x = _validate.points("x", x, ndim=int(flow.event_shape[-1]))
    steps = density_steps(flow.bijector)
    pending = [i for i, step in enumerate(steps) if isinstance(step, ActNorm) and not bool(step.initialized.numpy())]
    value = tf.constant(np.asarray(x, dtype=np.float32))
    for i, step in enumerate(steps[:pending[-1] + 1] if pending else []):  # no pass when none is pending
        if i in pending:
            step.initialize(value.numpy())
        value = step.inverse(value)


def layer_seed(seed: int, layer: int, part: int = 0) -> int:
    """The initializer seed of one network part (``part``: a dense layer of a coupling network;
    a MADE takes one initializer for all its layers) of flow layer ``layer``, for every family,
    the image flows' (:mod:`flowlab.studies.digits.flows`) included.
    Distinct for every (seed, layer, part) with ``layer < 1000`` and ``part < 100``.

    Example:
        >>> layer_seed(0, 1), layer_seed(0, 1, part=2), layer_seed(1, 0)
        (100, 102, 100000)
    """
    return (seed * 1000 + layer) * 100 + part


def glorot(seed: int, layer: int, part: int = 0) -> tf.keras.initializers.Initializer:
    return tf.keras.initializers.GlorotUniform(seed=layer_seed(seed, layer, part))


#: Default bound on every affine layer's log-scale (MAF, IAF, RealNVP): a layer stretches or
#: shrinks a coordinate by at most e^3, about 20 times. Unbounded, the log-scale can grow without
#: limit: some seeds diverge (the scale overflows) and MAF and IAF densities overflow far from the
#: data. The stall study in benchmarks/README.md measures what the bound does to training.
LOG_SCALE_BOUND = 3.0


def soft_clamp(log_scale: tf.Tensor, bound: float | None) -> tf.Tensor:
    """``bound * tanh(log_scale / bound)``: the identity near zero, smoothly saturating at
    ``+-bound`` (no bound when ``bound`` is None).

    Example:
        >>> [round(float(v), 3) for v in soft_clamp(tf.constant([0.1, 100.0, -100.0]), 3.0)]
        [0.1, 3.0, -3.0]
    """
    if bound is None:
        return log_scale
    return bound * tf.tanh(log_scale / bound)


class SoftClampedLogScale(tf.keras.layers.Layer):
    """Wrap a shift-and-log-scale network (``params=2``, such as the lab's
    ``tfb.AutoregressiveNetwork``) so that its log-scale goes through :func:`soft_clamp`; the
    network itself is unchanged and stays reachable as ``network``. Hand it to
    ``tfb.MaskedAutoregressiveFlow`` in place of the network: what the lab does, so that its chain
    trains with flowlab's bound (``benchmarks/README.md`` measures the difference).

    Example:
        >>> made = tfb.AutoregressiveNetwork(params=2, hidden_units=[8])
        >>> clamped = SoftClampedLogScale(made, bound=3.0)
        >>> clamped.network is made, clamped(tf.zeros([1, 2])).shape
        (True, TensorShape([1, 2, 2]))
    """

    def __init__(self, network: Callable[[tf.Tensor], tf.Tensor], bound: float = LOG_SCALE_BOUND, **kwargs):
        super().__init__(**kwargs)
        if not callable(network):
            raise ValueError(f"network must be a callable shift-and-log-scale network, got {type(network).__name__}")
        self.network = network
        self.bound = _validate.finite_float("bound", bound, minimum=0.0, strict=True)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        shift, log_scale = tf.unstack(self.network(x), num=2, axis=-1)
        return tf.stack([shift, soft_clamp(log_scale, self.bound)], axis=-1)


def shift_and_log_scale_network(bijector: tfb.Bijector) -> Any:
    """The network that drives a MAF: its ``shift_and_log_scale_fn``, unwrapped from a
    :class:`SoftClampedLogScale` if it is one.

    Example:
        >>> made = tfb.AutoregressiveNetwork(params=2, hidden_units=[8])
        >>> shift_and_log_scale_network(tfb.MaskedAutoregressiveFlow(SoftClampedLogScale(made))) is made
        True
    """
    fn = bijector._shift_and_log_scale_fn
    return fn.network if isinstance(fn, SoftClampedLogScale) else fn


def log_scale_bound_of(bijector: tfb.Bijector) -> float | None:
    """The soft bound on a MAF's log-scales: a :class:`SoftClampedLogScale`'s, or None (unbounded)."""
    fn = bijector._shift_and_log_scale_fn
    return fn.bound if isinstance(fn, SoftClampedLogScale) else None


class CouplingNetwork(tf.Module):
    """A dense network from the conditioning half to ``params`` outputs per transformed unit,
    for flow layer ``layer`` of a chain seeded ``seed``."""

    def __init__(self, hidden_units: tuple[int, ...], activation: str, outputs: int, seed: int,
                 layer: int, name: str):
        super().__init__(name=name)
        layers = [tf.keras.layers.Dense(units, activation=activation, kernel_initializer=glorot(seed, layer, j))
                  for j, units in enumerate(hidden_units)]
        # The last layer starts at zero, so every coupling starts as the identity.
        layers.append(tf.keras.layers.Dense(outputs, kernel_initializer="zeros"))
        self.network = tf.keras.Sequential(layers)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """The outputs for points of any batch shape ``[..., k]`` (a point ``[k]``, ``[n, k]``,
        ``[3, 5, k]``): the network sees them as one ``[n, k]`` batch."""
        outputs = self.network(tf.reshape(x, [-1, x.shape[-1]]))
        outputs = tf.reshape(outputs, tf.concat([tf.shape(x)[:-1], [outputs.shape[-1]]], axis=0))
        return tf.ensure_shape(outputs, x.shape[:-1].concatenate(outputs.shape[-1:]))


#: Bins per spline by default: on the moons, 16 bins reach a lower KL than 8 for a little more
#: training time (figures in benchmarks/README.md).
SPLINE_BINS = 16
#: Half-width of the interval the splines cover by default (the identity outside it).
SPLINE_BOUND = 5.0


#: The memos of :class:`OnePassInverse` bijectors, while a density is evaluated (:func:`one_pass`).
_ONE_PASS_MEMO: contextvars.ContextVar[dict[int, tuple[weakref.ref, tf.Tensor]] | None] = \
    contextvars.ContextVar("flowlab_one_pass_memo", default=None)


@contextlib.contextmanager
def one_pass() -> Iterator[None]:
    """Within this block, an :class:`OnePassInverse` bijector remembers the inverse log-det of
    its last ``inverse(y)`` for ``inverse_log_det_jacobian(y)`` of the same tensor. One density
    evaluation is one such block (:class:`Flow` and :class:`flowlab.studies.digits.flows.ImageFlow` open
    it): no weight can change and no gradient tape start or stop inside it, so the memo can never
    serve a stale value or one without gradients. Outside it, nothing is remembered."""
    token = _ONE_PASS_MEMO.set({})
    try:
        yield
    finally:
        _ONE_PASS_MEMO.reset(token)


class OnePassInverse:
    """For a bijector (mixed in before ``tfb.Bijector``) whose inverse and inverse log-det come
    from one pass, ``_inverse_and_log_det(y)``: TFP's ``log_prob`` asks for ``inverse(y)``, then
    ``inverse_log_det_jacobian(y)`` of the same tensor, so inside :func:`one_pass` (one density
    evaluation) the second is remembered from the first and the network runs once per
    ``log_prob``, not twice. The memo holds a weak reference to ``y``: it never keeps a tensor
    alive, and it is dropped when the evaluation ends."""

    def _inverse_and_log_det(self, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        raise NotImplementedError

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        x, inverse_log_det = self._inverse_and_log_det(y)
        memo = _ONE_PASS_MEMO.get()
        if memo is not None:
            memo[id(self)] = (weakref.ref(y), inverse_log_det)
        return x

    def _inverse_log_det_jacobian(self, y: tf.Tensor) -> tf.Tensor:
        remembered = (_ONE_PASS_MEMO.get() or {}).get(id(self))
        if remembered is not None and remembered[0]() is y:
            return remembered[1]
        return self._inverse_and_log_det(y)[1]


class OnePassDensity:
    """For a ``tfd.TransformedDistribution`` (mixed in before it): each density evaluation is one
    :func:`one_pass` block, so its :class:`OnePassInverse` bijectors run their networks once."""

    def _log_prob(self, y, **kwargs):
        with one_pass():
            return super()._log_prob(y, **kwargs)

    def _prob(self, y, **kwargs):
        with one_pass():
            return super()._prob(y, **kwargs)


class SplineCoupling(OnePassInverse, tfb.Bijector):
    """A neural-spline coupling layer: the first ``ndim // 2`` coordinates pass through and
    set, through a dense network, a monotone rational-quadratic spline (``bins`` bins on
    ``[-bound, bound]``, identity outside) for each of the others.

    The spline runs in the density direction (data to noise), as in Durkan et al.'s density
    experiments: ``log_prob`` is one network pass and one spline evaluation per layer, and
    sampling inverts the spline by solving a quadratic per point. Zero final-layer weights
    make the layer start as the identity.
    """

    def __init__(self, ndim: int, hidden_units: tuple[int, ...], activation: str, seed: int,
                 bins: int = SPLINE_BINS, bound: float = SPLINE_BOUND, layer: int = 0,
                 name: str = "spline_coupling", net: tf.Module | None = None):
        # ``net``: the conditioning network to share, as copy() does; a new one when None. Being in
        # ``parameters``, it tells TFP's cache this layer from another built with the same arguments.
        parameters = dict(locals())
        super().__init__(forward_min_event_ndims=1, dtype=tf.float32, parameters=parameters, name=name)
        self.num_masked = ndim // 2
        self.units, self.bins, self.bound = ndim - self.num_masked, bins, bound
        self.net = net if net is not None else CouplingNetwork(
            hidden_units, activation, self.units * (3 * bins - 1), seed, layer, name=f"{name}_net")
        self._parameters["net"] = self.net

    def _spline_parameters(self, condition: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Bin widths, heights and inner slopes (:func:`flowlab.flows.spline.spline_parameters`) per
        transformed unit."""
        shape = tf.concat([tf.shape(condition)[:-1], [self.units, 3 * self.bins - 1]], axis=0)
        return spline.spline_parameters(tf.reshape(self.net(condition), shape), self.bins, self.bound)

    def _split(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return x[..., :self.num_masked], x[..., self.num_masked:]

    def _forward(self, x: tf.Tensor) -> tf.Tensor:
        x0, x1 = self._split(x)
        return tf.concat([x0, spline.rqs_solve(x1, *self._spline_parameters(x0), self.bound)], axis=-1)

    def _inverse_and_log_det(self, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        y0, y1 = self._split(y)
        x1, log_derivative = spline.rqs_evaluate(y1, *self._spline_parameters(y0), self.bound)
        return tf.concat([y0, x1], axis=-1), tf.reduce_sum(log_derivative, axis=-1)

"""Distributions and bijectors of the lab: the Gaussian base, the shift/scale
demo, the lab's chain of masked autoregressive flows with permutations, and the
other families the sheet names (IAF, RealNVP) plus a neural spline flow."""

from __future__ import annotations

import contextlib
import contextvars
import math
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.flows import continuous
from flowlab.flows import spline

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = [
    "FlowConfig",
    "Family",
    "FAMILIES",
    "family",
    "FLOWS",
    "LAYER_FLOWS",
    "standard_normal",
    "shift_scale_demo",
    "standardize_bijector",
    "LOG_SCALE_BOUND",
    "soft_clamp",
    "SoftClampedLogScale",
    "shift_and_log_scale_network",
    "log_scale_bound_of",
    "maf_chain",
    "iaf_chain",
    "realnvp_chain",
    "spline_chain",
    "cnf_chain",
    "SplineCoupling",
    "OnePassInverse",
    "OnePassDensity",
    "one_pass",
    "ActNorm",
    "initialize_actnorms",
    "density_steps",
    "kind_name",
    "layer_seed",
    "BUILDERS",
    "Flow",
    "build",
    "make_flow",
]

ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "sigmoid", "softplus", "swish")


def standard_normal(ndim: int = 2) -> tfd.MultivariateNormalDiag:
    """The base distribution: ``ndim`` independent unit Gaussians, event shape ``[ndim]``.

    Example:
        >>> standard_normal(2).event_shape
        TensorShape([2])
    """
    ndim = _validate.positive_int("ndim", ndim)
    return tfd.MultivariateNormalDiag(loc=[0.0] * ndim)


def shift_scale_demo(scale: Sequence[float] = (1.0, 0.5),
                     shift: Sequence[float] = (0.5, 0.25)) -> tfb.Chain:
    """The sheet's demo bijector ``x = z * scale + shift``: scale first, then shift.

    Example:
        >>> shift_scale_demo().forward([[1.0, 1.0]]).numpy().tolist()
        [[1.5, 0.75]]
    """
    scale = _vector("scale", scale)
    shift = _vector("shift", shift)
    if np.any(scale == 0):
        raise ValueError(f"scale must have no zero entries (a zero scale is not invertible), "
                         f"got {scale.tolist()}")
    if scale.shape != shift.shape:
        raise ValueError(f"scale and shift must have the same length, got {len(scale)} and {len(shift)}")
    return tfb.Shift(shift.astype(np.float32))(tfb.Scale(scale.astype(np.float32)))


def _vector(name: str, value: Sequence[float]) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a non-empty list of finite numbers, got {value!r}")
    return array


def standardize_bijector(loc: Sequence[float], scale: Sequence[float]) -> tfb.Bijector:
    """A fixed affine map ``x = loc + scale * u`` that puts standardized units back
    into data units, so a flow trained on standardized coordinates keeps its
    density in data units (the change of variables adds ``-sum(log scale)``)."""
    loc = _vector("loc", loc)
    scale = _vector("scale", scale)
    if np.any(scale <= 0):
        raise ValueError(f"scale must be positive, got {scale.tolist()}")
    if loc.shape != scale.shape:
        raise ValueError(f"loc and scale must have the same length (one number per dimension), "
                         f"got {len(loc)} and {len(scale)}: loc={loc.tolist()}, scale={scale.tolist()}")
    return tfb.Shift(loc.astype(np.float32))(tfb.Scale(scale.astype(np.float32)))


def _chain_args(num_layers: int, hidden_units: Sequence[int], activation: str, ndim: int,
                seed: int) -> tuple[int, tuple[int, ...], str, int, int]:
    """Validate the arguments every chain builder (and :class:`FlowConfig`) shares."""
    num_layers = _validate.within("layers", "num_layers", num_layers)
    hidden_units = _validate.within("hidden_units", "hidden_units", hidden_units)
    activation = _validate.one_of("activation", activation, ACTIVATIONS)
    ndim = _validate.positive_int("ndim", ndim)
    if ndim < 2:
        raise ValueError(f"ndim must be >= 2 for a flow that mixes dimensions, got {ndim}")
    seed = _validate.within("seed", "seed", seed)
    return num_layers, hidden_units, activation, ndim, seed


def _spline_args(bins: int, bound: float) -> tuple[int, float]:
    """Validate a spline's bins and bound (within :data:`flowlab._validate.LIMITS`, with room for
    every bin's minimum size)."""
    bins = _validate.within("bins", "bins", bins)
    bound = _validate.within("bound", "bound", bound)
    return bins, _validate.finite_float("bound", bound, minimum=bins * spline.MIN_SIZE / 2, strict=True)


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


def _with_permutations(layers: list[tfb.Bijector], ndim: int, name: str, actnorm: bool = False) -> tfb.Chain:
    """[layer, Permute] for each layer: each Permute reverses the dimensions so the next
    layer transforms what the last one only conditioned on. ``actnorm``: an :class:`ActNorm`
    before each layer (in the density direction), [ActNorm, layer, Permute]."""
    bijectors = []
    for i, layer in enumerate(layers):
        bijectors += [ActNorm((ndim,), name=f"actnorm_{i}")] if actnorm else []
        bijectors += [layer, tfb.Permute(list(reversed(range(ndim))), name=f"permute_{i}")]
    return tfb.Chain(bijectors, name=name)


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


@dataclass(frozen=True)
class Family:
    """One flow family, as its builder registers it (:func:`family`): the keyword-only builder of
    its chain, the options only it takes (name -> default), a check of their values, what
    ``flowlab train`` offers of them (``cli``: option -> help; :data:`flowlab._validate.LIMITS`
    bounds each) and short names of its layer classes (for figures of the chain). ``layered``: it
    builds ``num_layers`` blocks of [layer, Permute] (every family but the continuous flow, which is
    one ODE: the layer-chain tests and figures run on :data:`LAYER_FLOWS`)."""

    name: str
    build: Callable[..., tfb.Chain]
    options: Mapping[str, Any]
    check: Callable[[dict[str, Any]], dict[str, Any]]
    cli: Mapping[str, str] = field(default_factory=dict)
    layer_names: Mapping[str, str] = field(default_factory=dict)
    layered: bool = True


#: Flow family name -> its registration, in registration order.
FAMILIES: dict[str, Family] = {}


def family(name: str, options: Mapping[str, Any], check: Callable[[dict[str, Any]], dict[str, Any]],
           cli: Mapping[str, str] | None = None, layer_names: Mapping[str, str] | None = None,
           layered: bool = True):
    """Register the decorated chain builder as flow family ``name`` (its one registration: the
    CLI, :class:`FlowConfig`, save/load, the figures and the tests read :data:`FAMILIES`)."""
    def register(build: Callable[..., tfb.Chain]) -> Callable[..., tfb.Chain]:
        FAMILIES[name] = Family(name, build, dict(options), check, dict(cli or {}), dict(layer_names or {}),
                                layered)
        return build
    return register


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


def _log_scale_bound(bound: float | None) -> float | None:
    """Validate a log-scale bound: a positive number, or None for no bound."""
    return None if bound is None else _validate.finite_float("log_scale_bound", bound, minimum=0.0, strict=True)


class _BoundedMADE(tfb.AutoregressiveNetwork):
    """A MADE with two outputs per unit, (shift, log-scale), its log-scale through :func:`soft_clamp`."""

    def __init__(self, log_scale_bound: float | None, **kwargs):
        super().__init__(params=2, **kwargs)
        self._log_scale_bound = log_scale_bound

    def call(self, x: tf.Tensor) -> tf.Tensor:
        shift, log_scale = tf.unstack(super().call(x), num=2, axis=-1)
        return tf.stack([shift, soft_clamp(log_scale, self._log_scale_bound)], axis=-1)


def _glorot(seed: int, layer: int, part: int = 0) -> tf.keras.initializers.Initializer:
    return tf.keras.initializers.GlorotUniform(seed=layer_seed(seed, layer, part))


def _affine_options(options: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(options["actnorm"], bool):
        raise ValueError(f"actnorm must be True or False, got {options['actnorm']!r}")
    return {"log_scale_bound": _log_scale_bound(options["log_scale_bound"]), "actnorm": options["actnorm"]}


#: The affine families' own options: the log-scale bound, and an ActNorm before each layer.
_AFFINE = {"log_scale_bound": LOG_SCALE_BOUND, "actnorm": False}


@family("maf", _AFFINE, _affine_options, layer_names={"MaskedAutoregressiveFlow": "MAF", "ActNorm": "ActNorm"})
def maf_chain(*, num_layers: int = 3, hidden_units: Sequence[int] = (128, 128), activation: str = "relu",
              ndim: int = 2, seed: int = 0, invert: bool = False,
              log_scale_bound: float | None = LOG_SCALE_BOUND, actnorm: bool = False) -> tfb.Chain:
    """The lab's flow: ``num_layers`` x [MaskedAutoregressiveFlow, Permute].

    Each MAF's shift and log-scale come from an AutoregressiveNetwork with the
    given hidden units and activation. Density evaluation is one network pass;
    sampling takes ``ndim`` sequential passes. Weights start from seeded Glorot
    initializers: the same seed gives the same flow.

    ``invert=True`` gives the inverse autoregressive flow (IAF): each MAF layer run
    backwards (``tfb.Invert``), so sampling is one network pass and density evaluation
    takes ``ndim`` sequential ones. ``log_scale_bound`` soft-bounds every log-scale
    (:func:`soft_clamp`; None: unbounded). ``actnorm`` puts an :class:`ActNorm` before each layer.

    Example:
        >>> [type(b).__name__ for b in maf_chain(num_layers=2).bijectors]
        ['MaskedAutoregressiveFlow', 'Permute', 'MaskedAutoregressiveFlow', 'Permute']
        >>> [type(b).__name__.lstrip("_") for b in maf_chain(num_layers=1, invert=True).bijectors]
        ['Invert', 'Permute']
    """
    num_layers, hidden_units, activation, ndim, seed = _chain_args(
        num_layers, hidden_units, activation, ndim, seed)
    log_scale_bound = _log_scale_bound(log_scale_bound)
    layers = []
    for i in range(num_layers):
        made = _BoundedMADE(log_scale_bound, hidden_units=list(hidden_units), activation=activation,
                            kernel_initializer=_glorot(seed, i))
        layers.append(tfb.Invert(tfb.MaskedAutoregressiveFlow(made), name=f"iaf_{i}") if invert
                      else tfb.MaskedAutoregressiveFlow(made, name=f"maf_{i}"))
    return _with_permutations(layers, ndim, "iaf_chain" if invert else "maf_chain", actnorm)


@family("iaf", _AFFINE, _affine_options)
def iaf_chain(**options) -> tfb.Chain:
    """Inverse autoregressive flow: ``maf_chain(invert=True, **options)``.

    Example:
        >>> [type(b).__name__.lstrip("_") for b in iaf_chain(num_layers=1).bijectors]
        ['Invert', 'Permute']
    """
    return maf_chain(invert=True, **options)


class _CouplingNetwork(tf.Module):
    """A dense network from the conditioning half to ``params`` outputs per transformed unit,
    for flow layer ``layer`` of a chain seeded ``seed``."""

    def __init__(self, hidden_units: tuple[int, ...], activation: str, outputs: int, seed: int,
                 layer: int, name: str):
        super().__init__(name=name)
        layers = [tf.keras.layers.Dense(units, activation=activation, kernel_initializer=_glorot(seed, layer, j))
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


class _AffineCoupling(tf.Module):
    """RealNVP's ``shift_and_log_scale_fn``: (shift, log-scale) of the transformed half."""

    def __init__(self, units: int, hidden_units, activation, seed, layer, name,
                 log_scale_bound: float | None = LOG_SCALE_BOUND):
        super().__init__(name=name)
        self.net = _CouplingNetwork(hidden_units, activation, 2 * units, seed, layer, name=f"{name}_net")
        self.log_scale_bound = log_scale_bound

    def __call__(self, x: tf.Tensor, output_units: int, **condition_kwargs):
        shift, log_scale = tf.split(self.net(x), 2, axis=-1)
        return shift, soft_clamp(log_scale, self.log_scale_bound)


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
        self.net = net if net is not None else _CouplingNetwork(
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


@family("realnvp", _AFFINE, _affine_options, layer_names={"RealNVP": "RealNVP"})
def realnvp_chain(*, num_layers: int = 3, hidden_units: Sequence[int] = (128, 128),
                  activation: str = "relu", ndim: int = 2, seed: int = 0,
                  log_scale_bound: float | None = LOG_SCALE_BOUND, actnorm: bool = False) -> tfb.Chain:
    """RealNVP: affine coupling layers. Each keeps the first half of the dimensions and
    shifts and scales the rest as a function of it: one pass both ways. ``log_scale_bound``
    soft-bounds every log-scale (:func:`soft_clamp`; None: unbounded).

    Example:
        >>> [type(b).__name__ for b in realnvp_chain(num_layers=1).bijectors]
        ['RealNVP', 'Permute']
    """
    num_layers, hidden_units, activation, ndim, seed = _chain_args(
        num_layers, hidden_units, activation, ndim, seed)
    log_scale_bound = _log_scale_bound(log_scale_bound)
    half = ndim // 2
    layers = [tfb.RealNVP(num_masked=half, name=f"realnvp_{i}", shift_and_log_scale_fn=_AffineCoupling(
        ndim - half, hidden_units, activation, seed, i, name=f"affine_coupling_{i}",
        log_scale_bound=log_scale_bound)) for i in range(num_layers)]
    return _with_permutations(layers, ndim, "realnvp_chain", actnorm)


def _spline_options(options: dict[str, Any]) -> dict[str, Any]:
    return dict(zip(("bins", "bound"), _spline_args(options["bins"], options["bound"])))


@family("spline", {"bins": SPLINE_BINS, "bound": SPLINE_BOUND}, _spline_options,
        cli={"bins": "bins of each spline", "bound": "the splines cover [-bound, bound], the identity outside"},
        layer_names={"SplineCoupling": "spline coupling"})
def spline_chain(*, num_layers: int = 3, hidden_units: Sequence[int] = (128, 128),
                 activation: str = "relu", ndim: int = 2, seed: int = 0, bins: int = SPLINE_BINS,
                 bound: float = SPLINE_BOUND) -> tfb.Chain:
    """Neural spline flow: coupling layers whose transform is a monotone
    rational-quadratic spline (``bins`` bins on [-bound, bound]) instead of an affine map.

    Example:
        >>> [type(b).__name__ for b in spline_chain(num_layers=1).bijectors]
        ['SplineCoupling', 'Permute']
    """
    num_layers, hidden_units, activation, ndim, seed = _chain_args(
        num_layers, hidden_units, activation, ndim, seed)
    bins, bound = _spline_args(bins, bound)
    layers = [SplineCoupling(ndim, hidden_units, activation, seed, bins, bound, layer=i, name=f"spline_{i}")
              for i in range(num_layers)]
    return _with_permutations(layers, ndim, "spline_chain")


@family("cnf", continuous.CNF_OPTIONS, continuous.check_options, layer_names={"CNF": "CNF"}, layered=False)
def cnf_chain(*, num_layers: int = 1, hidden_units: Sequence[int] = (64, 64), activation: str = "swish",
              ndim: int = 2, seed: int = 0, **options: Any) -> tfb.Chain:
    """A continuous flow (:mod:`flowlab.flows.continuous`): one ODE, ``tfb.FFJORD`` on a new velocity field
    ``v(t, x)`` with ``hidden_units``. ``num_layers`` must be 1; ``options`` are
    :data:`flowlab.flows.continuous.CNF_OPTIONS`'s (the solver, its tolerances or steps, the trace).

    Example:
        >>> [type(b).__name__ for b in cnf_chain(hidden_units=(8,)).bijectors]
        ['CNF']
    """
    if _validate.positive_int("num_layers", num_layers) != 1:
        raise ValueError(f"num_layers must be 1 for a continuous flow (one ODE, one velocity field), got {num_layers}")
    _, hidden_units, activation, ndim, seed = _chain_args(1, hidden_units, activation, ndim, seed)
    velocity = continuous.VelocityField(hidden_units, activation, ndim, seed, name="velocity_field")
    return continuous.cnf_bijector(velocity, seed, options)


#: Flow family name -> chain builder (all take the same keyword arguments, and their family's
#: options); ``flowlab train --flow`` chooses among these. Read from :data:`FAMILIES`.
BUILDERS = {name: registered.build for name, registered in FAMILIES.items()}
FLOWS = tuple(FAMILIES)
#: The families built of [layer, Permute] blocks: all but the continuous flow ("cnf").
LAYER_FLOWS = tuple(name for name, registered in FAMILIES.items() if registered.layered)


@dataclass(frozen=True)
class FlowConfig:
    """Everything needed to rebuild a flow: saved next to its weights.

    ``loc`` and ``scale`` (optional, together, one number per dimension) standardize the
    data inside the flow. ``options`` are the family's own (:data:`FAMILIES`: the spline's
    ``bins`` and ``bound``, the affine families' ``log_scale_bound``, None for unbounded); the
    ones not given take the family's defaults. Every field is checked when the config is made.

    Example:
        >>> FlowConfig(flow="spline", options={"bins": 8}).options
        {'bins': 8, 'bound': 5.0}
        >>> FlowConfig(num_layers=33)  # the bounds of flowlab._validate.LIMITS, as flowlab train's --layers
        Traceback (most recent call last):
        ...
        ValueError: num_layers must be an integer from 1 to 32, got 33
        >>> FlowConfig(flow="maf", options={"bins": 8})
        Traceback (most recent call last):
        ...
        ValueError: options of flow 'maf' must be among 'log_scale_bound', 'actnorm', got 'bins'
    """

    flow: str = "maf"
    num_layers: int = 3
    hidden_units: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    ndim: int = 2
    seed: int = 0
    loc: tuple[float, ...] | None = None
    scale: tuple[float, ...] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        registered = FAMILIES[_validate.one_of("flow", self.flow, FLOWS)]
        _validate.mapping("options", self.options)
        _, hidden_units, _, ndim, _ = _chain_args(self.num_layers, self.hidden_units, self.activation,
                                                  self.ndim, self.seed)
        object.__setattr__(self, "hidden_units", hidden_units)  # a list given becomes a tuple
        unknown = [name for name in self.options if name not in registered.options]
        if unknown:
            allowed = ", ".join(map(repr, registered.options)) or "none"
            raise ValueError(f"options of flow {self.flow!r} must be among {allowed}, got {', '.join(map(repr, unknown))}")
        object.__setattr__(self, "options", registered.check({**registered.options, **self.options}))
        self._check_standardization(ndim)

    def _check_standardization(self, ndim: int) -> None:
        if (self.loc is None) != (self.scale is None):
            raise ValueError(f"loc and scale must be given together to standardize the data, "
                             f"got loc={self.loc!r} and scale={self.scale!r}")
        if self.loc is not None:
            standardize_bijector(self.loc, self.scale)  # finite numbers, positive scales
            for name in ("loc", "scale"):
                values = tuple(float(v) for v in getattr(self, name))
                if len(values) != ndim:
                    raise ValueError(f"{name} must hold one number per dimension (ndim={ndim}), "
                                     f"got {len(values)}: {values!r}")
                object.__setattr__(self, name, values)

    def to_dict(self) -> dict:
        return {**asdict(self), "options": dict(self.options)}

    @classmethod
    def from_dict(cls, values: dict) -> "FlowConfig":
        """A config from :meth:`to_dict`'s output, or from what flowlab saved before families had
        their own options (``bins``, ``bound`` and ``log_scale_bound`` at the top, for every
        family; an affine flow saved without ``log_scale_bound`` was trained unbounded).

        Example:
            >>> FlowConfig.from_dict({"flow": "maf", "bins": 16, "bound": 5.0}).options
            {'log_scale_bound': None, 'actnorm': False}
        """
        values = dict(values)
        for key in ("hidden_units", "loc", "scale"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        if "options" not in values:  # saved before families had their own options
            legacy = {key: values.pop(key) for key in ("bins", "bound", "log_scale_bound") if key in values}
            own = FAMILIES[values.get("flow", "maf")].options if values.get("flow", "maf") in FAMILIES else {}
            defaults = {"log_scale_bound": None}  # flows saved before log-scales were bounded
            values["options"] = {key: legacy.get(key, defaults.get(key, own[key])) for key in own}
        return cls(**values)


class Flow(OnePassDensity, tfd.TransformedDistribution):
    """A flow made by :func:`make_flow`: the base distribution pushed through the bijector,
    with the :class:`FlowConfig` it was made from as ``config`` (what
    :func:`flowlab.io.save_flow` writes next to the weights). Its checkpoint is a plain
    TransformedDistribution's: the config is not a variable.

    Example:
        >>> make_flow(FlowConfig(num_layers=1, hidden_units=(4,))).config.num_layers
        1
    """

    def __init__(self, distribution: tfd.Distribution, bijector: tfb.Bijector, config: FlowConfig,
                 name: str | None = None):
        parameters = {"distribution": distribution, "bijector": bijector, "config": config, "name": name}
        super().__init__(distribution=distribution, bijector=bijector, name=name)
        self._parameters = parameters  # the subclass's own, so that copies keep the config
        self._config = config

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return tfd.TransformedDistribution._parameter_properties(dtype, num_classes)

    @property
    def config(self) -> FlowConfig:
        """The configuration this flow was made from."""
        return self._config


def build(flow: tfd.Distribution, ndim: int = 2) -> tfd.Distribution:
    """Create a flow's network weights now and return the flow. Keras creates them on the
    first call, so one ``log_prob`` on a point of zeros does it; a :class:`Flow` from
    :func:`make_flow` is built already and returned as is.

    Example:
        >>> td = tfd.TransformedDistribution(standard_normal(), maf_chain(num_layers=1, hidden_units=(4,)))
        >>> len(td.trainable_variables), len(build(td).trainable_variables)
        (0, 4)
    """
    return flow if isinstance(flow, Flow) else _build(flow, _validate.positive_int("ndim", ndim))


def _build(flow: tfd.Distribution, ndim: int) -> tfd.Distribution:
    flow.log_prob(tf.zeros((1, ndim)))
    return flow


def make_flow(config: FlowConfig = FlowConfig()) -> Flow:
    """A trainable flow, built (its weights exist): the standard normal pushed through the
    configured bijector. It carries ``config``.

    Example:
        >>> flow = make_flow(FlowConfig(num_layers=1, hidden_units=(8,)))
        >>> flow.log_prob([[0.0, 0.0]]).shape, len(flow.trainable_variables)
        (TensorShape([1]), 4)
    """
    if not isinstance(config, FlowConfig):
        raise ValueError(f"config must be a FlowConfig (FlowConfig.from_dict makes one from a dict), "
                         f"got {type(config).__name__}: {config!r}")
    bijector = FAMILIES[config.flow].build(num_layers=config.num_layers, hidden_units=config.hidden_units,
                                           activation=config.activation, ndim=config.ndim, seed=config.seed,
                                           **config.options)
    if config.loc is not None:
        bijector = tfb.Chain([standardize_bijector(config.loc, config.scale), bijector])
    return _build(Flow(standard_normal(config.ndim), bijector, config), config.ndim)

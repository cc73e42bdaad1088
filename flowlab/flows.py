"""Distributions and bijectors of the lab: the Gaussian base, the shift/scale
demo, the lab's chain of masked autoregressive flows with permutations, and the
other families the sheet names (IAF, RealNVP) plus a neural spline flow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate, spline

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = [
    "FlowConfig",
    "FLOWS",
    "standard_normal",
    "shift_scale_demo",
    "standardize_bijector",
    "maf_chain",
    "iaf_chain",
    "realnvp_chain",
    "spline_chain",
    "SplineCoupling",
    "BUILDERS",
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
    return tfb.Shift(loc.astype(np.float32))(tfb.Scale(scale.astype(np.float32)))


def _chain_args(num_layers: int, hidden_units: Sequence[int], activation: str, ndim: int,
                seed: int) -> tuple[int, tuple[int, ...], str, int, int]:
    """Validate the arguments every chain builder shares."""
    num_layers = _validate.positive_int("num_layers", num_layers)
    hidden_units = _validate.hidden_units("hidden_units", hidden_units)
    activation = _validate.one_of("activation", activation, ACTIVATIONS)
    ndim = _validate.positive_int("ndim", ndim)
    if ndim < 2:
        raise ValueError(f"ndim must be >= 2 for a flow that mixes dimensions, got {ndim}")
    seed = _validate.non_negative_int("seed", seed)
    return num_layers, hidden_units, activation, ndim, seed


def _with_permutations(layers: list[tfb.Bijector], ndim: int, name: str) -> tfb.Chain:
    """[layer, Permute] for each layer: each Permute reverses the dimensions so the next
    layer transforms what the last one only conditioned on."""
    bijectors = []
    for i, layer in enumerate(layers):
        bijectors += [layer, tfb.Permute(list(reversed(range(ndim))), name=f"permute_{i}")]
    return tfb.Chain(bijectors, name=name)


#: Default bound on every affine layer's log-scale (MAF, IAF, RealNVP): each layer stretches or
#: shrinks a coordinate by at most e^3, about 20 times. Without a bound the log-scale can grow
#: without limit: some seeds diverge (the scale overflows) and an IAF's density overflows far from
#: the data. See benchmarks/README.md (the stall study) for what the bound does to training.
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


def _glorot(seed: int, i: int) -> tf.keras.initializers.Initializer:
    return tf.keras.initializers.GlorotUniform(seed=seed * 1000 + i)


class _BoundedMADE(tfb.AutoregressiveNetwork):
    """A MADE with two outputs per unit, (shift, log-scale), whose log-scale goes through
    :func:`soft_clamp`."""

    def __init__(self, log_scale_bound: float | None, **kwargs):
        super().__init__(params=2, **kwargs)
        self._log_scale_bound = log_scale_bound

    def call(self, x: tf.Tensor) -> tf.Tensor:
        shift, log_scale = tf.unstack(super().call(x), num=2, axis=-1)
        return tf.stack([shift, soft_clamp(log_scale, self._log_scale_bound)], axis=-1)


def _made(hidden_units: tuple[int, ...], activation: str, seed: int, i: int,
          log_scale_bound: float | None = LOG_SCALE_BOUND) -> tfb.AutoregressiveNetwork:
    return _BoundedMADE(log_scale_bound, hidden_units=list(hidden_units), activation=activation,
                        kernel_initializer=_glorot(seed, i))


def maf_chain(num_layers: int = 3, hidden_units: Sequence[int] = (128, 128),
              activation: str = "relu", ndim: int = 2, seed: int = 0,
              log_scale_bound: float | None = LOG_SCALE_BOUND) -> tfb.Chain:
    """The lab's flow: ``num_layers`` x [MaskedAutoregressiveFlow, Permute].

    Each MAF's shift and log-scale come from an AutoregressiveNetwork with the
    given hidden units and activation. Density evaluation is one network pass;
    sampling takes ``ndim`` sequential passes. Weights start from seeded Glorot
    initializers: the same seed gives the same flow.

    Example:
        >>> [type(b).__name__ for b in maf_chain(2).bijectors]
        ['MaskedAutoregressiveFlow', 'Permute', 'MaskedAutoregressiveFlow', 'Permute']
    """
    num_layers, hidden_units, activation, ndim, seed = _chain_args(
        num_layers, hidden_units, activation, ndim, seed)
    layers = [tfb.MaskedAutoregressiveFlow(_made(hidden_units, activation, seed, i, log_scale_bound), name=f"maf_{i}")
              for i in range(num_layers)]
    return _with_permutations(layers, ndim, "maf_chain")


def iaf_chain(num_layers: int = 3, hidden_units: Sequence[int] = (128, 128),
              activation: str = "relu", ndim: int = 2, seed: int = 0,
              log_scale_bound: float | None = LOG_SCALE_BOUND) -> tfb.Chain:
    """Inverse autoregressive flow: each layer is a MAF run backwards (``tfb.Invert``).

    Sampling is one network pass; density evaluation takes ``ndim`` sequential passes.

    Example:
        >>> [type(b).__name__.lstrip("_") for b in iaf_chain(1).bijectors]
        ['Invert', 'Permute']
    """
    num_layers, hidden_units, activation, ndim, seed = _chain_args(
        num_layers, hidden_units, activation, ndim, seed)
    layers = [tfb.Invert(tfb.MaskedAutoregressiveFlow(_made(hidden_units, activation, seed, i, log_scale_bound)),
                         name=f"iaf_{i}") for i in range(num_layers)]
    return _with_permutations(layers, ndim, "iaf_chain")


class _CouplingNetwork(tf.Module):
    """A dense network from the conditioning half to ``params`` outputs per transformed unit."""

    def __init__(self, hidden_units: tuple[int, ...], activation: str, outputs: int, seed: int,
                 name: str):
        super().__init__(name=name)
        layers = [tf.keras.layers.Dense(units, activation=activation, kernel_initializer=_glorot(seed, j))
                  for j, units in enumerate(hidden_units)]
        # The last layer starts at zero, so every coupling starts as the identity.
        layers.append(tf.keras.layers.Dense(outputs, kernel_initializer="zeros"))
        self.network = tf.keras.Sequential(layers)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return self.network(x)


class _AffineCoupling(tf.Module):
    """RealNVP's ``shift_and_log_scale_fn``: (shift, log-scale) of the transformed half."""

    def __init__(self, units: int, hidden_units, activation, seed, name,
                 log_scale_bound: float | None = LOG_SCALE_BOUND):
        super().__init__(name=name)
        self.net = _CouplingNetwork(hidden_units, activation, 2 * units, seed, name=f"{name}_net")
        self.log_scale_bound = log_scale_bound

    def __call__(self, x: tf.Tensor, output_units: int, **condition_kwargs):
        shift, log_scale = tf.split(self.net(x), 2, axis=-1)
        return shift, soft_clamp(log_scale, self.log_scale_bound)


#: Bins per spline. Measured on the moons (5 seeds, 80 epochs): 16 bins reach a median KL of
#: 0.016 against 8 bins' 0.022, for about 10% more training time.
SPLINE_BINS = 16


class SplineCoupling(tfb.Bijector):
    """A neural-spline coupling layer: the first ``ndim // 2`` coordinates pass through and
    set, through a dense network, a monotone rational-quadratic spline (``bins`` bins on
    ``[-bound, bound]``, identity outside) for each of the others.

    The spline runs in the density direction (data to noise), as in Durkan et al.'s density
    experiments: ``log_prob`` is one network pass and one spline evaluation per layer, and
    sampling inverts the spline by solving a quadratic per point. Zero final-layer weights
    make the layer start as the identity.
    """

    def __init__(self, ndim: int, hidden_units: tuple[int, ...], activation: str, seed: int,
                 bins: int = SPLINE_BINS, bound: float = 5.0, name: str = "spline_coupling"):
        parameters = dict(locals())
        super().__init__(forward_min_event_ndims=1, parameters=parameters, name=name)
        self.num_masked = ndim // 2
        self.units, self.bins, self.bound = ndim - self.num_masked, bins, bound
        self.net = _CouplingNetwork(hidden_units, activation, self.units * (3 * bins - 1), seed,
                                    name=f"{name}_net")

    def _spline_parameters(self, condition: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Bin widths and heights (each summing to ``2 * bound``, none under ``min_size``) and
        the inner knots' slopes, per transformed unit."""
        shape = tf.concat([tf.shape(condition)[:-1], [self.units, 3 * self.bins - 1]], axis=0)
        widths, heights, slopes = tf.split(tf.reshape(self.net(condition), shape),
                                           [self.bins, self.bins, self.bins - 1], axis=-1)
        min_size = 1e-2

        def sizes(logits):
            return tf.nn.softmax(logits, axis=-1) * (2 * self.bound - self.bins * min_size) + min_size

        # softplus(log(e^(1 - min_size) - 1)) + min_size = 1: zero outputs give unit slopes
        slopes = tf.nn.softplus(slopes + np.log(np.expm1(1.0 - min_size))) + min_size
        return sizes(widths), sizes(heights), slopes

    def _split(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return x[..., :self.num_masked], x[..., self.num_masked:]

    def _forward(self, x: tf.Tensor) -> tf.Tensor:
        x0, x1 = self._split(x)
        return tf.concat([x0, spline.rqs_inverse(x1, *self._spline_parameters(x0), self.bound)], axis=-1)

    def _inverse_and_log_det(self, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        y0, y1 = self._split(y)
        x1, log_derivative = spline.rqs_forward(y1, *self._spline_parameters(y0), self.bound)
        return tf.concat([y0, x1], axis=-1), tf.reduce_sum(log_derivative, axis=-1)

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        x, inverse_log_det = self._inverse_and_log_det(y)
        # log_prob asks for inverse(y), then inverse_log_det_jacobian(y): leave the second
        # in TFP's bijector cache (as tfb.FFJORD does) so the network runs once, not twice.
        self._cache.inverse_attributes(y)["ildj"] = inverse_log_det
        return x

    def _inverse_log_det_jacobian(self, y: tf.Tensor) -> tf.Tensor:
        return self._inverse_and_log_det(y)[1]


def realnvp_chain(num_layers: int = 3, hidden_units: Sequence[int] = (128, 128),
                  activation: str = "relu", ndim: int = 2, seed: int = 0,
                  log_scale_bound: float | None = LOG_SCALE_BOUND) -> tfb.Chain:
    """RealNVP: affine coupling layers. Each keeps the first half of the dimensions and
    shifts and scales the rest as a function of it: one pass both ways.

    Example:
        >>> [type(b).__name__ for b in realnvp_chain(1).bijectors]
        ['RealNVP', 'Permute']
    """
    num_layers, hidden_units, activation, ndim, seed = _chain_args(
        num_layers, hidden_units, activation, ndim, seed)
    half = ndim // 2
    layers = [tfb.RealNVP(num_masked=half, name=f"realnvp_{i}", shift_and_log_scale_fn=_AffineCoupling(
        ndim - half, hidden_units, activation, seed * 1000 + 100 * i, name=f"affine_coupling_{i}",
        log_scale_bound=log_scale_bound))
        for i in range(num_layers)]
    return _with_permutations(layers, ndim, "realnvp_chain")


def spline_chain(num_layers: int = 3, hidden_units: Sequence[int] = (128, 128),
                 activation: str = "relu", ndim: int = 2, seed: int = 0) -> tfb.Chain:
    """Neural spline flow: coupling layers whose transform is a monotone
    rational-quadratic spline (16 bins on [-5, 5]) instead of an affine map.

    Example:
        >>> [type(b).__name__ for b in spline_chain(1).bijectors]
        ['SplineCoupling', 'Permute']
    """
    num_layers, hidden_units, activation, ndim, seed = _chain_args(
        num_layers, hidden_units, activation, ndim, seed)
    layers = [SplineCoupling(ndim, hidden_units, activation, seed * 1000 + 100 * i, name=f"spline_{i}")
              for i in range(num_layers)]
    return _with_permutations(layers, ndim, "spline_chain")


#: Flow family name -> chain builder; ``flowlab train --flow`` chooses among these.
BUILDERS = {"maf": maf_chain, "iaf": iaf_chain, "realnvp": realnvp_chain, "spline": spline_chain}
FLOWS = tuple(BUILDERS)


@dataclass(frozen=True)
class FlowConfig:
    """Everything needed to rebuild a flow: saved next to its weights.

    ``loc`` and ``scale`` (optional) standardize the data inside the flow. ``log_scale_bound``
    bounds the affine families' log-scales (see :func:`soft_clamp`; None: unbounded, as flowlab
    built them before the stall study; the spline flow has no log-scale and ignores it).
    """

    flow: str = "maf"
    num_layers: int = 3
    hidden_units: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    ndim: int = 2
    seed: int = 0
    loc: tuple[float, ...] | None = None
    scale: tuple[float, ...] | None = None
    log_scale_bound: float | None = LOG_SCALE_BOUND

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def for_data(cls, data: np.ndarray, standardize: bool = True, **options) -> "FlowConfig":
        """A config for ``data``: with ``standardize``, the flow learns in
        standardized units through a fixed affine bijector set from the data's
        mean and standard deviation.

        Example:
            >>> FlowConfig.for_data(np.array([[0.0, 1.0], [2.0, 3.0]])).loc
            (1.0, 2.0)
        """
        data = _validate.points("data", data, ndim=options.get("ndim", 2))
        if not standardize:
            return cls(**options)
        scale = data.std(axis=0)
        if np.any(scale == 0):
            raise ValueError(f"data must vary along every axis to standardize, got std {scale.tolist()}")
        return cls(loc=tuple(data.mean(axis=0).tolist()), scale=tuple(scale.tolist()), **options)

    @classmethod
    def from_dict(cls, values: dict) -> "FlowConfig":
        values = dict(values)
        for key in ("hidden_units", "loc", "scale"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def make_flow(config: FlowConfig = FlowConfig()) -> tfd.TransformedDistribution:
    """A trainable flow: the standard normal pushed through the configured bijector.

    Example:
        >>> flow = make_flow(FlowConfig(num_layers=1, hidden_units=(8,)))
        >>> flow.log_prob([[0.0, 0.0]]).shape
        TensorShape([1])
    """
    _validate.one_of("flow", config.flow, FLOWS)
    bound = {} if config.flow == "spline" else {"log_scale_bound": config.log_scale_bound}
    bijector = BUILDERS[config.flow](config.num_layers, config.hidden_units, config.activation,
                                     config.ndim, config.seed, **bound)
    if config.loc is not None or config.scale is not None:
        if config.loc is None or config.scale is None:
            raise ValueError("loc and scale must be given together to standardize the data")
        bijector = tfb.Chain([standardize_bijector(config.loc, config.scale), bijector])
    return tfd.TransformedDistribution(standard_normal(config.ndim), bijector=bijector)

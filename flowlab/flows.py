"""Distributions and bijectors of the lab: the Gaussian base, the shift/scale
demo and the chain of masked autoregressive flows with permutations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = [
    "FlowConfig",
    "FLOWS",
    "standard_normal",
    "shift_scale_demo",
    "standardize_bijector",
    "maf_chain",
    "make_flow",
]

FLOWS = ("maf",)
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


def maf_chain(num_layers: int = 3, hidden_units: Sequence[int] = (128, 128),
              activation: str = "relu", ndim: int = 2, seed: int = 0) -> tfb.Chain:
    """The lab's flow: ``num_layers`` x [MaskedAutoregressiveFlow, Permute].

    Each MAF's shift and log-scale come from an AutoregressiveNetwork with the
    given hidden units and activation; each Permute reverses the dimensions so
    the next MAF conditions on what the last one could not. Weights start from
    seeded Glorot initializers: the same seed gives the same flow.

    Example:
        >>> [type(b).__name__ for b in maf_chain(2).bijectors]
        ['MaskedAutoregressiveFlow', 'Permute', 'MaskedAutoregressiveFlow', 'Permute']
    """
    num_layers = _validate.positive_int("num_layers", num_layers)
    hidden_units = _validate.hidden_units("hidden_units", hidden_units)
    activation = _validate.one_of("activation", activation, ACTIVATIONS)
    ndim = _validate.positive_int("ndim", ndim)
    if ndim < 2:
        raise ValueError(f"ndim must be >= 2 for an autoregressive flow, got {ndim}")
    seed = _validate.non_negative_int("seed", seed)
    bijectors = []
    for i in range(num_layers):
        network = tfb.AutoregressiveNetwork(
            params=2,
            hidden_units=list(hidden_units),
            activation=activation,
            kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed * 1000 + i),
        )
        bijectors.append(tfb.MaskedAutoregressiveFlow(network, name=f"maf_{i}"))
        bijectors.append(tfb.Permute(list(reversed(range(ndim))), name=f"permute_{i}"))
    return tfb.Chain(bijectors, name="maf_chain")


@dataclass(frozen=True)
class FlowConfig:
    """Everything needed to rebuild a flow: saved next to its weights.

    ``loc`` and ``scale`` (optional) standardize the data inside the flow.
    """

    flow: str = "maf"
    num_layers: int = 3
    hidden_units: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    ndim: int = 2
    seed: int = 0
    loc: tuple[float, ...] | None = None
    scale: tuple[float, ...] | None = None

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
    bijector = maf_chain(config.num_layers, config.hidden_units, config.activation,
                         config.ndim, config.seed)
    if config.loc is not None or config.scale is not None:
        if config.loc is None or config.scale is None:
            raise ValueError("loc and scale must be given together to standardize the data")
        bijector = tfb.Chain([standardize_bijector(config.loc, config.scale), bijector])
    return tfd.TransformedDistribution(standard_normal(config.ndim), bijector=bijector)

"""The lab's basic pieces: the Gaussian base distribution, the sheet's shift/scale demo, the fixed
standardizing map, and the check of the arguments every chain builder shares."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow_probability as tfp

from flowlab import _validate

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["ACTIVATIONS", "standard_normal", "shift_scale_demo", "standardize_bijector", "chain_args"]


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


def chain_args(num_layers: int, hidden_units: Sequence[int], activation: str, ndim: int,
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

"""The flow families, one keyword-only chain builder each, registered with their own options: MAF and
IAF (masked autoregressive), RealNVP (affine coupling), the neural spline flow, and the continuous
flow (one ODE, :mod:`flowlab.flows.continuous`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.flows import continuous, spline
from flowlab.flows.base import chain_args
from flowlab.flows.layers import (LOG_SCALE_BOUND, SPLINE_BINS, SPLINE_BOUND, ActNorm, CouplingNetwork, SplineCoupling,
                                  glorot, soft_clamp)
from flowlab.flows.registry import FAMILIES, family

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["maf_chain", "iaf_chain", "realnvp_chain", "spline_chain", "cnf_chain", "BUILDERS", "FLOWS",
           "LAYER_FLOWS"]


def _spline_args(bins: int, bound: float) -> tuple[int, float]:
    """Validate a spline's bins and bound (within :data:`flowlab._validate.LIMITS`, with room for
    every bin's minimum size)."""
    bins = _validate.within("bins", "bins", bins)
    bound = _validate.within("bound", "bound", bound)
    return bins, _validate.finite_float("bound", bound, minimum=bins * spline.MIN_SIZE / 2, strict=True)


def _with_permutations(layers: list[tfb.Bijector], ndim: int, name: str, actnorm: bool = False) -> tfb.Chain:
    """[layer, Permute] for each layer: each Permute reverses the dimensions so the next
    layer transforms what the last one only conditioned on. ``actnorm``: an :class:`ActNorm`
    before each layer (in the density direction), [ActNorm, layer, Permute]."""
    bijectors = []
    for i, layer in enumerate(layers):
        bijectors += [ActNorm((ndim,), name=f"actnorm_{i}")] if actnorm else []
        bijectors += [layer, tfb.Permute(list(reversed(range(ndim))), name=f"permute_{i}")]
    return tfb.Chain(bijectors, name=name)


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
    num_layers, hidden_units, activation, ndim, seed = chain_args(
        num_layers, hidden_units, activation, ndim, seed)
    log_scale_bound = _log_scale_bound(log_scale_bound)
    layers = []
    for i in range(num_layers):
        made = _BoundedMADE(log_scale_bound, hidden_units=list(hidden_units), activation=activation,
                            kernel_initializer=glorot(seed, i))
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


class _AffineCoupling(tf.Module):
    """RealNVP's ``shift_and_log_scale_fn``: (shift, log-scale) of the transformed half."""

    def __init__(self, units: int, hidden_units, activation, seed, layer, name,
                 log_scale_bound: float | None = LOG_SCALE_BOUND):
        super().__init__(name=name)
        self.net = CouplingNetwork(hidden_units, activation, 2 * units, seed, layer, name=f"{name}_net")
        self.log_scale_bound = log_scale_bound

    def __call__(self, x: tf.Tensor, output_units: int, **condition_kwargs):
        shift, log_scale = tf.split(self.net(x), 2, axis=-1)
        return shift, soft_clamp(log_scale, self.log_scale_bound)


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
    num_layers, hidden_units, activation, ndim, seed = chain_args(
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
    num_layers, hidden_units, activation, ndim, seed = chain_args(
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
    _, hidden_units, activation, ndim, seed = chain_args(1, hidden_units, activation, ndim, seed)
    velocity = continuous.VelocityField(hidden_units, activation, ndim, seed, name="velocity_field")
    return continuous.cnf_bijector(velocity, seed, options)


#: Flow family name -> chain builder (all take the same keyword arguments, and their family's
#: options); ``flowlab train --flow`` chooses among these. Read from :data:`FAMILIES`.
BUILDERS = {name: registered.build for name, registered in FAMILIES.items()}
FLOWS = tuple(FAMILIES)
#: The families built of [layer, Permute] blocks: all but the continuous flow ("cnf").
LAYER_FLOWS = tuple(name for name, registered in FAMILIES.items() if registered.layered)

"""A flow's configuration and the flow made from it: :class:`FlowConfig` (everything needed to rebuild
a flow, saved next to its weights), :class:`Flow` and :func:`make_flow`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.flows.base import chain_args, standard_normal, standardize_bijector
from flowlab.flows.families import FLOWS
from flowlab.flows.layers import OnePassDensity
from flowlab.flows.registry import FAMILIES

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["FlowConfig", "Flow", "build", "make_flow"]


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
        _, hidden_units, _, ndim, _ = chain_args(self.num_layers, self.hidden_units, self.activation,
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
        >>> from flowlab.flows import maf_chain
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

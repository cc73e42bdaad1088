"""The flow families' registry: each chain builder registers once (:func:`family`), with the options
only it takes; the command line, :class:`~flowlab.flows.FlowConfig`, save and load, the figures and
the tests read :data:`FAMILIES`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import tensorflow_probability as tfp

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["Family", "FAMILIES", "family"]


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

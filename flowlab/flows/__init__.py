"""Distributions and bijectors of the lab: the Gaussian base, the shift/scale
demo, the lab's chain of masked autoregressive flows with permutations, and the
other families the sheet names (IAF, RealNVP) plus a neural spline flow.

Every name is importable from here (``flowlab.flows.FlowConfig``, ``flows.LAYER_FLOWS``, ...);
the package holds them in parts: :mod:`~flowlab.flows.base` (the base distribution, the
demo and standardizing maps, the builders' shared arguments), :mod:`~flowlab.flows.registry`
(the families' registry), :mod:`~flowlab.flows.layers` (ActNorm, the soft-clamped log-scale,
the spline coupling, the one-pass inverse), :mod:`~flowlab.flows.families` (one chain builder
per family) and :mod:`~flowlab.flows.config` (:class:`FlowConfig`, :class:`Flow`,
:func:`make_flow`); beside them the written-out spline (:mod:`~flowlab.flows.spline`) and the
continuous flow (:mod:`~flowlab.flows.continuous`)."""

from __future__ import annotations

import tensorflow_probability as tfp

from flowlab.flows import continuous, spline
from flowlab.flows.base import ACTIVATIONS, chain_args, shift_scale_demo, standard_normal, standardize_bijector
from flowlab.flows.config import Flow, FlowConfig, build, make_flow
from flowlab.flows.families import (BUILDERS, FLOWS, LAYER_FLOWS, cnf_chain, iaf_chain, maf_chain, realnvp_chain,
                                    spline_chain)
from flowlab.flows.layers import (LOG_SCALE_BOUND, SPLINE_BINS, SPLINE_BOUND, ActNorm, CouplingNetwork,
                                  OnePassDensity, OnePassInverse, SoftClampedLogScale, SplineCoupling, density_steps,
                                  glorot, initialize_actnorms, kind_name, layer_seed, log_scale_bound_of, one_pass,
                                  shift_and_log_scale_network, soft_clamp)
from flowlab.flows.registry import FAMILIES, Family, family

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

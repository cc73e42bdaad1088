"""The grader's own verdict on the trained flow, computed outside the student's kernel.

Every check runs in the student's kernel, where a determined notebook can reach the checker and
change what it says. The check that decides most points (is the flow trained?) is therefore
judged twice while ``flowlab grade`` runs:

1. **In the kernel**, a last cell the grader appends (:func:`save`) writes the trained chain of
   ``td`` to a file: its structure (which bijectors, the networks' sizes) and its weights, as
   plain arrays (``.npz``, no pickles).
2. **In the grader's process tree, after the kernel is gone**, :func:`judge` rebuilds the chain
   from that file (only MAF and Permute layers of bounded size are accepted), scores it on fresh
   points from a seed the kernel never saw, and returns its KL divergence to the exact density.

A notebook that fakes the in-kernel check still has to hand over weights that really fit the
moons; one that withholds them fails the training check with that reason.

    python -m flowlab.grader.verdict ARTIFACT SEED     # prints the verdict as JSON (what the grader runs)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ARTIFACT_VARIABLE", "MAX_KL", "take_artifact_path", "save", "judge", "main"]

#: Where :func:`save` writes the artifact (set by the grader; without it, nothing is saved).
ARTIFACT_VARIABLE = "FLOWLAB_VERDICT_FILE"
#: The KL to the exact density (nats) a trained flow must beat: the one bound of the training
#: verdict, in the kernel (``flowlab.grader.checks``' training check) and outside it (:func:`judge`).
#: An untrained chain is about 2 nats away; a trained one well under 0.5.
MAX_KL = 0.5
_MAX_LAYERS = 16
_MAX_UNITS = 1024
_MAX_LOG_SCALE_BOUND = 20.0  # a saved bound beyond this is not one the lab makes
#: Where :func:`save` writes, taken out of the environment by :func:`take_artifact_path`.
_ARTIFACT: str | None = None


def take_artifact_path() -> str | None:
    """Take :data:`ARTIFACT_VARIABLE` out of the environment into this module, for :func:`save`;
    returns it (None outside grading, and nothing changes).

    Not done on import: importing flowlab changes no environment. The grader's kernel start-up
    file calls it, with :func:`flowlab.grader.checks.take_grading_key`, before any cell of the notebook
    runs, so no cell finds where the grader reads the trained flow from.

    Example:
        >>> take_artifact_path() is None  # outside grading: nothing to take, nothing changes
        True
    """
    global _ARTIFACT
    path = os.environ.pop(ARTIFACT_VARIABLE, None)
    if path is not None:
        _ARTIFACT = path
    return path


def _kind(bijector: Any) -> str:
    """A bijector's class name without TFP's private prefix (``tfb.Chain`` builds a ``_Chain``)."""
    return type(bijector).__name__.lstrip("_")


def _layers(td: Any) -> list[dict]:
    """The chain of ``td`` as a list of layer descriptions, in the chain's order."""
    from flowlab.flows import log_scale_bound_of, shift_and_log_scale_network  # runs in the student's kernel

    chain = td.bijector
    bijectors = list(chain.bijectors) if _kind(chain) == "Chain" else [chain]
    layers = []
    for bijector in bijectors:
        if _kind(bijector) == "Permute":
            layers.append({"kind": "permute", "permutation": [int(i) for i in np.asarray(bijector.permutation)]})
        elif _kind(bijector) == "MaskedAutoregressiveFlow":
            network = shift_and_log_scale_network(bijector)  # the AutoregressiveNetwork layer
            layers.append({"kind": "maf", "hidden_units": [int(u) for u in network._hidden_units],
                           "activation": str(getattr(network._activation, "__name__", network._activation)),
                           "log_scale_bound": log_scale_bound_of(bijector),
                           "weights": [np.asarray(w) for w in network.get_weights()]})
        else:
            raise ValueError(f"the chain holds a {type(bijector).__name__}; the grader rebuilds MAF and Permute only")
    return layers


def save(namespace: Mapping[str, Any]) -> str:
    """Write the trained chain of ``namespace['td']`` for :func:`judge` (while grading only)."""
    if not _ARTIFACT:
        return "not grading: nothing saved"
    layers = _layers(namespace["td"])
    arrays = {f"w{i}_{j}": w for i, layer in enumerate(layers) for j, w in enumerate(layer.pop("weights", []))}
    np.savez(_ARTIFACT, structure=np.array(json.dumps(layers)), **arrays)
    return "saved"


def _rebuild(path: Path) -> Any:
    """The flow described by an artifact, with its weights; ValueError for anything else."""
    import flowlab  # noqa: F401  (Keras 2 before TensorFlow)
    import tensorflow as tf
    import tensorflow_probability as tfp

    from flowlab.flows import ACTIVATIONS

    tfb, tfd = tfp.bijectors, tfp.distributions
    with np.load(path, allow_pickle=False) as artifact:
        layers = json.loads(str(artifact["structure"]))
        arrays = {name: artifact[name] for name in artifact.files if name != "structure"}
    if not isinstance(layers, list) or not 0 < len(layers) <= _MAX_LAYERS:
        raise ValueError(f"the saved chain has {len(layers) if isinstance(layers, list) else 'no'} layers")
    bijectors = []
    for i, layer in enumerate(layers):
        if layer.get("kind") == "permute" and sorted(layer.get("permutation", [])) == [0, 1]:
            bijectors.append(tfb.Permute(layer["permutation"]))
        elif layer.get("kind") == "maf":
            units = layer.get("hidden_units", [])
            if not (isinstance(units, list) and 0 < len(units) <= 4 and all(0 < u <= _MAX_UNITS for u in units)
                    and layer.get("activation") in ACTIVATIONS):
                raise ValueError(f"layer {i}: an AutoregressiveNetwork of an unexpected shape")
            network = tfb.AutoregressiveNetwork(params=2, hidden_units=units, activation=layer["activation"],
                                                event_shape=[2])
            network(tf.zeros([1, 2]))
            weights = [arrays[f"w{i}_{j}"] for j in range(len(network.weights))]
            network.set_weights(weights)
            bijectors.append(tfb.MaskedAutoregressiveFlow(_bounded(network, layer.get("log_scale_bound"), i)))
        else:
            raise ValueError(f"layer {i}: {layer.get('kind')!r} is not a layer the lab builds")
    base = tfd.MultivariateNormalDiag(loc=tf.zeros(2))
    return tfd.TransformedDistribution(base, tfb.Chain(bijectors))


def _bounded(network: Any, bound: Any, layer: int) -> Any:
    """``network`` with its log-scale soft-clamped at ``bound`` as the lab trained it (None: unbounded)."""
    if bound is None:
        return network
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not 0 < bound <= _MAX_LOG_SCALE_BOUND:
        raise ValueError(f"layer {layer}: log_scale_bound must be a number in (0, {_MAX_LOG_SCALE_BOUND}], got {bound!r}")
    from flowlab.flows import SoftClampedLogScale

    return SoftClampedLogScale(network, float(bound))


def judge(path: str | Path, seed: int, n_samples: int = 20_000) -> dict[str, Any]:
    """The grader's verdict on a saved chain: ``{"kl": ..., "heldout_nll": ..., "passed": bool}``
    on ``n_samples`` fresh moons from ``seed``, or ``{"error": why, "passed": False}``."""
    path = Path(path)
    if not path.is_file():
        return {"passed": False, "error": "the trained flow was not handed over for the grader's own "
                                          "evaluation (the grader's last cell did not run to its end)"}
    try:
        flow = _rebuild(path)
        from flowlab.measure import evaluate

        scores = evaluate(flow, n_samples=n_samples, seed=seed)
    except Exception as error:  # noqa: BLE001 - any unusable artifact is a failed verdict, with its reason
        return {"passed": False, "error": f"the saved flow could not be rebuilt ({type(error).__name__}: {error})"}
    kl = float(scores["kl_to_exact"])
    return {"passed": bool(np.isfinite(kl) and kl < MAX_KL), "kl": kl, "heldout_nll": float(scores["heldout_nll"])}


def main(argv: list[str] | None = None) -> int:
    path, seed = (argv if argv is not None else sys.argv[1:])[:2]
    print(json.dumps(judge(path, int(seed))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

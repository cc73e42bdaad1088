"""Grading checks for the lab notebook: one per answer a student writes.

Each check looks the answer up by name in the notebook's namespace, tests what it
*does* (not how it is spelled), and returns one short deterministic line on success
or raises :class:`CheckFailed` with what is wrong and a hint. Check cells are marked
``# NBVAL_CHECK_OUTPUT`` (so that ``pytest --nbval-lax`` compares their output) and
call the checker through its import path, never through a notebook name::

    # NBVAL_CHECK_OUTPUT
    import flowlab.grader.checks
    flowlab.grader.checks.run("training", globals())

:func:`run` prints ``OK: <line>`` and, while ``flowlab grade`` runs, a seal
(:mod:`flowlab.grader._seal`) that a faked output cannot know. Defences against a
notebook that tries to fool the checker:

- the table of checks and a snapshot of the functions the checks rely on (here, in the
  framework :mod:`flowlab.grader.check_registry`, in the checks' own modules
  :mod:`flowlab.grader.checks_bijectors` and :mod:`flowlab.grader.checks_training`, in
  numpy, builtins, and the TFP/Keras classes of the answers) are taken when this module is
  imported; every check first verifies that none was replaced since;
- checks remember what earlier checks saw (a private ledger): the chain checked at
  ``flow_chain`` must be the one inside the trained ``td`` and the model, its
  weights must be the model's and must have changed in training, ``result`` must
  be that model's History, and ``zsamples`` must be a draw of that ``td``;
- the objects checked must be instances of the library's own classes, with no
  methods replaced on the instance.

Code running in the same kernel can still defeat all of this with enough effort;
see the README's grading section for exactly what is and is not defended.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import flowlab
from flowlab.bijectivity import Example, Verdict
from flowlab.grader import _check_guard, _seal, check_registry, checks_bijectors, checks_training
# the framework's public names, and each check's printing form (flowlab.checks.training, ...), by
# their old names here: registered in notebook order, the bijectors' checks first
from flowlab.grader.check_registry import (ANSWER_CELLS, CHECKS, EPOCHS, LEDGER, MOON_N, NOISE, REGISTRY, Check,
                                            CheckFailed, recorded_by, rerun_hint)
from flowlab.grader.checks_bijectors import (base_distribution, base_samples, bijection_verdicts, bijectors,
                                             formula_by_hand, hand_bijector, hand_chain, moons_data,
                                             transformed_distribution)
from flowlab.grader.checks_training import (flow_chain, flow_samples, keras_model, loss_and_optimizer,
                                            maf_jacobian, training)
from flowlab.grader.verdict import MAX_KL

#: The registry run() and stand_in() read, bound here: rebinding flowlab.checks.REGISTRY changes nothing.
_REGISTRY = REGISTRY

tfd, tfb = tfp.distributions, tfp.bijectors


#: The grading key, taken out of the environment by :func:`take_grading_key` (None outside
#: ``flowlab grade``): :func:`run` seals its OK lines with it.
_KEY: str | None = None

def take_grading_key() -> bool:
    """Take the grading key (:data:`flowlab.grader._seal.KEY_VARIABLE`) out of the environment into
    this module; True when there was one (only while ``flowlab grade`` runs the notebook).

    Not done on import: importing flowlab changes no environment. The grader's kernel start-up
    file calls it before any cell of the notebook runs, so no cell can read the key and forge
    a seal. A later call without the variable keeps the key taken.

    Example:
        >>> take_grading_key()  # outside grading: no key, nothing changes
        False
    """
    global _KEY
    key = os.environ.pop(_seal.KEY_VARIABLE, None)
    if key is not None:
        _KEY = key
    return key is not None


#: The library classes whose methods the checks rely on (with their bases, see _check_guard).
_CLASSES = (tfd.Distribution, tfd.TransformedDistribution, tfd.MultivariateNormalDiag, tfb.Bijector, tfb.Chain,
            tfb.MaskedAutoregressiveFlow, tfb.AutoregressiveNetwork, tfb.Permute, tfb.Scale, tfb.Shift, tfd.Normal,
            tf.GradientTape, Example, Verdict, tf.keras.Model, tf.keras.callbacks.History, tf.keras.optimizers.Adam)


def _snapshot() -> _check_guard.Snapshot:
    """Where the checks' tools live now (see :func:`flowlab.grader._check_guard.snapshot`)."""
    import flowlab.bijectivity
    import flowlab.data
    import flowlab.measure
    import flowlab.plots
    import flowlab.train

    modules = {"numpy": np, "numpy.linalg": np.linalg, "flowlab": flowlab,
               "flowlab.checks": __import__(__name__, fromlist=["_"]), "flowlab._check_guard": _check_guard,
               "flowlab.grader.check_registry": check_registry, "flowlab.grader.checks_bijectors": checks_bijectors,
               "flowlab.grader.checks_training": checks_training,
               "flowlab.bijectivity": flowlab.bijectivity, "flowlab.data": flowlab.data,
               "flowlab.measure": flowlab.measure, "flowlab.plots": flowlab.plots, "flowlab.train": flowlab.train,
               "tensorflow": tf}
    return _check_guard.snapshot(modules, _CLASSES)


def run(name: str, namespace: Mapping[str, Any]) -> None:
    """Run the official check ``name`` on a notebook's namespace: prints ``OK: ...`` or raises.

    This is what check cells call. It fails first if any tool the checks rely on was
    replaced after this module was imported (by the notebook, for instance). A check that
    passes with a reference's stand-in (:func:`stand_in`) among what it judges says so on stderr.
    """
    if name not in _REGISTRY:
        raise ValueError(f"name must be one of {', '.join(_REGISTRY)}, got {name!r}")
    changed = _check_guard.tampered(_SNAPSHOT)
    if changed:
        listed = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise CheckFailed(f"the notebook replaced {listed}, which the checks rely on, so no check can be "
                          "trusted. Hint: restart the kernel and remove the code that changes them.")
    LEDGER.forget(f"passed:{name}")
    line = _REGISTRY[name].judge(namespace)
    LEDGER.record(**{f"passed:{name}": True})
    print(f"OK: {line}{_seal.seal(_KEY, name)}")
    stood_in = _stand_ins_judged(name)
    if stood_in:
        print(f"{STAND_IN_NOTE} {', '.join(f'`{n}`' for n in stood_in)} (yours failed "
              f"{', '.join(sorted({LEDGER[f'stand-in:{n}'] for n in stood_in}))})", file=sys.stderr)


def _uses(name: str) -> set[str]:
    """The names check ``name`` judges, directly or through the checks it builds on."""
    check = _REGISTRY[name]
    return set(check.uses).union(*(_uses(earlier) for earlier in check.after))


def _stand_ins_judged(name: str) -> list[str]:
    return sorted(n for n in _uses(name) if f"stand-in:{n}" in LEDGER)


# --- stand-ins: one early mistake does not zero every later check -----------------------------

STAND_IN_NOTE = _check_guard.STAND_IN_NOTE


def _reference_data(namespace: Mapping[str, Any]) -> dict[str, Any]:
    return {"data": flowlab.data.make_moons(MOON_N, noise=NOISE, seed=0)}


def _reference_zdist(namespace: Mapping[str, Any]) -> dict[str, Any]:
    return {"zdist": tfd.MultivariateNormalDiag(loc=[0.0, 0.0])}


def _reference_bijectors(namespace: Mapping[str, Any]) -> dict[str, Any]:
    scale_bij, shift_bij = tfb.Scale([1.0, 0.5]), tfb.Shift([0.5, 0.25])
    return {"scale_bij": scale_bij, "shift_bij": shift_bij, "b": shift_bij(scale_bij)}


def _reference_sinh(namespace: Mapping[str, Any]) -> dict[str, Any]:
    my_sinh = tfb.Sinh()
    LEDGER.record(hand_bijector=my_sinh)
    return {"my_sinh": my_sinh}


def _reference_chain(namespace: Mapping[str, Any]) -> dict[str, Any]:
    layers = []
    for _ in range(3):
        network = tfb.AutoregressiveNetwork(params=2, hidden_units=[128, 128], activation="relu")
        layers += [tfb.MaskedAutoregressiveFlow(network), tfb.Permute([1, 0])]
    chain = tfb.Chain(layers)
    objects = {"big_bijector": chain, "td": tfd.TransformedDistribution(_reference_zdist({})["zdist"], chain)}
    _REGISTRY["flow_chain"].judge(objects)  # records the chain as the flow_chain check would
    return objects


def _reference_model(namespace: Mapping[str, Any]) -> dict[str, Any]:
    td = recorded_by("flow_chain", "td")
    x = tf.keras.Input(shape=(2,), dtype=tf.float32)
    model = tf.keras.Model(x, td.log_prob(x))
    LEDGER.record(model=model)
    return {"x": x, "model": model, "td": td}


def _reference_compile(namespace: Mapping[str, Any]) -> dict[str, Any]:
    model = recorded_by("keras_model", "model")
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=lambda labels, log_prob: -log_prob)
    return {"model": model}


#: Check -> what puts the reference's answer in the notebook when that check failed, for the
#: checks after it. Only answers that later checks build on have one.
_STAND_INS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "moons_data": _reference_data, "base_distribution": _reference_zdist, "bijectors": _reference_bijectors,
    "hand_bijector": _reference_sinh, "flow_chain": _reference_chain, "keras_model": _reference_model,
    "loss_and_optimizer": _reference_compile,
}
STAND_INS = tuple(_STAND_INS)


def stand_in(name: str, namespace: dict[str, Any]) -> None:
    """After the official check ``name`` (the grader adds this call after every check): if that
    check did not pass in this kernel and later checks build on its answer, put the reference's
    answer into ``namespace`` so that the checks after it judge the later answers on their own,
    and say so on stderr. Does nothing after a pass, for a check no later one builds on, or when
    the reference's answer needs an earlier one that is missing."""
    if name not in _REGISTRY:
        raise ValueError(f"name must be one of {', '.join(_REGISTRY)}, got {name!r}")
    if name not in _STAND_INS or f"passed:{name}" in LEDGER:
        return
    try:
        objects = _STAND_INS[name](namespace)
    except CheckFailed:
        return
    namespace.update(objects)
    LEDGER.record(**{f"stand-in:{key}": name for key in objects})
    print(f"flowlab: the reference's {', '.join(f'`{key}`' for key in objects)} stand in for yours from here on "
          f"(the {name} check failed), so the checks after it judge your later answers on their own",
          file=sys.stderr)


_SNAPSHOT = _snapshot()
#: Everything public: the registry's checks are registered above, each by its decorator.
__all__ = ["CheckFailed", "Check", "REGISTRY", "CHECKS", "LEDGER", "STAND_INS", "ANSWER_CELLS", "rerun_hint", "run",
           "stand_in", "take_grading_key", "MAX_KL", *REGISTRY]

"""Grading checks for the lab notebook: one per answer a student writes.

Each check looks the answer up by name in the notebook's namespace, tests what it
*does* (not how it is spelled), and returns one short deterministic line on success
or raises :class:`CheckFailed` with what is wrong and a hint. Check cells are marked
``# NBVAL_CHECK_OUTPUT`` (so that ``pytest --nbval-lax`` compares their output) and
call the checker through its import path, never through a notebook name::

    # NBVAL_CHECK_OUTPUT
    import flowlab.checks
    flowlab.checks.run("training", globals())

:func:`run` prints ``OK: <line>`` and, while ``flowlab grade`` runs, a seal
(:mod:`flowlab._seal`) that a faked output cannot know. Defences against a
notebook that tries to fool the checker, all in this module:

- the table of checks and a snapshot of the functions the checks rely on (here,
  in numpy, builtins, and the TFP/Keras classes of the answers) are taken when this
  module is imported; every check first verifies that none was replaced since;
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

import builtins
import functools
import os
import types
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import flowlab
from flowlab import _seal
from flowlab.measure import density_on_grid, evaluate

tfd, tfb = tfp.distributions, tfp.bijectors

__all__ = ["CheckFailed", "CHECKS", "run", "moons_data", "base_distribution", "base_samples",
           "bijectors", "transformed_distribution", "flow_chain", "keras_model",
           "loss_and_optimizer", "training", "flow_samples"]

#: The grading key, taken out of the environment at import (None outside ``flowlab grade``).
_KEY = os.environ.pop(_seal.KEY_VARIABLE, None)

MOON_N = 10_000
NOISE = 0.05
EPOCHS = 80
MAX_KL = 0.5  # nats: an untrained chain is ~2 nats away; a trained one well under 0.5


class CheckFailed(AssertionError):
    """An answer does not do what the lab asks; the message says what and hints how."""


def _get(namespace: Mapping[str, Any], *names: str) -> list[Any]:
    missing = [name for name in names if name not in namespace]
    if missing:
        listed = ", ".join(f"`{name}`" for name in missing)
        raise CheckFailed(f"{listed} not defined. Hint: answer the TODO in the cell above and run it.")
    return [namespace[name] for name in names]


#: What earlier checks saw, for later ones (see the module docstring). Private by design.
_LEDGER: dict[str, Any] = {}


def _genuine(name: str, value: Any, library: str, methods: tuple[str, ...]) -> None:
    """``value`` must be an instance of ``library``'s own classes with no method replaced on it."""
    module = type(value).__module__ or ""
    _require(module.split(".")[0] == library,
             f"`{name}` is a {type(value).__name__} defined in {module or 'the notebook'}, not one of "
             f"{library}'s own classes. Hint: build it with the library, as the TODO says.")
    replaced = sorted(m for m in methods if m in getattr(value, "__dict__", {}) and m not in
                      _LEDGER.get("own_attributes", {}).get(id(value), ()))
    _require(not replaced, f"`{name}` has its own {', '.join(replaced)}: methods replaced on the "
                           "object are not the library's. Hint: rebuild it without changing it.")


def _earlier(check: str, key: str) -> Any:
    """What check ``check`` recorded under ``key``; fails clearly if it did not pass."""
    if key not in _LEDGER:
        raise CheckFailed(f"the `{check}` check has not passed in this kernel, and this check builds on "
                          f"what it saw. Hint: run the cells from the `{check}` check on, in order.")
    return _LEDGER[key]


def _kind(value: Any) -> str:
    """Class name without TFP's private prefix: ``_Chain`` -> ``Chain``."""
    return type(value).__name__.lstrip("_")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _ok(line: str) -> str:
    return line


def _points(name: str, value: Any, n: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"`{name}` should be an array of points, got {type(value).__name__}.") from None
    _require(array.shape == (n, 2), f"`{name}` has shape {array.shape}; expected ({n}, 2). "
                                    f"Hint: draw {n} two-dimensional points.")
    _require(bool(np.all(np.isfinite(array))), f"`{name}` contains NaN or infinite values.")
    return array


def _distance_to_moons(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each point to the nearer of the two half circles, and which one is nearer."""
    def arc(q: np.ndarray, upper: bool, ends: np.ndarray) -> np.ndarray:
        on_side = q[:, 1] >= 0 if upper else q[:, 1] <= 0
        to_circle = np.abs(np.linalg.norm(q, axis=1) - 1.0)
        to_ends = np.min(np.linalg.norm(q[:, None, :] - ends[None], axis=2), axis=1)
        return np.where(on_side, to_circle, to_ends)
    ends = np.array([[1.0, 0.0], [-1.0, 0.0]])
    outer = arc(points, True, ends)
    inner = arc(points - np.array([1.0, 0.5]), False, ends)
    return np.minimum(outer, inner), outer < inner


def moons_data(namespace: Mapping[str, Any]) -> str:
    """``data``: 10,000 two-moons points with noise 0.05."""
    (data,) = _get(namespace, "data")
    points = _points("data", data, MOON_N)
    distance, on_outer = _distance_to_moons(points)
    spread = float(np.sqrt(np.mean(distance**2)))
    _require(spread < 0.2, f"`data` does not lie along two interleaved half circles (typical distance "
                           f"{spread:.2f} from the moons). Hint: use datasets.make_moons.")
    _require(abs(float(on_outer.mean()) - 0.5) < 0.05,
             f"{on_outer.mean():.0%} of the points are on the upper moon; make_moons puts half on each.")
    _require(0.035 < spread < 0.065,
             f"the points scatter about {spread:.3f} around the moons; noise=0.05 gives about 0.05. "
             "Hint: pass noise=0.05 to make_moons.")
    return _ok(f"data: {MOON_N} points on two moons with noise 0.05")


def base_distribution(namespace: Mapping[str, Any]) -> str:
    """``zdist``: a 2-D standard normal with batch shape [] and event shape [2]."""
    (zdist,) = _get(namespace, "zdist")
    _require(isinstance(zdist, tfd.Distribution),
             f"`zdist` should be a TFP distribution, got {type(zdist).__name__}.")
    _require(zdist.event_shape == [2],
             f"`zdist` has event shape {zdist.event_shape.as_list()}; the flow needs 2-D events. "
             "Hint: loc=[0.0] * ndim gives a 2-D Gaussian.")
    _require(zdist.batch_shape == [], f"`zdist` has batch shape {zdist.batch_shape.as_list()}; expected [] "
                                      "(one distribution). Hint: use MultivariateNormalDiag.")
    points = np.array([[0.0, 0.0], [1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    expected = -0.5 * (points**2).sum(1) - np.log(2 * np.pi)
    _require(np.allclose(zdist.log_prob(points).numpy(), expected, atol=1e-4),
             "`zdist` is not the standard normal: it must have mean 0 and unit variance, no covariance.")
    return _ok("zdist: standard normal, batch shape [], event shape [2]")


def base_samples(namespace: Mapping[str, Any]) -> str:
    """``zsamples``: 10,000 draws from ``zdist``."""
    (zsamples,) = _get(namespace, "zsamples")
    points = _points("zsamples", zsamples, MOON_N)
    _require(np.allclose(points.mean(0), 0.0, atol=0.05) and np.allclose(np.cov(points.T), np.eye(2), atol=0.06),
             f"`zsamples` has mean {np.round(points.mean(0), 2).tolist()} and covariance "
             f"{np.round(np.cov(points.T), 2).tolist()}; samples of N(0, I) have mean 0 and identity "
             "covariance. Hint: zdist.sample(moon_n).")
    return _ok(f"zsamples: {MOON_N} samples of N(0, I)")


def bijectors(namespace: Mapping[str, Any]) -> str:
    """``scale_bij``, ``shift_bij`` and their composition ``b`` (scale first, then shift)."""
    shift_bij, scale_bij, b = _get(namespace, "shift_bij", "scale_bij", "b")
    for name, value in (("shift_bij", shift_bij), ("scale_bij", scale_bij), ("b", b)):
        _require(isinstance(value, tfb.Bijector), f"`{name}` should be a TFP bijector, got {type(value).__name__}.")
    ones = tf.constant([[1.0, 1.0]])
    scaled = scale_bij.forward(ones).numpy()
    _require(np.allclose(scaled, [[1.0, 0.5]]),
             f"scale_bij maps (1, 1) to {np.round(scaled, 3).tolist()[0]}; scaling by [1, 0.5] gives "
             "[1.0, 0.5]. Hint: tfb.Scale([1.0, 0.5]).")
    shifted = shift_bij.forward(tf.zeros((1, 2))).numpy()
    _require(np.allclose(shifted, [[0.5, 0.25]]),
             f"shift_bij maps (0, 0) to {np.round(shifted, 3).tolist()[0]}; shifting by [0.5, 0.25] "
             "gives [0.5, 0.25]. Hint: tfb.Shift([0.5, 0.25]).")
    composed = b.forward(ones).numpy()
    if np.allclose(composed, [[1.5, 0.625]]):
        raise CheckFailed("b shifts first and then scales (it maps (1, 1) to [1.5, 0.625]); the lab "
                          "scales first, then shifts. Hint: b = shift_bij(scale_bij).")
    _require(np.allclose(composed, [[1.5, 0.75]]),
             f"b maps (1, 1) to {np.round(composed, 3).tolist()[0]}; scale-then-shift gives [1.5, 0.75].")
    log_det = float(np.mean(b.forward_log_det_jacobian(ones, event_ndims=1)))
    _require(abs(log_det - np.log(0.5)) < 1e-5, f"b's log-det is {log_det:.4f}; expected log 0.5.")
    return _ok("b = shift(scale(z)): (1, 1) -> (1.5, 0.75), log|det J| = log 0.5")


def transformed_distribution(namespace: Mapping[str, Any]) -> str:
    """``td``: zdist pushed through ``b``, and ``zsamples`` drawn from it."""
    td, zsamples = _get(namespace, "td", "zsamples")
    _require(_kind(td) == "TransformedDistribution",
             f"`td` should be a tfd.TransformedDistribution, got {_kind(td)}.")
    x = np.array([[0.5, 0.25], [1.0, 1.0]], dtype=np.float32)
    z = (x - np.array([0.5, 0.25])) / np.array([1.0, 0.5])
    expected = -0.5 * (z**2).sum(1) - np.log(2 * np.pi) - np.log(0.5)
    _require(np.allclose(td.log_prob(x).numpy(), expected, atol=1e-4),
             "td.log_prob does not match N(0, I) pushed through scale [1, 0.5] then shift "
             "[0.5, 0.25]. Hint: tfd.TransformedDistribution(zdist, bijector=b).")
    points = _points("zsamples", zsamples, MOON_N)
    _require(np.allclose(points.mean(0), [0.5, 0.25], atol=0.05) and
             np.allclose(points.std(0), [1.0, 0.5], atol=0.05),
             f"`zsamples` has mean {np.round(points.mean(0), 2).tolist()} and std "
             f"{np.round(points.std(0), 2).tolist()}; samples of td have mean [0.5, 0.25] and std "
             "[1.0, 0.5]. Hint: td.sample(moon_n).")
    return _ok("td: N(0, I) scaled and shifted; its samples match")


def flow_chain(namespace: Mapping[str, Any]) -> str:
    """``big_bijector``: 3 x [MaskedAutoregressiveFlow(128, 128 relu), Permute]; ``td`` uses it."""
    big_bijector, td = _get(namespace, "big_bijector", "td")
    _require(_kind(big_bijector) == "Chain", f"`big_bijector` should be a tfb.Chain, got "
                                             f"{_kind(big_bijector)}.")
    _genuine("big_bijector", big_bijector, "tensorflow_probability", ("forward", "inverse"))
    kinds = [_kind(bij) for bij in big_bijector.bijectors]
    _require(kinds == ["MaskedAutoregressiveFlow", "Permute"] * 3,
             f"the chain holds {kinds}; the lab asks for 3 x [MaskedAutoregressiveFlow, Permute] "
             "(6 bijectors). Hint: append a MAF and then a tfb.Permute in each loop iteration.")
    networks = []
    for i, maf in enumerate(big_bijector.bijectors[::2]):
        _genuine(f"MAF {i + 1}", maf, "tensorflow_probability", ("forward", "inverse"))
        network = maf._shift_and_log_scale_fn
        _require(isinstance(network, tfb.AutoregressiveNetwork),
                 f"MAF {i + 1} is not driven by a tfb.AutoregressiveNetwork.")
        _genuine(f"MAF {i + 1}'s network", network, "tensorflow_probability", ("call", "__call__"))
        _require(list(network._hidden_units) == [128, 128],
                 f"MAF {i + 1}'s network has hidden units {list(network._hidden_units)}; the lab asks "
                 "for [128, 128].")
        activation = getattr(network._activation, "__name__", network._activation)
        _require(activation == "relu",
                 f"MAF {i + 1}'s network uses activation {activation!r}; the lab asks for relu.")
        _require(network._params == 2, f"MAF {i + 1}'s network has params={network._params}; a MAF needs a shift "
                                       "and a log-scale: params=2.")
        networks.append(network)
    for i, permute in enumerate(big_bijector.bijectors[1::2]):
        swapped = permute.forward(tf.constant([[1.0, 2.0]])).numpy()
        _require(np.allclose(swapped, [[2.0, 1.0]]),
                 f"Permute {i + 1} maps (1, 2) to {swapped.tolist()[0]}: it does not swap the coordinates, "
                 "so the first coordinate is never transformed conditionally. Hint: tfb.Permute([1, 0]).")
    _require(_kind(td) == "TransformedDistribution" and td.bijector is big_bijector,
             "`td` should be the TransformedDistribution of zdist through big_bijector.")
    _genuine("td", td, "tensorflow_probability", ("log_prob", "prob", "sample"))
    xx, yy, p = density_on_grid(td, lim=8.0, n=300)
    mass = float(p.sum() * (xx[0, 1] - xx[0, 0]) * (yy[1, 0] - yy[0, 0]))
    _require(abs(mass - 1.0) < 0.03, f"td's density integrates to {mass:.3f}, not 1.")
    for key in ("chain", "td", "initial_weights", "model", "trained"):
        _LEDGER.pop(key, None)
    _LEDGER.update(chain=big_bijector, td=td, networks=networks,
                   initial_weights=[np.array(w) for net in networks for w in net.weights])
    return _ok("big_bijector: 3 x [MAF(128, 128, relu), Permute]; td's density integrates to 1")


def keras_model(namespace: Mapping[str, Any]) -> str:
    """``x`` (Keras Input of shape (2,), float32) and ``model`` mapping points to td.log_prob."""
    x, model, td = _get(namespace, "x", "model", "td")
    _require(tuple(x.shape) == (None, 2), f"`x` has shape {tuple(x.shape)}; expected (None, 2). "
                                          "Hint: tf.keras.Input(shape=(2,), dtype=tf.float32).")
    _require(x.dtype == tf.float32, f"`x` has dtype {x.dtype.name}; the flow computes in float32.")
    _require(isinstance(model, tf.keras.Model), f"`model` should be a tf.keras.Model, got {type(model).__name__}.")
    _genuine("model", model, "tf_keras", ("call", "__call__", "fit", "predict"))
    chain_td = _earlier("flow_chain", "td")
    _require(td is chain_td, "`td` is not the distribution the flow_chain check saw. Hint: build the model "
                             "on the td of the flow chain, without redefining td in between.")
    model_variables = {id(v) for v in model.trainable_variables}
    network_variables = [v for net in _LEDGER["networks"] for v in net.trainable_variables]
    _require(bool(network_variables) and all(id(v) in model_variables for v in network_variables),
             "the model's trainable weights are not the flow chain's networks, so training the model "
             "would not train td. Hint: tf.keras.Model(x, td.log_prob(x)).")
    points = np.array([[0.0, 0.5], [1.0, -0.3], [-0.7, 0.7]], dtype=np.float32)
    _require(np.allclose(model(points).numpy(), td.log_prob(points).numpy(), rtol=1e-4, atol=1e-4),
             "model(points) is not td.log_prob(points). Hint: tf.keras.Model(x, td.log_prob(x)).")
    _LEDGER["model"] = model
    return _ok("model: Input (None, 2) float32 -> log p(x)")


def loss_and_optimizer(namespace: Mapping[str, Any]) -> str:
    """``model`` compiled with Adam and the negative log-likelihood loss."""
    (model,) = _get(namespace, "model")
    _require(model is _earlier("keras_model", "model"),
             "`model` is not the model the keras_model check saw. Hint: compile that model; do not "
             "build a new one in between.")
    optimizer = getattr(model, "optimizer", None)
    _require(optimizer is not None, "`model` is not compiled. Hint: model.compile(optimizer=..., loss=...).")
    _require(type(optimizer).__name__ == "Adam",
             f"the optimizer is {type(optimizer).__name__}; the lab trains with Adam.")
    loss = model.loss
    _require(callable(loss), f"the loss should be the function neg_loglik, got {loss!r}.")
    log_prob = tf.constant([-1.0, 0.5])
    value = np.asarray(loss(tf.zeros(2), log_prob))
    _require(np.allclose(value, [1.0, -0.5]),
             f"the loss maps log p = [-1.0, 0.5] to {np.round(value, 3).tolist()}; the negative "
             "log-likelihood is -log p = [1.0, -0.5]. Minimising +log p would make the data *less* likely.")
    return _ok("compiled with Adam and the loss -log p(x)")


def training(namespace: Mapping[str, Any]) -> str:
    """``result``: 80 epochs of training of that model, a falling loss, a held-out NLL near the truth."""
    result, td, model = _get(namespace, "result", "td", "model")
    chain_td, chain_model = _earlier("flow_chain", "td"), _earlier("keras_model", "model")
    _require(td is chain_td and model is chain_model,
             "`td` or `model` is not the one the earlier checks saw. Hint: train the model built on the "
             "flow chain's td; do not redefine them in between.")
    _require(isinstance(result, tf.keras.callbacks.History),
             f"`result` should be the History that model.fit returns, got {type(result).__name__}.")
    _genuine("result", result, "tf_keras", ())
    _require(getattr(result, "model", None) is model,
             "`result` is not the History of training `model`. Hint: result = model.fit(...).")
    losses = list(getattr(result, "history", {}).get("loss", []))
    _require(len(losses) == EPOCHS, f"training ran {len(losses)} epochs; the lab asks for {EPOCHS}. "
                                    "Hint: model.fit(..., epochs=80).")
    _require(bool(np.all(np.isfinite(losses))), "the training loss became NaN or infinite.")
    _require(losses[-1] < losses[0] - 0.5, f"the loss went from {losses[0]:.2f} to {losses[-1]:.2f}; "
                                           "training should lower it by well over 0.5 nats.")
    steps = int((getattr(result, "params", None) or {}).get("steps") or 0)
    iterations = int(model.optimizer.iterations.numpy())
    _require(steps > 0 and iterations >= steps * len(losses),
             f"the optimizer took {iterations} steps, fewer than the {len(losses)} epochs of "
             f"{steps} steps that `result` reports. Hint: result = model.fit(...), unchanged.")
    weights = [np.array(w) for net in _LEDGER["networks"] for w in net.weights]
    _require(any(not np.array_equal(a, b) for a, b in zip(weights, _LEDGER["initial_weights"])),
             "the flow chain's weights did not change: the model that was trained is not td's. "
             "Hint: tf.keras.Model(x, td.log_prob(x)), then model.fit.")
    scores = evaluate(td, noise=NOISE, n_samples=20_000, seed=7)
    _require(scores["kl_to_exact"] < MAX_KL,
             f"the trained flow's held-out NLL is {scores['heldout_nll']:.2f} nats, "
             f"{scores['kl_to_exact']:.2f} above the exact density's; a trained flow gets within {MAX_KL}.")
    _LEDGER["trained"] = td
    _record_samples(td)
    return _ok(f"trained {EPOCHS} epochs; held-out NLL within {MAX_KL} nats of the exact density")


def _record_samples(td: Any) -> None:
    """From now on, remember (the values of) every draw of the trained ``td``."""
    draws: list[np.ndarray] = []
    sample = type(td).sample.__get__(td)

    def recorded_sample(*args: Any, **kwargs: Any) -> Any:
        value = sample(*args, **kwargs)
        draws.append(np.array(value))
        del draws[:-8]
        return value

    td.sample = recorded_sample
    _LEDGER["draws"] = draws
    _LEDGER.setdefault("own_attributes", {})[id(td)] = ("sample",)


def flow_samples(namespace: Mapping[str, Any]) -> str:
    """``zsamples``: 10,000 samples of the *trained* flow: most lie on the moons."""
    zsamples, td = _get(namespace, "zsamples", "td")
    points = _points("zsamples", zsamples, MOON_N)
    _require(td is _earlier("training", "trained"),
             "`td` is not the flow the training check saw. Hint: sample the trained td.")
    _require(any(draw.shape == points.shape and np.array_equal(draw, points) for draw in _LEDGER["draws"]),
             "`zsamples` is not a draw of the trained td. Hint: zsamples = td.sample(moon_n), from the "
             "trained td, not zdist or the data.")
    distance, _ = _distance_to_moons(points)
    near = float(np.mean(distance < 0.15))
    _require(near > 0.7, f"only {near:.0%} of `zsamples` lie near the moons; samples of the trained flow "
                         "mostly do. Hint: zsamples = td.sample(moon_n), from the trained td, not zdist.")
    return _ok("zsamples: samples of the trained flow lie on the moons")


# run() uses this private table of the checks, which return their line; rebinding the module's
# names or CHECKS entries changes nothing there (and is detected, see _tampered).
_TABLE: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "moons_data": moons_data,
    "base_distribution": base_distribution,
    "base_samples": base_samples,
    "bijectors": bijectors,
    "transformed_distribution": transformed_distribution,
    "flow_chain": flow_chain,
    "keras_model": keras_model,
    "loss_and_optimizer": loss_and_optimizer,
    "training": training,
    "flow_samples": flow_samples,
}


def _printing(check: Callable[[Mapping[str, Any]], str]) -> Callable[[Mapping[str, Any]], None]:
    """The public form of a check, as older check cells call it: prints ``OK: <line>`` (no seal)."""
    @functools.wraps(check)
    def printed(namespace: Mapping[str, Any]) -> None:
        print(f"OK: {check(namespace)}")
    return printed


#: Check name -> function that prints its OK line, in notebook order. Names tag the check cells.
CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {name: _printing(f) for name, f in _TABLE.items()}
(moons_data, base_distribution, base_samples, bijectors, transformed_distribution, flow_chain, keras_model,
 loss_and_optimizer, training, flow_samples) = CHECKS.values()


def _classes() -> list[type]:
    """The library classes whose methods the checks rely on, with their bases."""
    roots = [tfd.Distribution, tfd.TransformedDistribution, tfd.MultivariateNormalDiag, tfb.Bijector,
             tfb.Chain, tfb.MaskedAutoregressiveFlow, tfb.AutoregressiveNetwork, tfb.Permute, tfb.Scale,
             tfb.Shift, tf.keras.Model, tf.keras.callbacks.History, tf.keras.optimizers.Adam]
    for root in list(roots):  # TFP's auto-composite twins: tfb.Chain builds a _Chain
        module = __import__(root.__module__, fromlist=["_"])
        twin = getattr(module, "_" + root.__name__, None)
        if isinstance(twin, type):
            roots.append(twin)
    seen: dict[int, type] = {}
    for root in roots:
        for cls in root.__mro__:
            if cls is not object:
                seen.setdefault(id(cls), cls)
    return list(seen.values())


def _functions(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The callables of a module's or class's namespace (not data, not modules)."""
    return {name: value for name, value in list(namespace.items())
            if callable(value) or isinstance(value, (property, classmethod, staticmethod))
            if not isinstance(value, types.ModuleType)}


def _snapshot() -> dict[str, tuple[Any, dict[str, Any]]]:
    """Where the checks' tools live now: module and class namespaces, by name."""
    import flowlab.data
    import flowlab.measure
    import flowlab.plots
    import flowlab.train

    owners: list[tuple[str, Any]] = [
        ("builtins", builtins), ("numpy", np), ("numpy.linalg", np.linalg),
        ("flowlab", flowlab), ("flowlab.checks", __import__(__name__, fromlist=["_"])),
        ("flowlab.data", flowlab.data), ("flowlab.measure", flowlab.measure), ("flowlab.plots", flowlab.plots),
        ("flowlab.train", flowlab.train), ("tensorflow", tf),
    ]
    owners += [(f"{cls.__module__}.{cls.__qualname__}", cls) for cls in _classes()]
    snapshot = {label: (weakref.ref(owner) if isinstance(owner, type) else owner,
                        _functions(vars(owner))) for label, owner in owners}
    # the kernel itself rebinds builtins such as input() on every cell: keep the ones checks use
    kept = {name: value for name, value in snapshot["builtins"][1].items() if name in _BUILTINS_USED}
    snapshot["builtins"] = (builtins, kept)
    return snapshot


_BUILTINS_USED = frozenset({"abs", "all", "any", "callable", "dict", "enumerate", "float", "getattr",
                            "hasattr", "int", "isinstance", "len", "list", "max", "min", "print", "range",
                            "round", "sorted", "str", "sum", "tuple", "type", "vars", "zip", "id",
                            "__import__", "iter", "next", "repr", "format", "bool", "set", "object"})


def _tampered() -> list[str]:
    """Names of the checks' tools that were replaced since this module was imported."""
    changed = []
    for label, (owner, functions) in _SNAPSHOT.items():
        owner = owner() if isinstance(owner, weakref.ref) else owner
        if owner is None:
            continue
        now = vars(owner)
        changed += [f"{label}.{name}" for name, value in functions.items() if now.get(name) is not value]
        if isinstance(owner, type):  # a method added to a class overrides its base's
            changed += [f"{label}.{name}" for name in _functions(now) if name not in functions]
    return changed


_SNAPSHOT = _snapshot()


def run(name: str, namespace: Mapping[str, Any]) -> None:
    """Run the official check ``name`` on a notebook's namespace: prints ``OK: ...`` or raises.

    This is what check cells call. It fails first if any tool the checks rely on was
    replaced after this module was imported (by the notebook, for instance).
    """
    if name not in _TABLE:
        raise ValueError(f"name must be one of {', '.join(_TABLE)}, got {name!r}")
    changed = _tampered()
    if changed:
        listed = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise CheckFailed(f"the notebook replaced {listed}, which the checks rely on, so no check can be "
                          "trusted. Hint: restart the kernel and remove the code that changes them.")
    line = _TABLE[name](namespace)
    print(f"OK: {line}{_seal.seal(_KEY, name)}")

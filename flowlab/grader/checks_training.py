"""The lab's checks of the flow and its training (registered after
:mod:`flowlab.grader.checks_bijectors`'s, in notebook order): the chain of three MAFs, one layer's
Jacobian, the Keras model, its loss and optimizer, the training (scored against the exact
density) and the trained flow's samples. :mod:`flowlab.grader.checks` runs them;
``flowlab.checks.<name>`` is each one's printing form.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import flowlab
from flowlab import lab_runs
from flowlab.grader import checks_bijectors  # noqa: F401  (registered first: flow_chain's checks come after them)
from flowlab.grader.check_registry import EPOCHS, NOISE
from flowlab.grader.check_registry import (LEDGER, MOON_N, CheckFailed, column_array, distance_to_moons, genuine,
                                            kind_of, lab_check, lookup, ok, point_array, recorded_by, require,
                                            rerun_hint)
from flowlab.grader.verdict import MAX_KL
from flowlab.measure import density_on_grid, evaluate

__all__ = ["flow_chain", "maf_jacobian", "keras_model", "loss_and_optimizer", "training", "flow_samples"]

tfd, tfb = tfp.distributions, tfp.bijectors


@lab_check(points=3, uses=("big_bijector", "td"))
def flow_chain(namespace: Mapping[str, Any]) -> str:
    """``big_bijector``: 3 x [MaskedAutoregressiveFlow(128, 128 relu), Permute]; ``td`` uses it."""
    big_bijector, td = lookup(namespace, "big_bijector", "td")
    require(kind_of(big_bijector) == "Chain", f"`big_bijector` should be a tfb.Chain, got "
                                             f"{kind_of(big_bijector)}.")
    genuine("big_bijector", big_bijector, "tensorflow_probability", ("forward", "inverse"))
    kinds = [kind_of(bij) for bij in big_bijector.bijectors]
    require(kinds == ["MaskedAutoregressiveFlow", "Permute"] * 3,
             f"the chain holds {kinds}; the lab asks for 3 x [MaskedAutoregressiveFlow, Permute] "
             "(6 bijectors). Hint: append a MAF and then a tfb.Permute in each loop iteration.")
    networks = []
    for i, maf in enumerate(big_bijector.bijectors[::2]):
        genuine(f"MAF {i + 1}", maf, "tensorflow_probability", ("forward", "inverse"))
        network = flowlab.flows.shift_and_log_scale_network(maf)  # the lab soft-clamps its log-scale
        require(isinstance(network, tfb.AutoregressiveNetwork),
                 f"MAF {i + 1} is not driven by a tfb.AutoregressiveNetwork.")
        genuine(f"MAF {i + 1}'s network", network, "tensorflow_probability", ("call", "__call__"))
        require(list(network._hidden_units) == [128, 128],
                 f"MAF {i + 1}'s network has hidden units {list(network._hidden_units)}; the lab asks "
                 "for [128, 128].")
        activation = getattr(network._activation, "__name__", network._activation)
        require(activation == "relu",
                 f"MAF {i + 1}'s network uses activation {activation!r}; the lab asks for relu.")
        require(network._params == 2, f"MAF {i + 1}'s network has params={network._params}; a MAF needs a shift "
                                       "and a log-scale: params=2.")
        networks.append(network)
    for i, permute in enumerate(big_bijector.bijectors[1::2]):
        swapped = permute.forward(tf.constant([[1.0, 2.0]])).numpy()
        require(np.allclose(swapped, [[2.0, 1.0]]),
                 f"Permute {i + 1} maps (1, 2) to {swapped.tolist()[0]}: it does not swap the coordinates, "
                 "so the first coordinate is never transformed conditionally. Hint: tfb.Permute([1, 0]).")
    require(kind_of(td) == "TransformedDistribution" and td.bijector is big_bijector,
             "`td` should be the TransformedDistribution of zdist through big_bijector.")
    genuine("td", td, "tensorflow_probability", ("log_prob", "prob", "sample"))
    xx, yy, p = density_on_grid(td, lim=8.0, n=300)
    mass = float(p.sum() * (xx[0, 1] - xx[0, 0]) * (yy[1, 0] - yy[0, 0]))
    require(abs(mass - 1.0) < 0.03, f"td's density integrates to {mass:.3f}, not 1.")
    LEDGER.forget("chain", "td", "initial_weights", "model", "trained")
    LEDGER.record(chain=big_bijector, td=td, networks=networks,
                   initial_weights=[np.array(w) for net in networks for w in net.weights])
    return ok("big_bijector: 3 x [MAF(128, 128, relu), Permute]; td's density integrates to 1")


_WATCH_HINT = ("Hint: call tape.watch(z_points) first inside the `with tf.GradientTape() as tape:` block, then "
               "x_points = maf.forward(z_points).")


def _jacobian_array(jacobians: Any, n: int) -> np.ndarray:
    """``jacobians`` as an (n, 2, 2) array, or the failure that names the mistake behind it."""
    require(jacobians is not None, "`jacobians` is None: the tape did not watch z_points (a tf.constant is not "
                                    "followed on its own), so it has nothing to differentiate. " + _WATCH_HINT)
    try:
        found = np.asarray(jacobians, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"`jacobians` should be a tensor of numbers, got {type(jacobians).__name__}.") from None
    require(found.shape != (n, 2, n, 2), f"`jacobians` has shape {found.shape}: tape.jacobian differentiates "
                                          "every output by every input of every point (that is why np.linalg.det "
                                          f"raises LinAlgError: its last two axes, {n} x 2, are not square). Hint: "
                                          "tape.batch_jacobian gives one 2 x 2 matrix per point.")
    require(found.shape == (n, 2, 2), f"`jacobians` has shape {found.shape}; expected ({n}, 2, 2), one 2 x 2 "
                                       "Jacobian per point. Hint: tape.batch_jacobian(x_points, z_points).")
    require(bool(np.any(found != 0)), "`jacobians` are all zero (so log|det J| is -inf): the tape did not watch "
                                       "z_points (a tf.constant is not followed on its own), and batch_jacobian "
                                       "then reports no dependence at all. " + _WATCH_HINT)
    return found


@lab_check(points=2, after=("flow_chain",), uses=("jacobians", "z_points", "log_det_autodiff"))
def maf_jacobian(namespace: Mapping[str, Any]) -> str:
    """``jacobians`` of the first MAF's forward map at ``z_points`` and ``log_det_autodiff``."""
    if "jacobians" not in namespace or "z_points" not in namespace:
        lookup(namespace, "jacobians", "z_points", "log_det_autodiff")  # fails, naming every missing one
    jacobians, z_points = namespace["jacobians"], namespace["z_points"]  # judged before log_det_autodiff:
    chain = recorded_by("flow_chain", "chain")  # a wrong Jacobian stops the student's cell before it
    require(namespace.get("big_bijector", chain) is chain,
             "`big_bijector` is not the chain the flow_chain check saw: the chain cell ran again after that check, "
             "so `maf` is a new, untrained chain's first layer. " + rerun_hint("flow_chain"))
    maf = chain.bijectors[0]
    z = np.asarray(z_points, dtype=np.float32)
    require(z.ndim == 2 and z.shape[1] == 2 and len(z) >= 1, f"`z_points` has shape {z.shape}; keep the points "
                                                             "given, shape (n, 2).")
    n = len(z)
    found = _jacobian_array(jacobians, n)
    (log_det_autodiff,) = lookup(namespace, "log_det_autodiff")

    def jacobian_of(function: Callable[[tf.Tensor], tf.Tensor]) -> np.ndarray:
        points = tf.constant(z)
        with tf.GradientTape() as tape:
            tape.watch(points)
            out = function(points)
        return np.array(tape.batch_jacobian(out, points), dtype=np.float64)

    expected = jacobian_of(maf.forward)
    if not np.allclose(found, expected, rtol=1e-3, atol=1e-4):
        require(not np.allclose(found, jacobian_of(maf.inverse), rtol=1e-3, atol=1e-4),
                 "`jacobians` are the Jacobians of maf.inverse (x -> z); the TODO asks for the forward map "
                 "z -> x. Hint: x_points = maf.forward(z_points) inside the tape.")
        require(not np.allclose(found, np.swapaxes(expected, 1, 2), rtol=1e-3, atol=1e-4),
                 "`jacobians` is transposed: entry [i, j] should be d x_i / d z_j. Hint: "
                 "tape.batch_jacobian(x_points, z_points): outputs first, then inputs.")
        raise CheckFailed("`jacobians` are not the Jacobians of the first MAF layer's forward map at z_points. "
                          "Hint: maf = big_bijector.bijectors[0]; differentiate maf.forward(z_points).")
    log_det = column_array("log_det_autodiff", log_det_autodiff, n) if np.ndim(log_det_autodiff) else None
    require(log_det is not None, "`log_det_autodiff` should hold one number per point.")
    truth = np.log(np.abs(np.linalg.det(expected)))
    require(not np.allclose(log_det, np.exp(truth), rtol=1e-3, atol=1e-4) or np.allclose(truth, 0.0, atol=1e-3),
             "`log_det_autodiff` is det J itself; the bijector reports log|det J|. Hint: "
             "np.log(np.abs(np.linalg.det(...))).")
    require(np.allclose(log_det, truth, rtol=1e-3, atol=1e-4),
             f"`log_det_autodiff` is {np.round(log_det, 4).tolist()}; log|det J| of those Jacobians is "
             f"{np.round(truth, 4).tolist()}. Hint: np.log(np.abs(np.linalg.det(jacobians.numpy()))).")
    return ok("jacobians: one lower-triangular 2 x 2 per point; log|det J| matches the MAF's own")


def _keras_input(x: Any) -> None:
    """``x`` must be a Keras Input of shape (None, 2) and dtype float32; the failure names the mistake."""
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    require(shape is not None and dtype is not None, f"`x` should be a Keras Input, got {type(x).__name__}. "
                                                      "Hint: tf.keras.Input(shape=(2,), dtype=tf.float32).")
    require(tuple(shape) == (None, 2), f"`x` has shape {tuple(shape)}; expected (None, 2). "
                                        "Hint: tf.keras.Input(shape=(2,), dtype=tf.float32).")
    name = getattr(dtype, "name", str(dtype))
    require(name == "float32", f"`x` has dtype {name}; the flow computes in float32, so td.log_prob(x) fails "
                                "on it (\"Input 'y' of 'Sub' Op has type float32 that does not match type "
                                f"{name}\"). Hint: tf.keras.Input(shape=(2,), dtype=tf.float32).")


@lab_check(points=2, after=("flow_chain",), uses=("x", "model", "td"))
def keras_model(namespace: Mapping[str, Any]) -> str:
    """``x`` (Keras Input of shape (2,), float32) and ``model`` mapping points to td.log_prob."""
    if "x" in namespace:  # a wrong Input stops the student's cell at td.log_prob(x), before `model`
        _keras_input(namespace["x"])
    x, model, td = lookup(namespace, "x", "model", "td")
    require(isinstance(model, tf.keras.Model), f"`model` should be a tf.keras.Model, got {type(model).__name__}.")
    genuine("model", model, "tf_keras", ("call", "__call__", "fit", "predict"))
    chain_td = recorded_by("flow_chain", "td")
    require(td is chain_td, "`td` is not the distribution the flow_chain check saw: the chain cell ran again "
                             "after that check (each run makes a new td), or td was redefined since. "
                             + rerun_hint("flow_chain"))
    model_variables = {id(v) for v in model.trainable_variables}
    network_variables = [v for net in LEDGER["networks"] for v in net.trainable_variables]
    require(bool(network_variables) and all(id(v) in model_variables for v in network_variables),
             "the model's trainable weights are not the flow chain's networks, so training the model "
             "would not train td. Hint: tf.keras.Model(x, td.log_prob(x)).")
    points = np.array([[0.0, 0.5], [1.0, -0.3], [-0.7, 0.7]], dtype=np.float32)
    require(np.allclose(model(points).numpy(), td.log_prob(points).numpy(), rtol=1e-4, atol=1e-4),
             "model(points) is not td.log_prob(points). Hint: tf.keras.Model(x, td.log_prob(x)).")
    LEDGER.record(model=model)
    return ok("model: Input (None, 2) float32 -> log p(x)")


@lab_check(points=2, after=("keras_model",), uses=("model",))
def loss_and_optimizer(namespace: Mapping[str, Any]) -> str:
    """``model`` compiled with Adam and the negative log-likelihood loss."""
    (model,) = lookup(namespace, "model")
    require(model is recorded_by("keras_model", "model"),
             "`model` is not the model the keras_model check saw: the Keras cell ran again after that check "
             "(each run builds a new model), or model was redefined since. " + rerun_hint("keras_model"))
    optimizer = getattr(model, "optimizer", None)
    require(optimizer is not None, "`model` is not compiled. Hint: model.compile(optimizer=..., loss=...).")
    require(type(optimizer).__name__ == "Adam",
             f"the optimizer is {type(optimizer).__name__}; the lab trains with Adam.")
    loss = model.loss
    require(callable(loss), f"the loss should be the function neg_loglik, got {loss!r}.")
    log_prob = tf.constant([-1.0, 0.5])
    value = np.asarray(loss(tf.zeros(2), log_prob))
    require(np.allclose(value, [1.0, -0.5]),
             f"the loss maps log p = [-1.0, 0.5] to {np.round(value, 3).tolist()}; the negative "
             "log-likelihood is -log p = [1.0, -0.5]. Minimising +log p would make the data *less* likely.")
    return ok("compiled with Adam and the loss -log p(x)")


@lab_check(points=4, after=("flow_chain", "keras_model", "loss_and_optimizer"),
        uses=("result", "td", "model", "data"))
def training(namespace: Mapping[str, Any]) -> str:
    """``result``: 80 epochs of training of that model, a falling loss, a held-out NLL near the truth."""
    result, td, model = lookup(namespace, "result", "td", "model")
    chain_td, chain_model = recorded_by("flow_chain", "td"), recorded_by("keras_model", "model")
    require(td is chain_td, "`td` is not the distribution the flow_chain check saw: the chain cell ran again "
                             "after that check (each run makes a new, untrained td), or td was redefined since. "
                             + rerun_hint("flow_chain"))
    require(model is chain_model, "`model` is not the model the keras_model check saw: the Keras cell ran again "
                                   "after that check (each run builds a new model), or model was redefined "
                                   "since. " + rerun_hint("keras_model"))
    require(isinstance(result, tf.keras.callbacks.History),
             f"`result` should be the History that model.fit returns, got {type(result).__name__}.")
    genuine("result", result, "tf_keras", ())
    require(getattr(result, "model", None) is model,
             "`result` is not the History of training `model`. Hint: result = model.fit(...).")
    losses = list(getattr(result, "history", {}).get("loss", []))
    why = _schedule_hint(namespace, result, model)
    require(len(losses) == EPOCHS, f"training ran {len(losses)} epochs; the lab asks for {EPOCHS}. "
                                    "Hint: model.fit(..., epochs=80)." + why)
    require(bool(np.all(np.isfinite(losses))), "the training loss became NaN or infinite." + why)
    require(losses[-1] < losses[0] - 0.5, f"the loss went from {losses[0]:.2f} to {losses[-1]:.2f}; "
                                           "training should lower it by well over 0.5 nats." + why)
    steps = int((getattr(result, "params", None) or {}).get("steps") or 0)
    iterations = int(model.optimizer.iterations.numpy())
    require(steps > 0 and iterations >= steps * len(losses),
             f"the optimizer took {iterations} steps, fewer than the {len(losses)} epochs of "
             f"{steps} steps that `result` reports. Hint: result = model.fit(...), unchanged.")
    weights = [np.array(w) for net in LEDGER["networks"] for w in net.weights]
    require(any(not np.array_equal(a, b) for a, b in zip(weights, LEDGER["initial_weights"])),
             "the flow chain's weights did not change: the model that was trained is not td's. "
             "Hint: tf.keras.Model(x, td.log_prob(x)), then model.fit.")
    scores = evaluate(td, noise=NOISE, n_samples=20_000, seed=7)
    require(scores["kl_to_exact"] < MAX_KL,
             f"the trained flow's held-out NLL is {scores['heldout_nll']:.2f} nats, "
             f"{scores['kl_to_exact']:.2f} above the exact density's; a trained flow gets within {MAX_KL}." + why)
    LEDGER.record(trained=td)
    _record_samples(td)
    print(lab_runs.standing(scores["kl_to_exact"], scores["n_samples"]), file=sys.stderr)  # beside the OK line, which nbval compares
    return ok(f"trained {EPOCHS} epochs; held-out NLL within {MAX_KL} nats of the exact density")


def _schedule_hint(namespace: Mapping[str, Any], result: Any, model: Any) -> str:
    """Why training may have gone wrong: a learning-rate schedule built for other batches than fit used."""
    schedule = getattr(getattr(model, "optimizer", None), "_learning_rate", None)
    batch_size = namespace.get("batch_size")
    steps = int((getattr(result, "params", None) or {}).get("steps") or 0)
    if not isinstance(schedule, tf.keras.optimizers.schedules.LearningRateSchedule) or not steps or \
            isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        return ""
    planned = -(-MOON_N // int(batch_size))
    if steps == planned:
        return ""
    return (f" Note: fit ran {steps} steps per epoch (batches of about {MOON_N // steps}), but the learning-rate "
            f"schedule was built for batches of {batch_size} ({planned} steps per epoch), so its warm-up and "
            "decay happen at the wrong epochs. Hint: pass batch_size=batch_size to model.fit.")


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
    LEDGER.record(draws=draws)
    LEDGER.mark_own(td, "sample")


@lab_check(points=1, after=("training",), uses=("zsamples", "td"))
def flow_samples(namespace: Mapping[str, Any]) -> str:
    """``zsamples``: 10,000 samples of the *trained* flow: most lie on the moons."""
    zsamples, td = lookup(namespace, "zsamples", "td")
    points = point_array("zsamples", zsamples, MOON_N)
    require(td is recorded_by("training", "trained"),
             "`td` is not the flow the training check saw: the chain cell ran again after training (each run "
             "makes a new, untrained td), or td was redefined since. " + rerun_hint("flow_chain")
             + " That trains the flow again.")
    require(any(draw.shape == points.shape and np.array_equal(draw, points) for draw in LEDGER["draws"]),
             "`zsamples` is not a draw of the trained td. Hint: zsamples = td.sample(moon_n), from the "
             "trained td, not zdist or the data.")
    distance, _ = distance_to_moons(points)
    near = float(np.mean(distance < 0.15))
    require(near > 0.7, f"only {near:.0%} of `zsamples` lie near the moons; samples of the trained flow "
                         "mostly do. Hint: zsamples = td.sample(moon_n), from the trained td, not zdist.")
    return ok("zsamples: samples of the trained flow lie on the moons")

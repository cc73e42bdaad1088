"""The lab's first checks, up to a bijector written by hand (registered in notebook order, by
:func:`flowlab.grader.check_registry.lab_check`): the sheet's bijectivity verdicts, the moons, the
base distribution and its samples, the first bijectors and transformed distribution, the
change-of-variables formula by hand, the hand-written ``MySinh`` and its chain.
:mod:`flowlab.grader.checks` runs them; ``flowlab.checks.<name>`` is each one's printing form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab.bijectivity import SHEET_EXAMPLES, Example
from flowlab.grader.check_registry import (LEDGER, MOON_N, CheckFailed, column_array, distance_to_moons,
                                            kind_of, lab_check, lookup, ok, point_array, recorded_by, require,
                                            rerun_hint)

__all__ = ["bijection_verdicts", "moons_data", "base_distribution", "base_samples", "bijectors",
           "transformed_distribution", "formula_by_hand", "hand_bijector", "hand_chain"]

tfd, tfb = tfp.distributions, tfp.bijectors

#: The examples as they were when this module was imported (a notebook cannot shrink the list).
_EXAMPLES: dict[str, Example] = dict(SHEET_EXAMPLES)


@lab_check(points=2, uses=("verdicts",))
def bijection_verdicts(namespace: Mapping[str, Any]) -> str:
    """``verdicts``: True or False for each of the sheet's maps, as flowlab.bijectivity decides it."""
    (verdicts,) = lookup(namespace, "verdicts")
    require(isinstance(verdicts, Mapping), f"`verdicts` should be a dict of example name -> True/False, got "
                                            f"{type(verdicts).__name__}.")
    missing = [name for name in _EXAMPLES if name not in verdicts]
    require(not missing, f"`verdicts` has no verdict for {', '.join(map(repr, missing))}. Hint: one entry per "
                          "example printed above, spelled as printed.")
    unknown = [name for name in verdicts if name not in _EXAMPLES]
    require(not unknown, f"`verdicts` has entries for {', '.join(map(repr, unknown))}, which are not examples "
                          "of the lab. Hint: use the names printed above.")
    not_bool = [name for name in _EXAMPLES if not isinstance(verdicts[name], (bool, np.bool_))]
    if not_bool:
        raise CheckFailed(f"verdicts[{not_bool[0]!r}] is {verdicts[not_bool[0]]!r}; give True (a bijection onto "
                          "its image) or False.")
    wrong, truths = [], {name: example.verdict() for name, example in _EXAMPLES.items()}
    for name, example in _EXAMPLES.items():
        truth = truths[name]
        if bool(verdicts[name]) != truth.bijective:
            said = "a bijection" if verdicts[name] else "not a bijection"
            wrong.append(f"{name} ({example.formula} on {example.domain_text}): you said {said}, but "
                         f"{truth.reason}")
    require(not wrong, f"{len(wrong)} of {len(_EXAMPLES)} verdicts are wrong. " + " | ".join(wrong) +
             " Hint: a bijector maps distinct inputs to distinct outputs, with as many outputs as inputs.")
    # the count of bijections stays out of the OK line: the hand-out shows it before the student answers
    return ok(f"verdicts: all {len(_EXAMPLES)} right")


@lab_check(points=1, uses=("data",))
def moons_data(namespace: Mapping[str, Any]) -> str:
    """``data``: 10,000 two-moons points with noise 0.05."""
    (data,) = lookup(namespace, "data")
    points = point_array("data", data, MOON_N)
    distance, on_outer = distance_to_moons(points)
    spread = float(np.sqrt(np.mean(distance**2)))
    require(spread < 0.2, f"`data` does not lie along two interleaved half circles (typical distance "
                           f"{spread:.2f} from the moons). Hint: use datasets.make_moons.")
    require(abs(float(on_outer.mean()) - 0.5) < 0.05,
             f"{on_outer.mean():.0%} of the points are on the upper moon; make_moons puts half on each.")
    require(0.035 < spread < 0.065,
             f"the points scatter about {spread:.3f} around the moons; noise=0.05 gives about 0.05. "
             "Hint: pass noise=0.05 to make_moons.")
    return ok(f"data: {MOON_N} points on two moons with noise 0.05")


@lab_check(points=1, uses=("zdist",))
def base_distribution(namespace: Mapping[str, Any]) -> str:
    """``zdist``: a 2-D standard normal with batch shape [] and event shape [2]."""
    (zdist,) = lookup(namespace, "zdist")
    require(isinstance(zdist, tfd.Distribution),
             f"`zdist` should be a TFP distribution, got {type(zdist).__name__}.")
    require(zdist.event_shape == [2],
             f"`zdist` has event shape {zdist.event_shape.as_list()}; the flow needs 2-D events. "
             "Hint: loc=[0.0] * ndim gives a 2-D Gaussian.")
    require(zdist.batch_shape == [], f"`zdist` has batch shape {zdist.batch_shape.as_list()}; expected [] "
                                      "(one distribution). Hint: use MultivariateNormalDiag.")
    points = np.array([[0.0, 0.0], [1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    expected = -0.5 * (points**2).sum(1) - np.log(2 * np.pi)
    require(np.allclose(zdist.log_prob(points).numpy(), expected, atol=1e-4),
             "`zdist` is not the standard normal: it must have mean 0 and unit variance, no covariance.")
    return ok("zdist: standard normal, batch shape [], event shape [2]")


@lab_check(points=1, uses=("zsamples", "zdist"))
def base_samples(namespace: Mapping[str, Any]) -> str:
    """``zsamples``: 10,000 draws from ``zdist``."""
    (zsamples,) = lookup(namespace, "zsamples")
    points = point_array("zsamples", zsamples, MOON_N)
    require(np.allclose(points.mean(0), 0.0, atol=0.05) and np.allclose(np.cov(points.T), np.eye(2), atol=0.06),
             f"`zsamples` has mean {np.round(points.mean(0), 2).tolist()} and covariance "
             f"{np.round(np.cov(points.T), 2).tolist()}; samples of N(0, I) have mean 0 and identity "
             "covariance. Hint: zdist.sample(moon_n).")
    return ok(f"zsamples: {MOON_N} samples of N(0, I)")


@lab_check(points=2, uses=("shift_bij", "scale_bij", "b"))
def bijectors(namespace: Mapping[str, Any]) -> str:
    """``scale_bij``, ``shift_bij`` and their composition ``b`` (scale first, then shift)."""
    shift_bij, scale_bij, b = lookup(namespace, "shift_bij", "scale_bij", "b")
    for name, value in (("shift_bij", shift_bij), ("scale_bij", scale_bij), ("b", b)):
        require(isinstance(value, tfb.Bijector), f"`{name}` should be a TFP bijector, got {type(value).__name__}.")
    ones = tf.constant([[1.0, 1.0]])
    scaled = scale_bij.forward(ones).numpy()
    require(np.allclose(scaled, [[1.0, 0.5]]),
             f"scale_bij maps (1, 1) to {np.round(scaled, 3).tolist()[0]}; scaling by [1, 0.5] gives "
             "[1.0, 0.5]. Hint: tfb.Scale([1.0, 0.5]).")
    shifted = shift_bij.forward(tf.zeros((1, 2))).numpy()
    require(np.allclose(shifted, [[0.5, 0.25]]),
             f"shift_bij maps (0, 0) to {np.round(shifted, 3).tolist()[0]}; shifting by [0.5, 0.25] "
             "gives [0.5, 0.25]. Hint: tfb.Shift([0.5, 0.25]).")
    composed = b.forward(ones).numpy()
    if np.allclose(composed, [[1.5, 0.625]]):
        raise CheckFailed("b shifts first and then scales (it maps (1, 1) to [1.5, 0.625]); the lab "
                          "scales first, then shifts. Hint: b = shift_bij(scale_bij).")
    require(np.allclose(composed, [[1.5, 0.75]]),
             f"b maps (1, 1) to {np.round(composed, 3).tolist()[0]}; scale-then-shift gives [1.5, 0.75].")
    log_det = float(np.mean(b.forward_log_det_jacobian(ones, event_ndims=1)))
    require(abs(log_det - np.log(0.5)) < 1e-5, f"b's log-det is {log_det:.4f}; expected log 0.5.")
    return ok("b = shift(scale(z)): (1, 1) -> (1.5, 0.75), log|det J| = log 0.5")


@lab_check(points=1, uses=("td", "zsamples", "zdist", "b"))
def transformed_distribution(namespace: Mapping[str, Any]) -> str:
    """``td``: zdist pushed through ``b``, and ``zsamples`` drawn from it."""
    td, zsamples = lookup(namespace, "td", "zsamples")
    require(kind_of(td) == "TransformedDistribution",
             f"`td` should be a tfd.TransformedDistribution, got {kind_of(td)}.")
    x = np.array([[0.5, 0.25], [1.0, 1.0]], dtype=np.float32)
    z = (x - np.array([0.5, 0.25])) / np.array([1.0, 0.5])
    expected = -0.5 * (z**2).sum(1) - np.log(2 * np.pi) - np.log(0.5)
    require(np.allclose(td.log_prob(x).numpy(), expected, atol=1e-4),
             "td.log_prob does not match N(0, I) pushed through scale [1, 0.5] then shift "
             "[0.5, 0.25]. Hint: tfd.TransformedDistribution(zdist, bijector=b).")
    points = point_array("zsamples", zsamples, MOON_N)
    require(np.allclose(points.mean(0), [0.5, 0.25], atol=0.05) and
             np.allclose(points.std(0), [1.0, 0.5], atol=0.05),
             f"`zsamples` has mean {np.round(points.mean(0), 2).tolist()} and std "
             f"{np.round(points.std(0), 2).tolist()}; samples of td have mean [0.5, 0.25] and std "
             "[1.0, 0.5]. Hint: td.sample(moon_n).")
    return ok("td: N(0, I) scaled and shifted; its samples match")


def _per_coordinate(log_det: Any) -> bool:
    """Whether ``log_det`` is b's log-det per coordinate (event_ndims=0): [0, ±log 2] on its last axis."""
    try:
        array = np.asarray(log_det, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return array.ndim >= 1 and array.shape[-1] == 2 and any(
        np.allclose(array, [0.0, sign * np.log(2.0)], atol=1e-4) for sign in (1.0, -1.0))


@lab_check(points=1, uses=("x_check", "log_det_g", "by_hand"))
def formula_by_hand(namespace: Mapping[str, Any]) -> str:
    """``log_det_g`` and ``by_hand``: the change-of-variables formula on ``x_check``, done by hand."""
    if "log_det_g" in namespace:  # event_ndims=0 stops the student's cell at by_hand, before it is defined
        require(not _per_coordinate(namespace["log_det_g"]),
                 f"`log_det_g` is {np.round(np.asarray(namespace['log_det_g'], dtype=np.float64), 4).tolist()}: one "
                 "number per coordinate, not per point. event_ndims=0 makes each coordinate an event of its own, "
                 "so adding it to zdist.log_prob (one number per point) fails with \"Incompatible shapes: [4] vs. "
                 "[2]\". Hint: b.inverse_log_det_jacobian(x_check, event_ndims=1): a point of the plane is one "
                 "event.")
    x_check, log_det_g, by_hand = lookup(namespace, "x_check", "log_det_g", "by_hand")
    try:
        x = np.asarray(x_check, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"`x_check` should be an array of points, got {type(x_check).__name__}.") from None
    require(x.ndim == 2 and x.shape[1] == 2 and len(x) >= 2,
             f"`x_check` has shape {x.shape}; keep the points given, shape (n, 2).")
    log_det_g, by_hand = column_array("log_det_g", log_det_g, len(x)), column_array("by_hand", by_hand, len(x))
    log_two = np.log(2.0)
    require(not np.allclose(log_det_g, -log_two, atol=1e-4),
             "`log_det_g` is log 0.5 at every point: that is log|det J_f|, the forward map's (it halves areas). "
             "p(x) needs the inverse's, log|det J_g| = log 2. Hint: b.inverse_log_det_jacobian(x_check, "
             "event_ndims=1).")
    require(np.allclose(log_det_g, log_two, atol=1e-4),
             f"`log_det_g` is {np.round(log_det_g, 4).tolist()}; g = b^-1 doubles areas, so log|det J_g| = "
             "log 2 = 0.6931 at every point. Hint: b.inverse_log_det_jacobian(x_check, event_ndims=1).")
    z = (x - np.array([0.5, 0.25])) / np.array([1.0, 0.5])
    log_p_z = -0.5 * (z**2).sum(1) - np.log(2 * np.pi)
    expected = log_p_z + log_two
    if np.allclose(by_hand, log_p_z, atol=1e-4):
        raise CheckFailed("`by_hand` is log p_z(g(x)) alone: the log-det term is missing, so the density would "
                          "not integrate to one. Hint: add log_det_g.")
    if np.allclose(by_hand, log_p_z - log_two, atol=1e-4):
        raise CheckFailed("`by_hand` subtracts log|det J_g|; the formula adds it: "
                          "log p(x) = log p_z(g(x)) + log|det J_g(x)|.")
    forward = -0.5 * ((x * np.array([1.0, 0.5]) + np.array([0.5, 0.25]))**2).sum(1) - np.log(2 * np.pi)
    require(not np.any([np.allclose(by_hand, forward + c, atol=1e-4) for c in (0.0, log_two, -log_two)]),
             "`by_hand` scores f(x), the forward map, under the base distribution; the formula maps x back "
             "with g. Hint: zdist.log_prob(b.inverse(x_check)).")
    require(np.allclose(by_hand, expected, atol=1e-4),
             f"`by_hand` is {np.round(by_hand, 4).tolist()}; the formula gives {np.round(expected, 4).tolist()}. "
             "Hint: zdist.log_prob(b.inverse(x_check)) + log_det_g.")
    return ok("by hand: log p_z(g(x)) + log|det J_g(x)| = td.log_prob(x), log|det J_g| = log 2")


#: Points where a hand-written element-wise bijector of the real line is tested.
_HAND_X = np.linspace(-3.0, 3.0, 13, dtype=np.float32)


def _numpy_inside(method: str) -> str:
    """The failure of a hand-written bijector that computes with NumPy."""
    return (f"my_sinh.{method} returns a NumPy array, not a tensor: your class computes with NumPy (np.sinh, "
            "np.log, ...). TFP and tf.GradientTape need TensorFlow operations: NumPy's results cannot be "
            "differentiated, which is what \"'numpy.ndarray' object has no attribute '_id'\" means. Hint: use "
            "tf.sinh, tf.asinh, tf.math.log, tf.cosh and tf.math.log1p inside the methods.")


def _hand_values(bijector: Any, method: str, points: np.ndarray) -> np.ndarray:
    """``bijector.<method>`` on fresh tensors (TFP caches forward/inverse pairs by tensor) as float64."""
    try:
        if method.endswith("log_det_jacobian"):
            value = getattr(bijector, method)(tf.constant(points), event_ndims=0)
        else:
            value = getattr(bijector, method)(tf.constant(points))
        require(tf.is_tensor(value), _numpy_inside(method))
        array = np.array(value, dtype=np.float64)
    except CheckFailed:
        raise
    except Exception as error:  # the student's code: say which method failed and how
        if "_id" in str(error) and "numpy" in str(error):
            raise CheckFailed(_numpy_inside(method)) from None
        raise CheckFailed(f"my_sinh.{method} failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
                          ) from None
    array = np.broadcast_to(array, points.shape) if array.ndim == 0 else array
    require(array.shape == points.shape, f"my_sinh.{method} maps {points.shape[0]} numbers to shape "
                                          f"{array.shape}; an element-wise bijector keeps the shape.")
    return array


def _tape_log_slope(function: Callable[[tf.Tensor], tf.Tensor], points: np.ndarray) -> np.ndarray:
    """log|d function / dx| at each point, element-wise, by tf.GradientTape."""
    x = tf.constant(points)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = function(x)
    require(tf.is_tensor(y), _numpy_inside(getattr(function, "__name__", "forward")))
    slope = tape.gradient(y, x)
    require(slope is not None, "the bijector's output does not depend on its input through TensorFlow "
                                "operations, so GradientTape cannot differentiate it. Hint: use tf functions.")
    return np.log(np.abs(np.array(slope, dtype=np.float64)))


@lab_check(points=3, uses=("my_sinh",))
def hand_bijector(namespace: Mapping[str, Any]) -> str:
    """``my_sinh``: the notebook's own tfb.Bijector subclass for y = sinh(x), its round trip and log-dets."""
    (my_sinh,) = lookup(namespace, "my_sinh")
    require(isinstance(my_sinh, tfb.Bijector), f"`my_sinh` should be an instance of your tfb.Bijector "
                                                f"subclass, got {type(my_sinh).__name__}.")
    foreign = [cls.__name__ for cls in type(my_sinh).__mro__[1:]
               if (cls.__module__ or "").startswith("tensorflow_probability") and cls.__name__.lstrip("_")
               not in ("Bijector", "AutoCompositeTensorBijector")]
    if (type(my_sinh).__module__ or "").split(".")[0] == "tensorflow_probability":
        foreign.insert(0, type(my_sinh).__name__)
    if foreign:
        raise CheckFailed(f"`my_sinh` is built on TFP's {foreign[0]}: write the class yourself, as a direct "
                          "subclass of tfb.Bijector.")
    missing = [m for m in ("_forward", "_inverse", "_forward_log_det_jacobian")
               if getattr(type(my_sinh), m, None) is getattr(tfb.Bijector, m, None)]
    require(not missing, f"your class does not define {', '.join(missing)}. Hint: write each as a method of "
                          "the class.")
    y = _hand_values(my_sinh, "forward", _HAND_X)
    require(np.allclose(y, np.sinh(_HAND_X.astype(np.float64)), rtol=1e-4, atol=1e-5),
             f"my_sinh.forward maps {_HAND_X[[0, 6, 8]].tolist()} to {np.round(y[[0, 6, 8]], 4).tolist()}; "
             f"sinh gives {np.round(np.sinh(_HAND_X[[0, 6, 8]].astype(float)), 4).tolist()}. Hint: tf.sinh.")
    back = _hand_values(my_sinh, "inverse", y.astype(np.float32))
    worst = int(np.argmax(np.abs(back - _HAND_X)))
    require(np.allclose(back, _HAND_X, rtol=1e-4, atol=1e-4),
             f"the round trip fails: inverse(forward({_HAND_X[worst]:g})) = {back[worst]:.4g}. The inverse of "
             "sinh is asinh. Hint: tf.asinh.")
    fldj = _hand_values(my_sinh, "forward_log_det_jacobian", _HAND_X)
    tape = _tape_log_slope(my_sinh.forward, _HAND_X)
    require(np.allclose(fldj, tape, rtol=1e-4, atol=1e-4),
             f"forward_log_det_jacobian at x = {_HAND_X[[6, 8, 12]].tolist()} is {np.round(fldj[[6, 8, 12]], 4).tolist()}, "
             f"but log|dy/dx| by GradientTape is {np.round(tape[[6, 8, 12]], 4).tolist()}. Hint: dy/dx = cosh x, "
             "and the method returns its log.")
    y32 = np.sinh(_HAND_X).astype(np.float32)
    ildj = _hand_values(my_sinh, "inverse_log_det_jacobian", y32)
    tape = _tape_log_slope(my_sinh.inverse, y32)
    require(np.allclose(ildj, tape, rtol=1e-4, atol=1e-4),
             f"inverse_log_det_jacobian at y = {np.round(y32[[6, 8, 12]], 3).tolist()} is "
             f"{np.round(ildj[[6, 8, 12]], 4).tolist()}, but log|dx/dy| by GradientTape is "
             f"{np.round(tape[[6, 8, 12]], 4).tolist()}. Hint: dx/dy = 1 / sqrt(1 + y^2): the inverse's "
             "log-det is minus the forward's at x = asinh(y).")
    LEDGER.record(hand_bijector=my_sinh)
    return ok("my_sinh: round trip, and both log-dets agree with GradientTape")


def _chained(bijector: Any) -> list[Any]:
    """Every bijector inside a chain, however it was built: a list, composition by calling one bijector
    on another (which nests chains), or chains inside chains."""
    if kind_of(bijector) != "Chain":
        return [bijector]
    return [bijector] + [inner for member in bijector.bijectors for inner in _chained(member)]


@lab_check(points=2, after=("hand_bijector",), uses=("sinh_chain", "sinh_td", "my_sinh"))
def hand_chain(namespace: Mapping[str, Any]) -> str:
    """``sinh_chain`` (x = 0.5 sinh(z) + 1, with my_sinh) and ``sinh_td``, which integrates to one."""
    sinh_chain, sinh_td, my_sinh = lookup(namespace, "sinh_chain", "sinh_td", "my_sinh")
    require(my_sinh is recorded_by("hand_bijector", "hand_bijector"),
             "`my_sinh` is not the bijector the hand_bijector check saw: the `class MySinh` cell ran again "
             "after that check (each run makes a new my_sinh). " + rerun_hint("hand_bijector"))
    require(kind_of(sinh_chain) == "Chain", f"`sinh_chain` should be a tfb.Chain, got {kind_of(sinh_chain)}.")
    require(any(bij is my_sinh for bij in _chained(sinh_chain)),
             "`sinh_chain` does not contain your my_sinh. Hint: put my_sinh itself in the chain (in the list, "
             "or composed: tfb.Shift(1.0)(tfb.Scale(0.5)(my_sinh))), not TFP's tfb.Sinh or a new MySinh().")
    z = np.array([-1.0, 0.0, 0.5, 2.0], dtype=np.float32)
    x = np.array(sinh_chain.forward(tf.constant(z)), dtype=np.float64)
    expected = 0.5 * np.sinh(z.astype(np.float64)) + 1.0
    inner = np.arcsinh(x)  # sinh applied last: arcsinh(x) is then an affine function of z
    slope, intercept = np.polyfit(z, inner, 1)
    if np.allclose(inner, slope * z + intercept, atol=1e-4) and not np.allclose(x, expected, atol=1e-4):
        raise CheckFailed(f"sinh_chain applies sinh last: it computes sinh({slope:.3g} z + {intercept:.3g}). A "
                          "Chain applies its list right to left, so list the step that acts first last: "
                          "[Shift, Scale, my_sinh].")
    require(np.allclose(x, expected, atol=1e-4),
             f"sinh_chain maps z = {z.tolist()} to {np.round(x, 4).tolist()}; x = 0.5 sinh(z) + 1 gives "
             f"{np.round(expected, 4).tolist()}. Hint: tfb.Chain([tfb.Shift(1.0), tfb.Scale(0.5), my_sinh]).")
    require(kind_of(sinh_td) == "TransformedDistribution" and sinh_td.bijector is sinh_chain,
             "`sinh_td` should be a tfd.TransformedDistribution of a standard normal through sinh_chain.")
    grid = np.linspace(-120.0, 120.0, 240_001)
    log_p = np.array(sinh_td.log_prob(tf.constant(grid, dtype=tf.float32)), dtype=np.float64)
    require(log_p.shape == grid.shape, f"sinh_td.log_prob of {grid.size} numbers has shape {log_p.shape}: the "
                                        "base should be a scalar tfd.Normal(0.0, 1.0).")
    mass = float(np.sum(np.exp(log_p)) * (grid[1] - grid[0]))
    require(abs(mass - 1.0) < 0.01, f"sinh_td's density integrates to {mass:.3f}, not 1: the base is not a "
                                     "standard normal, or a log-det is off.")
    u = (grid[::4000] - 1.0) / 0.5
    exact = -0.5 * np.arcsinh(u)**2 - 0.5 * np.log(2 * np.pi) - 0.5 * np.log1p(u**2) + np.log(2.0)
    require(np.allclose(log_p[::4000], exact, atol=1e-3),
             "sinh_td integrates to one but is not N(0, 1) pushed through 0.5 sinh(z) + 1. Hint: "
             "tfd.TransformedDistribution(tfd.Normal(0.0, 1.0), bijector=sinh_chain).")
    return ok("sinh_chain: x = 0.5 sinh(z) + 1 with my_sinh; sinh_td integrates to 1")

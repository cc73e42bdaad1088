"""The monotone rational-quadratic spline of a neural spline flow (Durkan et al., 2019).

Each unit gets ``K`` bins on ``[-bound, bound]``: ``K`` bin widths and ``K`` bin heights
(each set summing to ``2 * bound``) and ``K - 1`` positive slopes at the inner knots; the
slope at both ends is 1, so the spline joins the identity used outside the interval.

Why not ``tfp.bijectors.RationalQuadraticSpline``: its answers are the same (the tests
compare the two), but as a RealNVP ``bijector_fn`` it evaluates the conditioning network
twice and the spline three times for every ``log_prob`` of every layer. Written out here, one
pass gives the values and the log-derivative together: a much smaller graph, faster
to trace and to run (figures in ``benchmarks/README.md``).
"""

from __future__ import annotations

import math

import tensorflow as tf

__all__ = ["MIN_SIZE", "spline_parameters", "knot_positions", "rqs_evaluate", "rqs_solve"]

#: The smallest bin width and height, and the smallest slope, of every spline.
MIN_SIZE = 1e-2


def spline_parameters(raw: tf.Tensor, bins: int, bound: float) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """A network's ``3 * bins - 1`` raw outputs per unit (last axis) as a spline's bin widths and
    heights (each summing to ``2 * bound``, none under :data:`MIN_SIZE`) and inner slopes (above
    :data:`MIN_SIZE`). Raw outputs of zero give equal bins and unit slopes: the identity.

    Example:
        >>> w, h, s = spline_parameters(tf.zeros([3 * 2 - 1]), bins=2, bound=1.0)
        >>> w.numpy().tolist(), s.numpy().round(6).tolist()
        ([1.0, 1.0], [1.0])
    """
    widths, heights, slopes = tf.split(raw, [bins, bins, bins - 1], axis=-1)

    def sizes(logits):
        return tf.nn.softmax(logits, axis=-1) * (2 * bound - bins * MIN_SIZE) + MIN_SIZE

    # softplus(log(e^(1 - min_size) - 1)) + min_size = 1: zero outputs give unit slopes
    slopes = tf.nn.softplus(slopes + math.log(math.expm1(1.0 - MIN_SIZE))) + MIN_SIZE
    return sizes(widths), sizes(heights), slopes


def knot_positions(sizes: tf.Tensor, bound: float) -> tf.Tensor:
    """The ``K + 1`` knots from ``-bound`` that ``K`` bin sizes (last axis) put in place.

    Example:
        >>> knot_positions(tf.constant([1.0, 3.0]), 2.0).numpy().tolist()
        [-2.0, -1.0, 2.0]
    """
    cumulative = tf.cumsum(sizes, axis=-1)
    return tf.concat([tf.zeros_like(cumulative[..., :1]), cumulative], axis=-1) - bound


def _bin_of(knots: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
    """One-hot over the bins: which bin (between consecutive ``knots``) holds ``value``."""
    inner_knots = knots[..., 1:-1]
    index = tf.reduce_sum(tf.cast(value[..., None] >= inner_knots, tf.int32), axis=-1)
    return tf.one_hot(index, inner_knots.shape[-1] + 1, dtype=value.dtype)


def _bin_parameters(widths, heights, slopes, bound, value, knots_of_value: str):
    """The bin of ``value`` and its corner, width, height and end slopes. ``value`` is
    searched among the x knots (``knots_of_value='x'``) or the y knots ('y'). Values
    outside the interval are replaced by 0, so the unused branch stays finite."""
    x_knots, y_knots = knot_positions(widths, bound), knot_positions(heights, bound)
    all_slopes = tf.pad(slopes, [[0, 0]] * (len(slopes.shape) - 1) + [[1, 1]], constant_values=1.0)
    inside = (value > -bound) & (value < bound)
    value = tf.where(inside, value, tf.zeros_like(value))
    in_bin = _bin_of(x_knots if knots_of_value == "x" else y_knots, value)

    def pick(per_bin):
        return tf.reduce_sum(in_bin * per_bin, axis=-1)

    return (inside, value, pick(x_knots[..., :-1]), pick(y_knots[..., :-1]), pick(widths),
            pick(heights), pick(all_slopes[..., :-1]), pick(all_slopes[..., 1:]))


def rqs_evaluate(u: tf.Tensor, widths: tf.Tensor, heights: tf.Tensor, slopes: tf.Tensor,
                bound: float) -> tuple[tf.Tensor, tf.Tensor]:
    """The spline at ``u`` and ``log g'(u)``, elementwise; the identity outside the interval.

    ``widths``/``heights`` have shape ``u.shape + [K]``, ``slopes`` ``u.shape + [K - 1]``.

    Example:
        >>> v, log_derivative = rqs_evaluate(tf.constant([0.5, 7.0]), tf.fill([2, 2], 1.0),
        ...                                 tf.fill([2, 2], 1.0), tf.fill([2, 1], 1.0), 1.0)
        >>> v.numpy().tolist(), log_derivative.numpy().tolist()
        ([0.5, 7.0], [0.0, 0.0])
    """
    inside, u_in, x_k, y_k, width, height, slope_k, slope_k1 = _bin_parameters(
        widths, heights, slopes, bound, u, "x")
    secant = height / width
    xi = (u_in - x_k) / width  # position within the bin, in [0, 1]
    xi_1_xi = xi * (1 - xi)
    denominator = secant + (slope_k1 + slope_k - 2 * secant) * xi_1_xi
    v = y_k + height * (secant * xi ** 2 + slope_k * xi_1_xi) / denominator
    log_derivative = (2 * tf.math.log(secant)
                      + tf.math.log(slope_k1 * xi ** 2 + 2 * secant * xi_1_xi + slope_k * (1 - xi) ** 2)
                      - 2 * tf.math.log(denominator))
    return tf.where(inside, v, u), tf.where(inside, log_derivative, tf.zeros_like(log_derivative))


def rqs_solve(v: tf.Tensor, widths: tf.Tensor, heights: tf.Tensor, slopes: tf.Tensor,
                bound: float) -> tf.Tensor:
    """The ``u`` with ``rqs_evaluate(u) == v``: the root in [0, 1] of a quadratic in the
    position within the bin (the numerically stable form of the formula).

    Example:
        >>> w = tf.constant([[1.0, 3.0]])
        >>> v, _ = rqs_evaluate(tf.constant([-1.5]), w, w[:, ::-1], tf.constant([[2.0]]), 2.0)
        >>> round(float(rqs_solve(v, w, w[:, ::-1], tf.constant([[2.0]]), 2.0)[0]), 5)
        -1.5
    """
    inside, v_in, x_k, y_k, width, height, slope_k, slope_k1 = _bin_parameters(
        widths, heights, slopes, bound, v, "y")
    secant = height / width
    offset = v_in - y_k
    curvature = offset * (slope_k1 + slope_k - 2 * secant)
    a = height * (secant - slope_k) + curvature
    b = height * slope_k - curvature
    c = -secant * offset
    discriminant = tf.maximum(b ** 2 - 4 * a * c, 0.0)
    xi = 2 * c / (-b - tf.sqrt(discriminant))
    return tf.where(inside, xi * width + x_k, v)

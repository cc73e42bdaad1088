"""A continuous normalizing flow (CNF): the density moves along an ODE instead of through a chain
of layers. A velocity field ``v(t, x)`` (:class:`VelocityField`, a small MLP that takes the time as
an input) carries base noise ``z = x(0)`` to a point ``x(1)``; TFP's ``tfb.FFJORD`` integrates it,
and the log-density follows the **instantaneous change of variables**

    d/dt log p(x(t)) = -tr(dv/dx (t, x(t))),

the limit of a discrete chain's ``log|det(I + h J)| = h tr J + O(h^2)`` per step of size ``h``.
The trace is computed exactly (two reverse passes in 2-D: ``e_i^T J e_i`` for each basis vector) or
by Hutchinson's estimator (``eps^T J eps`` for a Gaussian ``eps``, unbiased, one pass whatever the
dimension), both by :class:`Trace`. :class:`ODESolve` is the solver FFJORD calls: Dormand-Prince
(adaptive, ``rtol``/``atol``) or fixed-step Euler (``steps``), and it counts the function
evaluations each solve cost.

The flow is registered as family ``"cnf"`` in :mod:`flowlab.flows` (its builder calls
:func:`cnf_bijector`), so ``FlowConfig(flow="cnf",
num_layers=1, ...)``, ``make_flow``, ``log_prob``, ``sample``, :func:`flowlab.measure.evaluate`,
``save_flow`` and :func:`flowlab.train.fit` (maximum likelihood through the ODE) work on it as on
every other flow. Its training by flow matching, and the same flow on another solver
(``with_solver``), are :mod:`flowlab.studies.flow_matching`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["SOLVERS", "TRACES", "CNF_OPTIONS", "check_options", "VelocityField", "ODESolve", "Trace",
           "CNF", "cnf_bijector", "cnf_of", "function_evaluations", "count_evaluations"]

#: The ODE solvers: Dormand-Prince 5(4) with adaptive steps, or Euler with ``steps`` equal steps.
SOLVERS = ("dopri", "euler")
#: How the Jacobian's trace is computed: exactly (``ndim`` reverse passes) or by Hutchinson's estimator.
TRACES = ("exact", "hutchinson")
#: The cnf family's own options and their defaults: the solver, its tolerances (dopri) or its
#: number of steps (euler), the trace, and the seed of Hutchinson's probes.
CNF_OPTIONS = {"solver": "dopri", "rtol": 1e-5, "atol": 1e-5, "steps": 20, "trace": "exact"}


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """The cnf family's options, validated (each error names the option, what was given and what is allowed)."""
    return {"solver": _validate.one_of("solver", options["solver"], SOLVERS),
            "rtol": _validate.within("ode_tolerance", "rtol", options["rtol"]),
            "atol": _validate.within("ode_tolerance", "atol", options["atol"]),
            "steps": _validate.within("ode_steps", "steps", options["steps"]),
            "trace": _validate.one_of("trace", options["trace"], TRACES)}


class VelocityField(tf.keras.layers.Layer):
    """``v(t, x)``: an MLP on ``[x, t]`` with ``hidden_units`` hidden layers and ``ndim`` outputs. Its
    last layer starts at zero, so the flow starts as the identity (the base density). Seeded
    Glorot weights: the same seed gives the same field.

    Example:
        >>> v = VelocityField((8,), "swish", ndim=2, seed=0)
        >>> v(0.5, tf.zeros([3, 2])).shape, len(v.trainable_variables)
        (TensorShape([3, 2]), 4)
    """

    def __init__(self, hidden_units: Sequence[int], activation: str, ndim: int = 2, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.ndim = _validate.positive_int("ndim", ndim)
        self.hidden = [tf.keras.layers.Dense(units, activation=activation, name=f"hidden_{i}",
                                             kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed * 100 + i))
                       for i, units in enumerate(hidden_units)]
        self.out = tf.keras.layers.Dense(self.ndim, kernel_initializer="zeros", name="velocity")
        self(0.0, tf.zeros([1, self.ndim]))  # create the weights now

    def call(self, t: tf.Tensor | float, x: tf.Tensor) -> tf.Tensor:
        x = tf.convert_to_tensor(x, tf.float32)
        t = tf.cast(tf.convert_to_tensor(t), tf.float32)
        t = tf.broadcast_to(tf.reshape(t, [-1, 1]) if t.shape.rank else t, tf.concat([tf.shape(x)[:-1], [1]], 0))
        h = tf.concat([x, t], axis=-1)
        for layer in self.hidden:
            h = layer(h)
        return self.out(h)


class _Solution(NamedTuple):
    """What FFJORD reads of a solve: the states at the solution times (a leading time axis)."""
    states: Any


def _euler(ode_fn: Callable, t0: tf.Tensor, t1: tf.Tensor, state: Any, steps: int, **kwargs) -> Any:
    """``steps`` Euler steps of ``ode_fn`` from ``t0`` to ``t1`` on a (nested) state (a while loop)."""
    t0 = tf.cast(t0, tf.float32)
    h = (tf.cast(t1, tf.float32) - t0) / steps

    def step(k, state):
        slope = ode_fn(t0 + tf.cast(k, tf.float32) * h, state, **kwargs)
        return k + 1, tf.nest.map_structure(lambda s, d: s + h * d, state, slope)

    return tf.while_loop(lambda k, _: k < steps, step, (tf.constant(0), state))[1]


class ODESolve:
    """The ``ode_solve_fn`` a :class:`CNF` hands FFJORD: Dormand-Prince (``solver="dopri"``, adaptive,
    relative and absolute tolerances ``rtol``, ``atol``) or ``steps`` Euler steps (``"euler"``).
    ``evaluations`` counts the ODE right-hand-side evaluations of every solve so far (an Euler solve
    costs ``steps``; a Dormand-Prince one what its step control needed: 6 per attempted step, plus
    the first). A backward (adjoint) pass's evaluations are not counted."""

    def __init__(self, solver: str = "dopri", rtol: float = 1e-5, atol: float = 1e-5, steps: int = 20):
        options = check_options({"solver": solver, "rtol": rtol, "atol": atol, "steps": steps, "trace": "exact"})
        self.solver, self.rtol, self.atol, self.steps = (options[k] for k in ("solver", "rtol", "atol", "steps"))
        self.evaluations = tf.Variable(0, dtype=tf.int64, trainable=False, name="ode_evaluations")

    def __call__(self, ode_fn: Callable, initial_time, initial_state, solution_times, **kwargs) -> _Solution:
        final_time = tf.convert_to_tensor(solution_times, tf.float32)[-1]
        if self.solver == "euler":
            final = _euler(ode_fn, initial_time, final_time, initial_state, self.steps, **kwargs)
            states, count = tf.nest.map_structure(lambda s: s[None], final), self.steps
        else:
            result = tfp.math.ode.DormandPrince(rtol=self.rtol, atol=self.atol).solve(
                ode_fn, initial_time, initial_state, solution_times=solution_times, **kwargs)
            states, count = result.states, result.diagnostics.num_ode_fn_evaluations
        self.evaluations.assign_add(tf.cast(count, tf.int64))
        return _Solution(states)


class Trace:
    """FFJORD's ``trace_augmentation_fn``: the velocity together with the diagonal of its Jacobian
    (FFJORD sums it) or an unbiased estimate of it. Both are ``E[eps * (J^T eps)]`` over probe
    vectors ``eps``: the ``ndim`` basis vectors (``"exact"``: ``e_i^T J e_i`` is ``J_ii``) or
    ``probes`` standard Gaussian draws (``"hutchinson"``), fresh for every solve and drawn from
    ``seed`` and a counter of solves (the same seed gives the same draws)."""

    def __init__(self, method: str = "exact", seed: int = 0, probes: int = 1):
        self.method = _validate.one_of("trace", method, TRACES)
        self.seed = _validate.non_negative_int("seed", seed)
        self.probes = _validate.positive_int("probes", probes)
        self.draws = tf.Variable(0, dtype=tf.int64, trainable=False, name="hutchinson_draws")

    def hutchinson_probes(self, state_shape: Any, dtype: tf.DType) -> list[tf.Tensor]:
        """``probes`` Gaussian vectors of the state's shape for one solve, from ``seed`` and the solve's number."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), self.draws.assign_add(1)])
        shape = tf.concat([[self.probes], tf.cast(state_shape, tf.int32)], 0)
        return tf.unstack(tf.random.stateless_normal(shape, seed=seed, dtype=dtype), num=self.probes)

    def __call__(self, ode_fn: Callable, state_shape: Any, dtype: tf.DType) -> Callable:
        hutchinson = self.hutchinson_probes(state_shape, dtype) if self.method == "hutchinson" else None

        def augmented(time, state_and_log_det, **kwargs):
            state, _ = state_and_log_det
            with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
                tape.watch(state)
                velocity = ode_fn(time, state, **kwargs)
            ndim = state.shape[-1]
            probes = hutchinson or [tf.one_hot(tf.fill(tf.shape(state)[:-1], i), ndim, dtype=dtype) for i in range(ndim)]
            # eps * J^T eps, J^T eps by one reverse pass: summed over the basis it is diag(J)
            terms = [eps * tape.gradient(velocity, state, output_gradients=eps) for eps in probes]
            del tape
            return velocity, tf.add_n(terms) / (len(terms) if hutchinson else 1)

        return augmented


class _Compiled:
    """A CNF's solves as TensorFlow functions (a plain holder: nothing in it is a weight to track)."""

    def __init__(self, cnf: "CNF"):
        relaxed = dict(reduce_retracing=True)
        self.forward = tf.function(lambda x: cnf._solve_ode(cnf.velocity, x), **relaxed)
        self.augmented_forward = tf.function(lambda x: tfb.FFJORD._augmented_forward(cnf, x), **relaxed)
        self.augmented_inverse = tf.function(lambda y: tfb.FFJORD._augmented_inverse(cnf, y), **relaxed)


class CNF(tfb.FFJORD):
    """``tfb.FFJORD`` on a :class:`VelocityField`, from base noise (t = 0) to data (t = 1), with its
    :class:`ODESolve` and :class:`Trace` kept as ``solve`` and ``trace``. Two changes to FFJORD:
    its solves run as compiled TensorFlow functions (eagerly, each solver step paid Python's
    overhead), and ``forward`` (sampling) integrates the velocity alone, without the trace that
    only its log-determinant needs."""

    def __init__(self, velocity: Callable, solve: ODESolve, trace: Trace, name: str = "cnf"):
        super().__init__(state_time_derivative_fn=velocity, ode_solve_fn=solve, trace_augmentation_fn=trace,
                         name=name)
        self.velocity, self.solve, self.trace = velocity, solve, trace
        self._compiled = [_Compiled(self)]

    def _augmented_forward(self, x, **condition_kwargs):
        if condition_kwargs:
            raise ValueError(f"a flowlab CNF takes no conditions, got {sorted(condition_kwargs)}")
        return self._compiled[0].forward(x), None

    def _augmented_inverse(self, y, **condition_kwargs):
        if condition_kwargs:
            raise ValueError(f"a flowlab CNF takes no conditions, got {sorted(condition_kwargs)}")
        return self._compiled[0].augmented_inverse(y)

    def _forward_log_det_jacobian(self, x, **condition_kwargs):
        cached = self._cache.forward_attributes(x)
        if "fldj" not in cached:
            cached.update(self._compiled[0].augmented_forward(x)[1])
        return cached["fldj"]


def cnf_bijector(velocity: Callable, seed: int, options: dict[str, Any]) -> tfb.Chain:
    """A chain of one :class:`CNF` on ``velocity``, with the solver and trace of ``options``
    (:data:`CNF_OPTIONS`'s, checked; Hutchinson's probes drawn from ``seed``): the cnf family's chain.

    Example:
        >>> [type(b).__name__ for b in cnf_bijector(VelocityField((8,), "tanh"), 0, {}).bijectors]
        ['CNF']
    """
    options = check_options({**CNF_OPTIONS, **options})
    solve = ODESolve(options["solver"], options["rtol"], options["atol"], options["steps"])
    return tfb.Chain([CNF(velocity, solve, Trace(options["trace"], seed))], name="cnf_chain")


def _steps(bijector: tfb.Bijector) -> list[tfb.Bijector]:
    """The bijectors of a (nested) chain, flattened."""
    inner = getattr(bijector, "bijectors", None)  # make_flow's chains (TFP's _Chain)
    return [bijector] if inner is None else [step for b in inner for step in _steps(b)]


def cnf_of(flow: tfd.Distribution) -> CNF:
    """The :class:`CNF` bijector of a continuous flow made by ``make_flow(FlowConfig(flow="cnf", ...))``."""
    found = [step for step in _steps(getattr(flow, "bijector", None)) if isinstance(step, CNF)]
    if not found:
        raise ValueError(f"flow must be a continuous flow (make_flow(FlowConfig(flow='cnf', ...))), "
                         f"got {type(flow).__name__}")
    return found[0]


def function_evaluations(flow: tfd.Distribution) -> int:
    """ODE right-hand-side evaluations of every forward solve of ``flow`` so far."""
    return int(cnf_of(flow).solve.evaluations.numpy())


def count_evaluations(flow: tfd.Distribution, fn: Callable[[], Any]) -> tuple[Any, int]:
    """``fn()``'s result and the ODE function evaluations it cost ``flow``.

    Example:
        >>> from flowlab.flows import FlowConfig, make_flow
        >>> flow = make_flow(FlowConfig(flow="cnf", num_layers=1, hidden_units=(8,),
        ...                             options={"solver": "euler", "steps": 7}))
        >>> count_evaluations(flow, lambda: flow.sample(3, seed=1))[1]
        7
    """
    before = function_evaluations(flow)
    result = fn()
    return result, function_evaluations(flow) - before

"""Every branch of flowlab.grader.checks, in-process, on small hand-built notebook namespaces.

Each check gets a namespace holding a right answer (``flowlab.grader.checks.run`` prints one ``OK: ...``
line) and then, one at a time, the wrong answers each of its branches is there to catch (it
raises CheckFailed saying so, and prints nothing).

The later checks are stateful: flow_chain, keras_model, loss_and_optimizer and training remember
what they saw, and each later check needs the earlier ones to have passed in this process, on
the same objects. So the namespaces here are built up in notebook order, through ``checks.run``,
as a notebook would. Building and checking the lab's chain (its networks must be [128, 128]) takes
seconds, so it is done once per module and saved as a :class:`Stage` (the namespace, what the
checks remembered, the networks' weights), which each test starts from. The checks' memory is
``checks.LEDGER``: the autouse fixture below resets it around every test, as a fresh kernel would,
and a Stage puts back exactly what the checks themselves recorded (``LEDGER.saved()``). Nothing
here changes what a check does.

A right answer for ``training`` needs a genuinely trained flow (held-out NLL within 0.5 nats of
the exact density): about 800 Adam steps of the lab's networks, some 25 s on a CPU. That case, and
the flow_samples cases that need the training check to have passed, are marked ``slow``; the full
lab's training is also covered by the slow notebook tests in tests/test_grading.py. Every wrong
answer to ``training`` is caught before its evaluation or on a short training, and runs fast.
"""

from __future__ import annotations

import contextlib
import io
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn import datasets

from flowlab.grader import check_registry, checks
from flowlab.grader.checks import CheckFailed
from flowlab.data import moons_log_prob
from flowlab.flows import SoftClampedLogScale

tfd, tfb = tfp.distributions, tfp.bijectors
N = checks.MOON_N
EPOCHS = checks.EPOCHS


@pytest.fixture(autouse=True)
def fresh_kernel():
    """No check has passed yet, as in a kernel just started (see the module docstring)."""
    checks.LEDGER.reset()
    yield
    checks.LEDGER.reset()


# --- building blocks --------------------------------------------------------------------------


def _zdist(loc=(0.0, 0.0), scale=None):
    return tfd.MultivariateNormalDiag(loc=list(loc), scale_diag=scale)


def _normal_points(n: int = N, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 2)) * scale + np.asarray(shift)


def _moons(n=N, noise: float = 0.05) -> np.ndarray:
    return datasets.make_moons(n, noise=noise, random_state=0)[0]


def _bijectors(scale=(1.0, 0.5), shift=(0.5, 0.25)) -> dict:
    scale_bij, shift_bij = tfb.Scale(list(scale)), tfb.Shift(list(shift))
    return {"scale_bij": scale_bij, "shift_bij": shift_bij, "b": shift_bij(scale_bij)}


def _td(bijector=None, base=None) -> tfd.TransformedDistribution:
    return tfd.TransformedDistribution(base or _zdist(), bijector=bijector or _bijectors()["b"])


def _chain(blocks: int = 3, hidden_units=(128, 128), activation="relu", params: int = 2,
           permutation=(1, 0), network=None, bound: float | None = None) -> tfb.Chain:
    """The lab's chain; ``bound``: each network wrapped in SoftClampedLogScale, as the lab's given code does."""
    layers = []
    for _ in range(blocks):
        made = network or tfb.AutoregressiveNetwork(params=params, hidden_units=list(hidden_units),
                                                    activation=activation)
        layers += [tfb.MaskedAutoregressiveFlow(made if bound is None else SoftClampedLogScale(made, bound)),
                   tfb.Permute(list(permutation))]
    return tfb.Chain(layers)


def _flow_namespace(base=None, **chain_options) -> dict:
    chain = _chain(**chain_options)
    return {"big_bijector": chain, "td": _td(chain, base)}


def _log_prob_model(td, sign: float = 1.0) -> tuple:
    x = tf.keras.Input(shape=(2,), dtype=tf.float32)
    return x, tf.keras.Model(x, sign * td.log_prob(x))


def _neg_loglik(y, log_prob):
    return -log_prob


def _compile(model, optimizer="adam", learning_rate: float = 1e-3, loss=_neg_loglik):
    optimizers = {"adam": tf.keras.optimizers.Adam, "sgd": tf.keras.optimizers.SGD}
    model.compile(optimizer=optimizers[optimizer](learning_rate), loss=loss)
    return model


def _passes(name: str, namespace: dict) -> None:
    """Run check ``name`` as a check cell does; it must pass with its one OK line."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        checks.run(name, namespace)
    assert out.getvalue().startswith("OK: ") and out.getvalue().count("\n") == 1, out.getvalue()


def _network_weights() -> list:
    """The weights of the networks the flow_chain check saw (it remembers them as `networks`)."""
    return [w for net in checks.LEDGER["networks"] for w in net.weights]


class Stage:
    """A notebook's state after its cells ran up to some check: the namespace, what the checks
    recorded, the networks' weights, and the td's `sample` as the training check left it."""

    def __init__(self, namespace: dict):
        self.namespace = dict(namespace)
        self.ledger = checks.LEDGER.saved()
        self.weights = [np.array(w) for w in _network_weights()]
        self.sample = vars(namespace["td"]).get("sample")

    def enter(self) -> dict:
        checks.LEDGER.restore(self.ledger)
        for variable, value in zip(_network_weights(), self.weights):
            variable.assign(value)
        td = self.namespace["td"]
        if self.sample is None:
            vars(td).pop("sample", None)
        else:
            td.sample = self.sample
        return dict(self.namespace)


@pytest.fixture(scope="module")
def chained() -> Stage:
    """The lab's chain and td, built and passed by the flow_chain check, and `x` and `model` built
    on td (the keras_model check not run yet). Building a model on these networks takes about a
    second, so tests share this one; each compiles it as it needs (recompiling starts afresh)."""
    checks.LEDGER.reset()
    tf.keras.utils.set_random_seed(1)
    namespace = {"zdist": _zdist(), **_flow_namespace(bound=3.0)}  # as the lab builds it (fitted: unbounded)
    namespace["td"] = _td(namespace["big_bijector"], namespace["zdist"])
    _passes("flow_chain", namespace)
    namespace["x"], namespace["model"] = _log_prob_model(namespace["td"])
    return Stage(namespace)


@pytest.fixture(scope="module")
def fitted() -> Stage:
    """Its own chain, passed by flow_chain, keras_model and loss_and_optimizer, then trained: 80
    epochs of 10 steps, enough to come within 0.5 nats of the exact density (about 25 s)."""
    checks.LEDGER.reset()
    tf.keras.utils.set_random_seed(2)
    namespace = _flow_namespace()
    _passes("flow_chain", namespace)
    namespace["x"], namespace["model"] = _log_prob_model(namespace["td"])
    _passes("keras_model", namespace)
    _compile(namespace["model"], learning_rate=5e-3)
    _passes("loss_and_optimizer", namespace)
    data = _moons().astype(np.float32)
    namespace["data"] = data
    namespace["result"] = namespace["model"].fit(data, np.zeros(N, np.float32), batch_size=1000,
                                                 epochs=EPOCHS, verbose=0)
    return Stage(namespace)


@pytest.fixture(scope="module")
def trained(fitted) -> Stage:
    """The fitted stage after its training check passed."""
    namespace = fitted.enter()
    _passes("training", namespace)
    return Stage(namespace)


class Lab:
    """Namespaces at the stages of the lab, built lazily (only the stages a test needs)."""

    def __init__(self, request):
        self._request = request

    def stage(self, name: str) -> dict:
        return self._request.getfixturevalue(name).enter()

    def with_model(self) -> dict:
        """Chain checked; `x` and `model` defined on its td (shared), keras_model not run yet."""
        return self.stage("chained")

    def with_new_model(self, sign: float = 1.0, model_class=tf.keras.Model) -> dict:
        """Chain checked; a new `x` and `model` of the class given, on ``sign`` * td.log_prob."""
        namespace = self.stage("chained")
        namespace["x"] = x = tf.keras.Input(shape=(2,), dtype=tf.float32)
        namespace["model"] = model_class(x, sign * namespace["td"].log_prob(x))
        return namespace

    def modelled(self) -> dict:
        """... and the keras_model check passed."""
        namespace = self.with_model()
        _passes("keras_model", namespace)
        return namespace

    def compiled(self, learning_rate: float = 1e-3) -> dict:
        """... and the model compiled with Adam and -log p, the loss_and_optimizer check passed."""
        namespace = self.modelled()
        _compile(namespace["model"], learning_rate=learning_rate)
        _passes("loss_and_optimizer", namespace)
        return namespace

    def fit(self, n: int, learning_rate: float) -> dict:
        """Compiled, then `result = model.fit(...)`: 80 epochs of one batch of ``n`` moons points."""
        namespace = self.compiled(learning_rate)
        data = _moons(n).astype(np.float32)
        namespace["result"] = namespace["model"].fit(data, np.zeros(n, np.float32), batch_size=n,
                                                     epochs=EPOCHS, verbose=0)
        return namespace

    def drawn(self) -> dict:
        """Trained, and `zsamples = td.sample(moon_n)` drawn from the trained td."""
        namespace = self.stage("trained")
        namespace["zsamples"] = namespace["td"].sample(N)
        return namespace


@pytest.fixture
def lab(request) -> Lab:
    return Lab(request)


class ExactMoons:
    """The true density as a model: a perfectly trained flow (issue 12: must not pass)."""

    def log_prob(self, x):
        return tf.constant(moons_log_prob(np.asarray(x)))


class NotebookModel(tf.keras.Model):
    """A Keras model class of the notebook's own."""


class NotebookHistory(tf.keras.callbacks.History):
    """A History class of the notebook's own."""


def _replaced(value, method: str):
    """``value`` with ``method`` replaced on the instance (by itself: what it does is not the point)."""
    setattr(value, method, getattr(value, method))
    return value


# --- namespaces with wrong answers that need a few lines -----------------------------------------


def needs_training(builder):
    """Marks a wrong answer whose namespace starts from the trained stage: slow."""
    builder.needs_training = True
    return builder


def _compiled_by_hand(namespace: dict, *args, **kwargs) -> dict:
    """``namespace`` with its model compiled (see _compile), no check run on that."""
    _compile(namespace["model"], *args, **kwargs)
    return namespace


def _chain_subclass() -> dict:
    class Chain(tfb.Chain):
        pass

    chain = Chain(_chain().bijectors)
    return {"big_bijector": chain, "td": _td(chain)}


def _network_replaced(method: str) -> dict:
    namespace = _flow_namespace()
    _replaced(namespace["big_bijector"].bijectors[0]._shift_and_log_scale_fn, method)
    return namespace


def _model_on_another_chain(lab: Lab) -> dict:
    namespace = lab.stage("chained")
    namespace["x"], namespace["model"] = _log_prob_model(_td(_chain(hidden_units=(4,))))
    return namespace


def _another_compiled_model(lab: Lab) -> dict:
    namespace = lab.modelled()
    _, namespace["model"] = _log_prob_model(namespace["td"])
    _compile(namespace["model"])
    return namespace


def _history_of_another_model(lab: Lab) -> dict:
    namespace = lab.compiled()
    _, other = _log_prob_model(_td(_chain(hidden_units=(4,))))
    namespace["result"] = tf.keras.callbacks.History()
    namespace["result"].set_model(other)  # what other.fit(...) would return
    return namespace


def _faked_history(lab: Lab, losses, steps: int = 1) -> dict:
    """A real History of `model`, filled in by hand instead of by model.fit."""
    namespace = lab.compiled()
    fake = tf.keras.callbacks.History()
    fake.set_model(namespace["model"])
    fake.history, fake.params, fake.epoch = {"loss": list(losses)}, {"steps": steps}, list(range(len(losses)))
    namespace["result"] = fake
    return namespace


def _schedule_for_other_batches(lab: Lab) -> dict:
    """Compiled on a learning-rate schedule planned for batches of 128 (79 steps an epoch), then a
    History of fit on Keras' default batches of 32 (313 steps an epoch) whose loss turned NaN."""
    namespace = lab.modelled()
    schedule = tf.keras.optimizers.schedules.CosineDecay(3e-3, EPOCHS * 79)
    namespace["model"].compile(optimizer=tf.keras.optimizers.Adam(schedule), loss=_neg_loglik)
    _passes("loss_and_optimizer", namespace)
    fake = tf.keras.callbacks.History()
    fake.set_model(namespace["model"])
    fake.history, fake.params = {"loss": [2.5] * (EPOCHS - 1) + [float("nan")]}, {"steps": 313}
    namespace.update(result=fake, batch_size=128)
    return namespace


def _steps_counted_but_weights_never_moved(lab: Lab) -> dict:
    """A History of `model` filled in by hand, and the optimizer's step count set to match it: all
    looks trained, but the networks' weights are where flow_chain saw them."""
    namespace = _faked_history(lab, np.linspace(2.5, 0.3, EPOCHS), steps=1)
    namespace["model"].optimizer.iterations.assign(EPOCHS)
    return namespace


@needs_training
def _untrained_td_drawn(lab: Lab) -> dict:
    """The trained td, its networks put back to the weights they had before training, then drawn."""
    namespace = lab.stage("trained")
    for variable, value in zip(_network_weights(), checks.LEDGER["initial_weights"]):
        variable.assign(value)
    namespace["zsamples"] = namespace["td"].sample(N)
    return namespace  # the Stage puts the trained weights back for the next test


# --- the exercises where the student decides or writes a bijector --------------------------------

VERDICTS = {"cos on [0, pi]": True, "cos on [0, 2pi]": False, "x**2 on the reals": False,
            "x**3 on the reals": True, "x**3 - x on the reals": False, "sum of x1 and x2": False,
            "matrix [[2, 1], [1, 1]]": True, "matrix [[1, 2], [2, 4]]": False}


def _verdicts(**changes) -> dict:
    """The right verdicts, with some entries changed (``name=value``, spaces etc. spelled out below)."""
    return {"verdicts": {**VERDICTS, **changes}}


X_CHECK = np.array([[0.5, 0.25], [1.5, 0.75], [-1.0, 2.0], [3.0, -1.0]], dtype=np.float32)


def _by_hand(log_det: str = "inverse", sign: float = 1.0, direction: str = "inverse") -> dict:
    """The change-of-variables formula on X_CHECK, done by hand with the lab's b, as the TODO asks."""
    b, zdist = _bijectors()["b"], _zdist()
    log_det_g = getattr(b, f"{log_det}_log_det_jacobian")(X_CHECK, event_ndims=1)
    by_hand = zdist.log_prob(getattr(b, direction)(X_CHECK)) + sign * log_det_g
    return {"x_check": tf.constant(X_CHECK), "log_det_g": log_det_g, "by_hand": by_hand}


def _log_cosh(x):
    return tf.math.log(tf.cosh(x))


def _sinh_ildj(y):
    return -0.5 * tf.math.log1p(tf.square(y))


class HandSinh(tfb.Bijector):
    """A notebook's own element-wise bijector; each piece can be swapped for a wrong one."""

    def __init__(self, forward=tf.sinh, inverse=tf.asinh, fldj=_log_cosh, ildj=_sinh_ildj):
        super().__init__(forward_min_event_ndims=0, name="hand_sinh")
        self.pieces = (forward, inverse, fldj, ildj)

    def _forward(self, x):
        return self.pieces[0](x)

    def _inverse(self, y):
        return self.pieces[1](y)

    def _forward_log_det_jacobian(self, x):
        return self.pieces[2](x)

    def _inverse_log_det_jacobian(self, y):
        return self.pieces[3](y)


class NoInverse(tfb.Bijector):
    def __init__(self):
        super().__init__(forward_min_event_ndims=0, name="no_inverse")

    def _forward(self, x):
        return tf.sinh(x)

    def _forward_log_det_jacobian(self, x):
        return _log_cosh(x)


class SinhOfTfp(tfb.Sinh):
    """TFP's own sinh, renamed: not written by hand."""


def _hand_chain(order: str = "right", base=None, inner=None) -> dict:
    """``my_sinh`` passed by the hand_bijector check, then ``sinh_chain`` and ``sinh_td`` built on it."""
    my_sinh = HandSinh()
    _passes("hand_bijector", {"my_sinh": my_sinh})
    steps = [tfb.Shift(1.0), tfb.Scale(0.5), inner or my_sinh]
    chain = tfb.Chain(steps if order == "right" else steps[::-1])
    return {"my_sinh": my_sinh, "sinh_chain": chain,
            "sinh_td": tfd.TransformedDistribution(base or tfd.Normal(0.0, 1.0), bijector=chain)}


Z_POINTS = [[0.3, -0.2], [1.0, 0.5], [-0.7, 0.8]]


def _maf_jacobians(lab: Lab, direction: str = "forward", full: bool = False, transpose: bool = False,
                   log: bool = True) -> dict:
    """The chained stage, and the first MAF's Jacobians at Z_POINTS computed as the TODO asks (or not)."""
    namespace = lab.stage("chained")
    maf = namespace["big_bijector"].bijectors[0]
    z_points = tf.constant(Z_POINTS)  # a new tensor: TFP caches forward and inverse by tensor
    with tf.GradientTape() as tape:
        tape.watch(z_points)
        x_points = getattr(maf, direction)(z_points)
    jacobians = tape.jacobian(x_points, z_points) if full else tape.batch_jacobian(x_points, z_points)
    if transpose:
        jacobians = tf.transpose(jacobians, [0, 2, 1])
    det = np.linalg.det(jacobians.numpy()) if not full else np.ones(3)
    namespace.update(z_points=z_points, jacobians=jacobians,
                     log_det_autodiff=np.log(np.abs(det)) if log else det)
    return namespace


# check -> a namespace holding a right answer (built in notebook order, the earlier checks passed)
RIGHT = {
    "bijection_verdicts": lambda lab: _verdicts(),
    "moons_data": lambda lab: {"data": _moons()},
    "base_distribution": lambda lab: {"zdist": _zdist()},
    "base_samples": lambda lab: {"zsamples": _normal_points()},
    "bijectors": lambda lab: _bijectors(),
    "transformed_distribution": lambda lab: {"td": _td(), "zsamples": _normal_points(scale=np.array([1.0, 0.5]),
                                                                                     shift=(0.5, 0.25))},
    "formula_by_hand": lambda lab: _by_hand(),
    "hand_bijector": lambda lab: {"my_sinh": HandSinh()},
    "hand_chain": lambda lab: _hand_chain(),
    "flow_chain": lambda lab: lab.stage("chained"),  # re-running a passed check cell passes again
    "maf_jacobian": lambda lab: _maf_jacobians(lab),
    "keras_model": lambda lab: lab.with_model(),
    "loss_and_optimizer": lambda lab: _compiled_by_hand(lab.modelled()),
    "training": lambda lab: lab.stage("fitted"),
    "flow_samples": lambda lab: lab.drawn(),
}
NEEDS_TRAINING = {"training", "flow_samples"}


def test_every_check_has_a_right_answer_here():
    assert set(RIGHT) == set(checks.CHECKS)


@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.slow] if name in NEEDS_TRAINING else [])
                                  for name in RIGHT])
def test_right_answer_passes_with_one_ok_line(name, lab, capsys):
    namespace = RIGHT[name](lab)
    capsys.readouterr()
    checks.run(name, namespace)
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and out.count("\n") == 1, out


def test_the_printing_table_prints_the_same_line_as_run(capsys):
    checks.CHECKS["bijectors"](_bijectors())
    checks.run("bijectors", _bijectors())
    first, second = capsys.readouterr().out.splitlines()
    assert first == second and first.startswith("OK: b = shift(scale(z))")


def _went_from(namespace: dict) -> str:
    losses = namespace["result"].history["loss"]
    return f"the loss went from {losses[0]:.2f} to {losses[-1]:.2f}; training should lower it by well over 0.5"


# (check, the namespace holding a wrong answer instead of the right one, words the failure must contain:
# a string, or a function of the namespace for messages that quote what the namespace holds)
WRONG = [
    # bijection_verdicts
    ("bijection_verdicts", lambda lab: {}, "`verdicts` not defined. Hint: answer the TODO"),
    ("bijection_verdicts", lambda lab: {"verdicts": [True, False]}, "`verdicts` should be a dict"),
    ("bijection_verdicts", lambda lab: {"verdicts": {k: v for k, v in VERDICTS.items() if "sum" not in k}},
     "no verdict for 'sum of x1 and x2'"),
    ("bijection_verdicts", lambda lab: {"verdicts": {**VERDICTS, "tanh": True}}, "entries for 'tanh'"),
    ("bijection_verdicts", lambda lab: {"verdicts": {**VERDICTS, "cos on [0, pi]": "yes"}},
     "verdicts['cos on [0, pi]'] is 'yes'; give True"),
    ("bijection_verdicts", lambda lab: {"verdicts": {**VERDICTS, "cos on [0, 2pi]": True}},
     "1 of 8 verdicts are wrong. cos on [0, 2pi] (y = cos x on [0, 2 pi]): you said a bijection, but f turns back"),
    ("bijection_verdicts", lambda lab: {"verdicts": {**VERDICTS, "matrix [[1, 2], [2, 4]]": True,
                                                     "x**3 on the reals": False}},
     "2 of 8 verdicts are wrong"),
    ("bijection_verdicts", lambda lab: {"verdicts": {**VERDICTS, "matrix [[1, 2], [2, 4]]": True}},
     "its Jacobian is singular everywhere"),
    ("bijection_verdicts", lambda lab: {"verdicts": {**VERDICTS, "sum of x1 and x2": True}},
     "f takes 2 numbers to 1"),
    # formula_by_hand
    ("formula_by_hand", lambda lab: {"x_check": X_CHECK}, "`log_det_g`, `by_hand` not defined"),
    ("formula_by_hand", lambda lab: _by_hand(log_det="forward"), "that is log|det J_f|, the forward map's"),
    ("formula_by_hand", lambda lab: {**_by_hand(), "by_hand": _zdist().log_prob(_bijectors()["b"].inverse(X_CHECK))},
     "the log-det term is missing"),
    ("formula_by_hand", lambda lab: _by_hand(sign=-1.0), "`by_hand` subtracts log|det J_g|"),
    ("formula_by_hand", lambda lab: _by_hand(direction="forward"), "scores f(x), the forward map"),
    ("formula_by_hand", lambda lab: {**_by_hand(), "log_det_g": np.zeros(3)}, "`log_det_g` has shape (3,)"),
    # hand_bijector
    ("hand_bijector", lambda lab: {}, "`my_sinh` not defined"),
    ("hand_bijector", lambda lab: {"my_sinh": np.sinh}, "should be an instance of your tfb.Bijector subclass"),
    ("hand_bijector", lambda lab: {"my_sinh": tfb.Sinh()}, "`my_sinh` is built on TFP's Sinh"),
    ("hand_bijector", lambda lab: {"my_sinh": SinhOfTfp()}, "`my_sinh` is built on TFP's Sinh"),
    ("hand_bijector", lambda lab: {"my_sinh": NoInverse()}, "your class does not define _inverse"),
    ("hand_bijector", lambda lab: {"my_sinh": HandSinh(forward=tf.tanh)}, "my_sinh.forward maps"),
    ("hand_bijector", lambda lab: {"my_sinh": HandSinh(inverse=tf.sinh)}, "the round trip fails"),
    ("hand_bijector", lambda lab: {"my_sinh": HandSinh(fldj=tf.cosh)},
     "but log|dy/dx| by GradientTape is"),
    ("hand_bijector", lambda lab: {"my_sinh": HandSinh(ildj=lambda y: -_sinh_ildj(y))},
     "but log|dx/dy| by GradientTape is"),
    ("hand_bijector", lambda lab: {"my_sinh": HandSinh(fldj=lambda x: tf.constant([1.0, 2.0]))},
     "my_sinh.forward_log_det_jacobian maps 13 numbers to shape (2,)"),
    ("hand_bijector", lambda lab: {"my_sinh": HandSinh(inverse=lambda y: tf.reshape(y, [5, -1]))},
     "my_sinh.inverse failed: InvalidArgumentError"),
    # hand_chain
    ("hand_chain", lambda lab: {"my_sinh": HandSinh()}, "`sinh_chain`, `sinh_td` not defined"),
    ("hand_chain", lambda lab: {"my_sinh": HandSinh(), "sinh_chain": None, "sinh_td": None},
     "the `hand_bijector` check has not passed"),
    ("hand_chain", lambda lab: {**_hand_chain(), "my_sinh": HandSinh()},
     "`my_sinh` is not the bijector the hand_bijector check saw"),
    ("hand_chain", lambda lab: {**_hand_chain(), "sinh_chain": tfb.Shift(1.0)}, "`sinh_chain` should be a tfb.Chain"),
    ("hand_chain", lambda lab: _hand_chain(inner=tfb.Sinh()), "does not contain your my_sinh"),
    ("hand_chain", lambda lab: _hand_chain(order="reversed"), "sinh_chain applies sinh last"),
    ("hand_chain", lambda lab: (lambda ns: {**ns, "sinh_chain": tfb.Chain([tfb.Shift(2.0), ns["my_sinh"]])})(
        _hand_chain()), "x = 0.5 sinh(z) + 1 gives"),
    ("hand_chain", lambda lab: {**_hand_chain(), "sinh_td": tfd.Normal(0.0, 1.0)},
     "`sinh_td` should be a tfd.TransformedDistribution"),
    ("hand_chain", lambda lab: _hand_chain(base=tfd.Cauchy(0.0, 1.0)), "sinh_td's density integrates to 0.898, not 1"),
    ("hand_chain", lambda lab: _hand_chain(base=tfd.Normal(0.0, 2.0)), "integrates to one but is not N(0, 1)"),
    # maf_jacobian
    ("maf_jacobian", lambda lab: {}, "`jacobians`, `z_points`, `log_det_autodiff` not defined"),
    ("maf_jacobian", lambda lab: (lambda ns: (checks.LEDGER.reset(), ns)[1])(_maf_jacobians(lab)),
     "the `flow_chain` check has not passed"),
    ("maf_jacobian", lambda lab: _maf_jacobians(lab, full=True), "tape.batch_jacobian gives one 2 x 2"),
    ("maf_jacobian", lambda lab: {**_maf_jacobians(lab), "jacobians": np.zeros((3, 4))},
     "`jacobians` has shape (3, 4)"),
    ("maf_jacobian", lambda lab: _maf_jacobians(lab, direction="inverse"), "the Jacobians of maf.inverse"),
    ("maf_jacobian", lambda lab: _maf_jacobians(lab, transpose=True), "`jacobians` is transposed"),
    ("maf_jacobian", lambda lab: {**_maf_jacobians(lab), "jacobians": tf.eye(2, batch_shape=[3])},
     "are not the Jacobians of the first MAF layer's forward map"),
    ("maf_jacobian", lambda lab: _maf_jacobians(lab, log=False), "is det J itself"),
    ("maf_jacobian", lambda lab: {**_maf_jacobians(lab), "log_det_autodiff": np.ones(3)},
     "`log_det_autodiff` is [1.0, 1.0, 1.0]"),
    # a name that was never defined
    ("moons_data", lambda lab: {}, "`data` not defined. Hint: answer the TODO"),
    ("bijectors", lambda lab: {"b": 1}, "`shift_bij`, `scale_bij` not defined"),
    ("keras_model", lambda lab: {"td": _td()}, "`x`, `model` not defined"),
    ("loss_and_optimizer", lambda lab: {}, "`model` not defined"),
    ("training", lambda lab: {"td": ExactMoons()}, "`result`, `model` not defined"),
    ("flow_samples", lambda lab: {"zsamples": _moons()}, "`td` not defined"),
    # moons_data
    ("moons_data", lambda lab: {"data": "ten thousand points"}, "`data` should be an array of points, got str"),
    ("moons_data", lambda lab: {"data": _moons(100)}, "`data` has shape (100, 2); expected (10000, 2)"),
    ("moons_data", lambda lab: {"data": np.where(np.arange(N)[:, None] == 5, np.nan, _moons())},
     "`data` contains NaN or infinite values"),
    ("moons_data", lambda lab: {"data": datasets.make_circles(N, noise=0.05, random_state=0)[0]},
     "does not lie along two interleaved half circles"),
    ("moons_data", lambda lab: {"data": _moons((7000, 3000))}, "70% of the points are on the upper moon"),
    ("moons_data", lambda lab: {"data": _moons(noise=0.1)}, "Hint: pass noise=0.05 to make_moons"),
    # base_distribution
    ("base_distribution", lambda lab: {"zdist": np.zeros(2)}, "`zdist` should be a TFP distribution, got ndarray"),
    ("base_distribution", lambda lab: {"zdist": _zdist(loc=(0.0,))}, "`zdist` has event shape [1]"),
    ("base_distribution", lambda lab: {"zdist": tfd.MultivariateNormalDiag(loc=[[0.0, 0.0]] * 3)},
     "`zdist` has batch shape [3]; expected []"),
    ("base_distribution", lambda lab: {"zdist": _zdist(loc=(1.0, 0.0))}, "`zdist` is not the standard normal"),
    # base_samples
    ("base_samples", lambda lab: {"zsamples": _normal_points(5)}, "`zsamples` has shape (5, 2)"),
    ("base_samples", lambda lab: {"zsamples": _normal_points(scale=2.0)},
     "samples of N(0, I) have mean 0 and identity"),
    ("base_samples", lambda lab: {"zsamples": _normal_points(shift=(0.5, 0.0))}, "`zsamples` has mean [0.5"),
    # bijectors
    ("bijectors", lambda lab: {**_bijectors(), "scale_bij": [1.0, 0.5]},
     "`scale_bij` should be a TFP bijector, got list"),
    ("bijectors", lambda lab: _bijectors(scale=(0.5, 1.0)), "scaling by [1, 0.5] gives [1.0, 0.5]"),
    ("bijectors", lambda lab: _bijectors(shift=(0.25, 0.5)), "shifting by [0.5, 0.25] gives [0.5, 0.25]"),
    ("bijectors", lambda lab: {**_bijectors(), "b": tfb.Scale([1.0, 0.5])(tfb.Shift([0.5, 0.25]))},
     "b shifts first and then scales"),
    ("bijectors", lambda lab: {**_bijectors(), "b": tfb.Shift([0.5, 0.25])}, "scale-then-shift gives [1.5, 0.75]"),
    # right at (1, 1), but a pure shift: no volume change
    ("bijectors", lambda lab: {**_bijectors(), "b": tfb.Shift([0.5, -0.25])},
     "b's log-det is 0.0000; expected log 0.5"),
    # transformed_distribution
    ("transformed_distribution", lambda lab: {"td": _zdist(), "zsamples": _normal_points()},
     "`td` should be a tfd.TransformedDistribution, got MultivariateNormalDiag"),
    ("transformed_distribution", lambda lab: {"td": _td(tfb.Scale([1.0, 0.5])), "zsamples": _normal_points()},
     "td.log_prob does not match N(0, I) pushed through scale [1, 0.5] then shift"),
    ("transformed_distribution", lambda lab: {"td": _td(), "zsamples": _normal_points(7)},
     "`zsamples` has shape (7, 2)"),
    ("transformed_distribution", lambda lab: {"td": _td(), "zsamples": _normal_points()},
     "samples of td have mean [0.5, 0.25] and std [1.0, 0.5]"),
    # flow_chain
    ("flow_chain", lambda lab: {"big_bijector": _chain().bijectors[0], "td": _td()},
     "`big_bijector` should be a tfb.Chain, got MaskedAutoregressiveFlow"),
    ("flow_chain", lambda lab: _chain_subclass(), "`big_bijector` is a Chain defined in"),
    ("flow_chain", lambda lab: {**_flow_namespace(), "big_bijector": _replaced(_chain(), "forward")},
     "`big_bijector` has its own forward: methods replaced on the object are not the library's"),
    ("flow_chain", lambda lab: _flow_namespace(blocks=2), "the lab asks for 3 x [MaskedAutoregressiveFlow, Permute]"),
    ("flow_chain", lambda lab: (lambda ns: (_replaced(ns["big_bijector"].bijectors[2], "inverse"), ns)[1])(
        _flow_namespace()), "`MAF 2` has its own inverse"),
    ("flow_chain", lambda lab: _flow_namespace(network=lambda x: (x, x)),
     "MAF 1 is not driven by a tfb.AutoregressiveNetwork"),
    ("flow_chain", lambda lab: _network_replaced("call"), "`MAF 1's network` has its own call"),
    ("flow_chain", lambda lab: _flow_namespace(hidden_units=(64, 64)), "MAF 1's network has hidden units [64, 64]"),
    ("flow_chain", lambda lab: _flow_namespace(activation="tanh"), "uses activation 'tanh'; the lab asks for relu"),
    ("flow_chain", lambda lab: _flow_namespace(params=1), "MAF 1's network has params=1"),
    ("flow_chain", lambda lab: _flow_namespace(permutation=(0, 1)), "Permute 1 maps (1, 2) to [1.0, 2.0]"),
    ("flow_chain", lambda lab: {"big_bijector": _chain(), "td": _td(_chain())},
     "`td` should be the TransformedDistribution of zdist through big_bijector"),
    ("flow_chain", lambda lab: {"big_bijector": _chain(), "td": _zdist()},
     "`td` should be the TransformedDistribution of zdist through big_bijector"),
    ("flow_chain", lambda lab: (lambda ns: {**ns, "td": _replaced(ns["td"], "log_prob")})(_flow_namespace()),
     "`td` has its own log_prob"),
    # a base far wider than N(0, I): most of the mass lies outside the grid the check integrates over
    ("flow_chain", lambda lab: _flow_namespace(base=_zdist(scale=[20.0, 20.0])), "td's density integrates to 0."),
    # keras_model
    ("keras_model", lambda lab: {**lab.with_model(), "x": tf.keras.Input(shape=(3,))},
     "`x` has shape (None, 3); expected (None, 2)"),
    ("keras_model", lambda lab: {**lab.with_model(), "x": tf.keras.Input(shape=(2,), dtype=tf.float64)},
     "`x` has dtype float64; the flow computes in float32"),
    ("keras_model", lambda lab: (lambda ns: {**ns, "model": ns["td"].log_prob})(lab.with_model()),
     "`model` should be a tf.keras.Model, got method"),
    ("keras_model", lambda lab: lab.with_new_model(model_class=NotebookModel), "`model` is a NotebookModel defined in"),
    ("keras_model", lambda lab: (lambda ns: {**ns, "model": _replaced(ns["model"], "predict")})(lab.with_new_model()),
     "`model` has its own predict"),
    # no flow_chain check in this kernel (no stage entered: the ledger is empty)
    ("keras_model", lambda lab: (lambda td: {"td": td, **dict(zip(("x", "model"), _log_prob_model(td)))})(_td()),
     "the `flow_chain` check has not passed in this kernel"),
    # the model and td of another chain than the one flow_chain checked
    ("keras_model", lambda lab: (lambda td: {**lab.stage("chained"), "td": td,
                                             **dict(zip(("x", "model"), _log_prob_model(td)))})(
        _td(_chain(hidden_units=(4,)))),
     "`td` is not the distribution the flow_chain check saw"),
    ("keras_model", _model_on_another_chain, "the model's trainable weights are not the flow chain's networks"),
    ("keras_model", lambda lab: lab.with_new_model(sign=-1.0), "model(points) is not td.log_prob(points)"),
    # loss_and_optimizer
    ("loss_and_optimizer", lambda lab: _compiled_by_hand(lab.with_model()),
     "the `keras_model` check has not passed in this kernel"),
    ("loss_and_optimizer", _another_compiled_model, "`model` is not the model the keras_model check saw"),
    ("loss_and_optimizer", lambda lab: (lambda ns: (_passes("keras_model", ns), ns)[1])(lab.with_new_model()),
     "`model` is not compiled"),
    ("loss_and_optimizer", lambda lab: _compiled_by_hand(lab.modelled(), "sgd"),
     "the optimizer is SGD; the lab trains with Adam"),
    ("loss_and_optimizer", lambda lab: _compiled_by_hand(lab.modelled(), loss="mse"),
     "the loss should be the function neg_loglik, got 'mse'"),
    ("loss_and_optimizer", lambda lab: _compiled_by_hand(lab.modelled(), loss=lambda y, log_prob: log_prob),
     "maps log p = [-1.0, 0.5] to [-1.0, 0.5]; the negative log-likelihood is -log p"),
    # training (its right answer is slow: see the module docstring)
    ("training", lambda lab: {"result": None, "td": _td(), "model": None},
     "the `flow_chain` check has not passed in this kernel"),
    ("training", lambda lab: {**lab.with_model(), "result": None}, "the `keras_model` check has not passed"),
    # issue 12: the exact density swapped in for td must not pass
    ("training", lambda lab: {**lab.compiled(), "td": ExactMoons(), "result": None},
     "`td` is not the distribution the flow_chain check saw"),
    ("training", lambda lab: (lambda ns: {**ns, "model": _compile(_log_prob_model(ns["td"])[1]), "result": None})(
        lab.compiled()), "`model` is not the model the keras_model check saw"),
    # issue 12: a SimpleNamespace posing as the History must not pass
    ("training", lambda lab: {**lab.compiled(), "result": SimpleNamespace(
        history={"loss": list(np.linspace(2.5, 0.3, EPOCHS))})},
     "`result` should be the History that model.fit returns, got SimpleNamespace"),
    ("training", lambda lab: {**lab.compiled(), "result": NotebookHistory()},
     "`result` is a NotebookHistory defined in"),
    ("training", _history_of_another_model, "`result` is not the History of training `model`"),
    # Histories of `model` filled in by hand, each as its branch needs (a real fit takes seconds)
    ("training", lambda lab: _faked_history(lab, np.linspace(2.5, 0.3, 3)),
     f"training ran 3 epochs; the lab asks for {EPOCHS}"),
    ("training", lambda lab: _faked_history(lab, [2.5] * (EPOCHS - 1) + [float("nan")]),
     "the training loss became NaN or infinite"),
    ("training", lambda lab: _faked_history(lab, [2.5] * (EPOCHS - 10) + [float("inf")] * 10),
     "the training loss became NaN or infinite"),
    ("training", lambda lab: _faked_history(lab, np.linspace(2.5, 2.1, EPOCHS)), _went_from),
    # the sheet's default batches with the notebook's schedule: the failure says why
    ("training", _schedule_for_other_batches, "fit ran 313 steps per epoch (batches of about 31), but the "
     "learning-rate schedule was built for batches of 128 (79 steps per epoch)"),
    # the optimizer never stepped
    ("training", lambda lab: _faked_history(lab, np.linspace(2.5, 0.3, EPOCHS), steps=79),
     f"the optimizer took 0 steps, fewer than the {EPOCHS} epochs of 79 steps that `result` reports"),
    ("training", _steps_counted_but_weights_never_moved, "the flow chain's weights did not change"),
    # a real fit, 80 steps on 256 points: the loss falls, but the flow is far from trained
    ("training", lambda lab: lab.fit(n=256, learning_rate=5e-3),
     f"above the exact density's; a trained flow gets within {checks.MAX_KL}"),
    # flow_samples
    ("flow_samples", lambda lab: {"zsamples": _moons(50), "td": _td()}, "`zsamples` has shape (50, 2)"),
    ("flow_samples", lambda lab: {"zsamples": np.full((N, 2), np.inf), "td": _td()},
     "`zsamples` contains NaN or infinite values"),
    # issue 12: the data posing as samples must not pass (here: no flow was ever trained)
    ("flow_samples", lambda lab: {**lab.stage("chained"), "zsamples": _moons()},
     "the `training` check has not passed in this kernel"),
    ("flow_samples", needs_training(lambda lab: {**lab.stage("trained"), "zsamples": _moons(),
                                                 "td": _td(_chain())}),
     "`td` is not the flow the training check saw"),
    # issue 12: the data posing as samples of the trained flow must not pass
    ("flow_samples", needs_training(lambda lab: {**lab.stage("trained"), "zsamples": _moons()}),
     "`zsamples` is not a draw of the trained td"),
    ("flow_samples", needs_training(lambda lab: {**lab.stage("trained"), "zsamples": _zdist().sample(N)}),
     "`zsamples` is not a draw of the trained td"),
    # a draw of the trained td object after its training was undone
    ("flow_samples", _untrained_td_drawn, "of `zsamples` lie near the moons; samples of the trained flow mostly do"),
]


def _slow_if_trained(builder) -> list:
    return [pytest.mark.slow] if getattr(builder, "needs_training", False) else []


def test_every_check_has_wrong_answers_here():
    assert {name for name, _, _ in WRONG} == set(checks.CHECKS)


@pytest.mark.parametrize("name, namespace, needle", [
    pytest.param(name, namespace, needle, id=f"{name}-{i}", marks=_slow_if_trained(namespace))
    for i, (name, namespace, needle) in enumerate(WRONG)])
def test_wrong_answer_fails_saying_what_is_wrong(name, namespace, needle, lab, capsys):
    namespace = namespace(lab)
    capsys.readouterr()  # what building the namespace printed, if anything
    with pytest.raises(CheckFailed) as failure:
        checks.run(name, namespace)
    assert (needle(namespace) if callable(needle) else needle) in str(failure.value)
    assert capsys.readouterr().out == ""  # no OK line printed


def test_rerunning_flow_chain_forgets_the_model_it_had_seen(lab):
    """A notebook that re-runs its chain's check cell must check (and compile) its model again."""
    namespace = lab.compiled()
    _passes("flow_chain", namespace)
    with pytest.raises(CheckFailed, match="the `keras_model` check has not passed in this kernel"):
        checks.run("loss_and_optimizer", namespace)


# --- the registry and the stand-ins -----------------------------------------------------------


def test_flow_chain_reads_the_network_through_the_labs_log_scale_bound():
    namespace = _flow_namespace(hidden_units=(64, 64), bound=3.0)
    with pytest.raises(CheckFailed, match=r"MAF 1's network has hidden units \[64, 64\]; the lab asks for \[128, 128\]"):
        checks.run("flow_chain", namespace)


def test_the_training_check_says_where_the_flow_stands_on_stderr(fitted, capsys):
    checks.run("training", fitted.enter())
    captured = capsys.readouterr()
    assert captured.out.startswith("OK: trained 80 epochs")
    assert captured.err.startswith("Where your flow stands: KL 0.") and "this notebook's recipe reached" in captured.err


def test_the_lab_notebook_tags_every_registered_check_with_its_points():
    import nbformat

    from flowlab.grader.student import check_name

    solution = nbformat.read("notebooks/normalizing_flows.ipynb", as_version=4)
    tagged = {check_name(cell): cell.metadata["flowlab"]["points"] for cell in solution.cells if check_name(cell)}
    assert tagged == {name: check.points for name, check in checks.REGISTRY.items()}


def test_a_check_registers_only_after_the_checks_it_builds_on():
    with pytest.raises(ValueError, match="after must name checks registered before it, got \\['later'\\]"):
        check_registry.lab_check(points=1, uses=(), after=("later",))(lambda namespace: "line")


def test_a_failed_answer_is_stood_in_for_and_the_next_check_says_it_judged_the_stand_in(capsys):
    namespace = {"zdist": _zdist(loc=(1.0, 0.0))}
    with pytest.raises(CheckFailed):
        checks.run("base_distribution", namespace)
    checks.stand_in("base_distribution", namespace)
    assert "the reference's `zdist` stand in for yours" in capsys.readouterr().err
    namespace["zsamples"] = namespace["zdist"].sample(N, seed=3).numpy()  # the student's next answer
    checks.run("base_samples", namespace)
    captured = capsys.readouterr()
    assert captured.out.startswith("OK: zsamples")
    assert captured.err.strip() == "flowlab: judged with the reference's `zdist` (yours failed base_distribution)"


def test_no_stand_in_after_a_pass_or_for_a_check_nothing_builds_on(capsys):
    namespace = {"zdist": _zdist()}
    _passes("base_distribution", namespace)
    mine = namespace["zdist"]
    checks.stand_in("base_distribution", namespace)
    checks.stand_in("base_samples", {})  # failed or not: no later check builds on zsamples
    assert namespace["zdist"] is mine and capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="name must be one of"):
        checks.stand_in("nope", namespace)


def test_a_stand_in_chain_lets_the_students_own_model_pass(capsys):
    """flow_chain fails (wrong hidden units); the reference's chain stands in, and the model the
    student builds next on `td` passes keras_model, saying it was judged with the stand-in."""
    namespace = _flow_namespace(hidden_units=(64, 64))
    with pytest.raises(CheckFailed, match="hidden units \\[64, 64\\]"):
        checks.run("flow_chain", namespace)
    checks.stand_in("flow_chain", namespace)
    assert namespace["td"].bijector is namespace["big_bijector"]
    namespace["x"], namespace["model"] = _log_prob_model(namespace["td"])
    capsys.readouterr()
    checks.run("keras_model", namespace)
    assert "judged with the reference's `big_bijector`, `td` (yours failed flow_chain)" in capsys.readouterr().err


def test_a_stand_in_that_needs_a_missing_earlier_answer_does_nothing(capsys):
    namespace: dict = {}
    with pytest.raises(CheckFailed):
        checks.run("keras_model", namespace)
    checks.stand_in("keras_model", namespace)  # no chain has passed or stood in: nothing to build on
    assert namespace == {} and capsys.readouterr().err == ""


# --- issue 34: every correct sinh chain passes; out-of-order runs and common mistakes say what to do -------


def _passed_sinh() -> HandSinh:
    my_sinh = HandSinh()
    _passes("hand_bijector", {"my_sinh": my_sinh})
    return my_sinh


#: Every way TFP offers to build x = 0.5 sinh(z) + 1 from my_sinh (the notebook teaches the list and,
#: for `b`, composition by calling one bijector on another, which nests chains).
SINH_CHAINS = {
    "list": lambda s: tfb.Chain([tfb.Shift(1.0), tfb.Scale(0.5), s]),
    "keywords": lambda s: tfb.Chain(bijectors=[tfb.Shift(shift=1.0), tfb.Scale(scale=0.5), s], name="sinh_chain"),
    "composition": lambda s: tfb.Shift(1.0)(tfb.Scale(0.5)(s)),
    "composition, outer first": lambda s: tfb.Shift(1.0)(tfb.Scale(0.5))(s),
    "chain called on my_sinh": lambda s: tfb.Chain([tfb.Shift(1.0), tfb.Scale(0.5)])(s),
    "composition in a list": lambda s: tfb.Chain([tfb.Shift(1.0)(tfb.Scale(0.5)), s]),
    "nested chains": lambda s: tfb.Chain([tfb.Chain([tfb.Shift(1.0)]), tfb.Chain([tfb.Scale(0.5), s])]),
    "chain of chains of one": lambda s: tfb.Chain([tfb.Chain([tfb.Shift(1.0), tfb.Scale(0.5)]), tfb.Chain([s])]),
    "log-scale and an identity": lambda s: tfb.Chain([tfb.Shift(tf.constant(1.0)), tfb.Scale(log_scale=float(np.log(0.5))),
                                                      tfb.Identity(), s]),
}


@pytest.mark.parametrize("construction", list(SINH_CHAINS))
@pytest.mark.parametrize("distribution", ["TransformedDistribution", "bijector called on the normal"])
def test_hand_chain_accepts_every_construction_of_the_chain(construction, distribution, capsys):
    my_sinh = _passed_sinh()
    chain = SINH_CHAINS[construction](my_sinh)
    sinh_td = (tfd.TransformedDistribution(tfd.Normal(0.0, 1.0), bijector=chain)
               if distribution == "TransformedDistribution" else chain(tfd.Normal(0.0, 1.0)))
    capsys.readouterr()
    checks.run("hand_chain", {"my_sinh": my_sinh, "sinh_chain": chain, "sinh_td": sinh_td})
    assert capsys.readouterr().out.startswith("OK: sinh_chain: x = 0.5 sinh(z) + 1 with my_sinh")


@pytest.mark.parametrize("without", [
    lambda s: tfb.Shift(1.0)(tfb.Scale(0.5)(tfb.Sinh())),  # right values, TFP's sinh
    lambda s: tfb.Chain([tfb.Chain([tfb.Shift(1.0), tfb.Scale(0.5)]), tfb.Chain([HandSinh()])]),  # another instance
])
def test_hand_chain_rejects_a_chain_without_my_sinh_however_nested(without):
    my_sinh = _passed_sinh()
    chain = without(my_sinh)
    namespace = {"my_sinh": my_sinh, "sinh_chain": chain,
                 "sinh_td": tfd.TransformedDistribution(tfd.Normal(0.0, 1.0), bijector=chain)}
    with pytest.raises(CheckFailed, match="`sinh_chain` does not contain your my_sinh"):
        checks.run("hand_chain", namespace)


def test_every_check_names_the_cell_of_its_answer():
    assert set(checks.ANSWER_CELLS) == set(checks.REGISTRY)


def _chain_cell_rerun(namespace: dict) -> dict:
    """The chain cell run again after its check: a new big_bijector and td in the namespace."""
    return {**namespace, **_flow_namespace()}


def _keras_cell_rerun(namespace: dict) -> dict:
    """The Keras cell run again after the keras_model check: a new x and model, compiled."""
    x, model = _log_prob_model(namespace["td"])
    return {**namespace, "x": x, "model": _compile(model)}


# (check, the namespace after a cell ran again without its check, the check whose cell must run again, what
# the message says happened)
OUT_OF_ORDER = [
    ("hand_chain", lambda lab: {**_hand_chain(), "my_sinh": HandSinh()}, "hand_bijector",
     "the `class MySinh` cell ran again after that check"),
    ("maf_jacobian", lambda lab: {**_maf_jacobians(lab), **_flow_namespace()}, "flow_chain",
     "`big_bijector` is not the chain the flow_chain check saw: the chain cell ran again"),
    # issue 34's case: the chain cell run again, not its check, then the Keras cell
    ("keras_model", lambda lab: (lambda ns: {**ns, **dict(zip(("x", "model"), _log_prob_model(ns["td"])))})(
        _chain_cell_rerun(lab.stage("chained"))), "flow_chain",
     "`td` is not the distribution the flow_chain check saw: the chain cell ran again after that check"),
    ("loss_and_optimizer", lambda lab: _keras_cell_rerun(lab.modelled()), "keras_model",
     "`model` is not the model the keras_model check saw: the Keras cell ran again after that check"),
    ("training", lambda lab: {**_keras_cell_rerun(lab.compiled()), "result": None}, "keras_model",
     "`model` is not the model the keras_model check saw"),
    ("training", lambda lab: {**_chain_cell_rerun(lab.compiled()), "result": None}, "flow_chain",
     "`td` is not the distribution the flow_chain check saw"),
    ("flow_samples", needs_training(lambda lab: (lambda ns: {**ns, "zsamples": ns["td"].sample(N)})(
        _chain_cell_rerun(lab.stage("trained")))), "flow_chain",
     "`td` is not the flow the training check saw: the chain cell ran again after training"),
    # a check run before the one it builds on: named, with the cell to run first
    ("keras_model", lambda lab: (lambda td: {"td": td, **dict(zip(("x", "model"), _log_prob_model(td)))})(_td()),
     "flow_chain", "the `flow_chain` check has not passed in this kernel"),
]


@pytest.mark.parametrize("name, namespace, rerun, what", [
    pytest.param(name, namespace, rerun, what, id=f"{name}-{i}", marks=_slow_if_trained(namespace))
    for i, (name, namespace, rerun, what) in enumerate(OUT_OF_ORDER)])
def test_an_out_of_order_run_names_the_cells_to_run_again(name, namespace, rerun, what, lab):
    namespace = namespace(lab)
    with pytest.raises(CheckFailed) as failure:
        checks.run(name, namespace)
    message = str(failure.value)
    assert what in message
    assert f'the {rerun} check cell (`flowlab.checks.run("{rerun}", globals())`' in message
    assert checks.ANSWER_CELLS[rerun] in message
    assert "down to this one" in message


class NumPySinh(HandSinh):
    """A hand-written sinh computing with NumPy, as a student might write it."""

    def __init__(self):
        super().__init__(forward=np.sinh, inverse=np.arcsinh, fldj=lambda x: np.log(np.cosh(x)),
                         ildj=lambda y: -0.5 * np.log1p(np.square(y)))


def _untaped_jacobians(lab: Lab, batch: bool) -> dict:
    """The first MAF's Jacobians taken with the tape.watch line forgotten (the student's cell then stops at
    np.linalg.det when batch is False: tape.jacobian returns None)."""
    namespace = lab.stage("chained")
    maf = namespace["big_bijector"].bijectors[0]
    z_points = tf.constant(Z_POINTS)
    with tf.GradientTape() as tape:
        x_points = maf.forward(z_points)
    jacobians = tape.batch_jacobian(x_points, z_points) if batch else tape.jacobian(x_points, z_points)
    namespace.update(z_points=z_points, jacobians=jacobians)
    if batch:
        with np.errstate(divide="ignore"):  # log 0: the student's cell runs on, silently
            namespace["log_det_autodiff"] = np.log(np.abs(np.linalg.det(jacobians.numpy())))
    return namespace


def _full_jacobian_cell(lab: Lab) -> dict:
    """tape.jacobian instead of batch_jacobian: the student's cell stops at np.linalg.det with LinAlgError,
    before log_det_autodiff is defined."""
    namespace = _maf_jacobians(lab, full=True)
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.det(namespace["jacobians"].numpy())
    del namespace["log_det_autodiff"]
    return namespace


def _event_ndims_zero_cell() -> dict:
    """event_ndims=0 in the formula cell: it stops at by_hand with 'Incompatible shapes: [4] vs. [2]'."""
    b, zdist = _bijectors()["b"], _zdist()
    log_det_g = b.inverse_log_det_jacobian(X_CHECK, event_ndims=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Incompatible shapes: \[4\] vs. \[2\]"):
        zdist.log_prob(b.inverse(X_CHECK)) + log_det_g
    return {"x_check": tf.constant(X_CHECK), "log_det_g": log_det_g}


def _float64_input_cell(lab: Lab) -> dict:
    """A float64 Input: the Keras cell stops at td.log_prob(x), before `model` is defined."""
    namespace = lab.stage("chained")
    del namespace["model"]
    namespace["x"] = tf.keras.Input(shape=(2,), dtype=tf.float64)
    with pytest.raises(TypeError, match="float64"):
        namespace["td"].log_prob(namespace["x"])
    return namespace


# (check, the namespace the student's mistaken cell leaves, what the message must say: the mistake and its fix)
COMMON_MISTAKES = [
    ("hand_bijector", lambda lab: {"my_sinh": NumPySinh()},
     ["my_sinh.forward returns a NumPy array", "'numpy.ndarray' object has no attribute '_id'", "Hint: use tf.sinh"]),
    ("formula_by_hand", lambda lab: _event_ndims_zero_cell(),
     ["one number per coordinate, not per point", "Incompatible shapes: [4] vs. [2]", "event_ndims=1"]),
    ("maf_jacobian", _full_jacobian_cell,
     ["tape.jacobian differentiates every output by every input of every point", "LinAlgError",
      "tape.batch_jacobian gives one 2 x 2 matrix per point"]),
    ("keras_model", _float64_input_cell,
     ["`x` has dtype float64", "td.log_prob(x) fails", "tf.keras.Input(shape=(2,), dtype=tf.float32)"]),
    ("maf_jacobian", lambda lab: _untaped_jacobians(lab, batch=True),
     ["`jacobians` are all zero", "the tape did not watch z_points", "tape.watch(z_points)"]),
    ("maf_jacobian", lambda lab: _untaped_jacobians(lab, batch=False),
     ["`jacobians` is None: the tape did not watch z_points", "tape.watch(z_points)"]),
]


@pytest.mark.parametrize("name, namespace, says", [
    pytest.param(name, namespace, says, id=f"{name}-{i}") for i, (name, namespace, says) in enumerate(COMMON_MISTAKES)])
def test_a_common_mistake_is_named_with_its_fix(name, namespace, says, lab):
    namespace = namespace(lab)
    with pytest.raises(CheckFailed) as failure:
        checks.run(name, namespace)
    for words in says:
        assert words in str(failure.value)


def test_the_registry_that_run_reads_cannot_be_rebound_through_flowlab_checks():
    """flowlab.checks' registry is a read-only view since the checks were split (issue 37): the forgery
    tests/test_verdict.py plants must reach for the dict behind it, in check_registry."""
    with pytest.raises(TypeError):
        checks._REGISTRY["training"] = checks._REGISTRY["moons_data"]

"""Every branch of flowlab.checks, in-process, on small hand-built notebook namespaces.

Each check gets a namespace holding a right answer (it prints ``OK: ...``) and then, one at a
time, the wrong answers each of its branches is there to catch (it raises CheckFailed saying so).
"""

from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn import datasets

from flowlab import checks
from flowlab.checks import CheckFailed
from flowlab.data import moons_log_prob

tfd, tfb = tfp.distributions, tfp.bijectors
N = checks.MOON_N


def _zdist(loc=(0.0, 0.0)):
    return tfd.MultivariateNormalDiag(loc=list(loc))


def _normal_points(n: int = N, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 2)) * scale + np.asarray(shift)


def _moons(n=N, noise: float = 0.05) -> np.ndarray:
    return datasets.make_moons(n, noise=noise, random_state=0)[0]


def _bijectors(scale=(1.0, 0.5), shift=(0.5, 0.25)) -> dict:
    scale_bij, shift_bij = tfb.Scale(list(scale)), tfb.Shift(list(shift))
    return {"scale_bij": scale_bij, "shift_bij": shift_bij, "b": shift_bij(scale_bij)}


def _td(bijector=None) -> tfd.TransformedDistribution:
    return tfd.TransformedDistribution(_zdist(), bijector=bijector or _bijectors()["b"])


def _chain(blocks: int = 3, hidden_units=(128, 128), activation="relu", params: int = 2,
           permutation=(1, 0), network=None) -> tfb.Chain:
    layers = []
    for _ in range(blocks):
        made = network or tfb.AutoregressiveNetwork(params=params, hidden_units=list(hidden_units),
                                                    activation=activation)
        layers += [tfb.MaskedAutoregressiveFlow(made), tfb.Permute(list(permutation))]
    return tfb.Chain(layers)


def _flow_namespace(**chain_options) -> dict:
    chain = _chain(**chain_options)
    return {"big_bijector": chain, "td": _td(chain)}


def _keras_namespace(sign: float = 1.0) -> dict:
    td = _td()
    x = tf.keras.Input(shape=(2,), dtype=tf.float32)
    return {"x": x, "td": td, "model": tf.keras.Model(x, sign * td.log_prob(x))}


def _compiled(optimizer="adam", loss=lambda y, log_prob: -log_prob) -> dict:
    namespace = _keras_namespace()
    optimizers = {"adam": tf.keras.optimizers.Adam, "sgd": tf.keras.optimizers.SGD}
    namespace["model"].compile(optimizer=optimizers[optimizer](1e-3), loss=loss)
    return namespace


class ExactMoons:
    """The true density as a model: a perfectly trained flow."""

    def log_prob(self, x):
        return tf.constant(moons_log_prob(np.asarray(x)))


def _trained(losses=None, td=None) -> dict:
    losses = list(np.linspace(2.5, 0.3, checks.EPOCHS)) if losses is None else losses
    return {"result": SimpleNamespace(history={"loss": losses}), "td": td or ExactMoons()}


# check -> a namespace holding a right answer
RIGHT = {
    "moons_data": lambda: {"data": _moons()},
    "base_distribution": lambda: {"zdist": _zdist()},
    "base_samples": lambda: {"zsamples": _normal_points()},
    "bijectors": _bijectors,
    "transformed_distribution": lambda: {"td": _td(), "zsamples": _normal_points(scale=np.array([1.0, 0.5]),
                                                                                 shift=(0.5, 0.25))},
    "flow_chain": _flow_namespace,
    "keras_model": _keras_namespace,
    "loss_and_optimizer": _compiled,
    "training": _trained,
    "flow_samples": lambda: {"zsamples": _moons()},
}


def test_every_check_has_a_right_answer_here():
    assert set(RIGHT) == set(checks.CHECKS)


@pytest.mark.parametrize("name", list(RIGHT))
def test_right_answer_passes_with_one_ok_line(name, capsys):
    checks.CHECKS[name](RIGHT[name]())
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and out.count("\n") == 1


# (check, what the namespace holds instead of the right answer, words the failure must contain)
WRONG = [
    # a name that was never defined
    ("moons_data", lambda: {}, "`data` not defined. Hint: answer the TODO"),
    ("bijectors", lambda: {"b": 1}, "`shift_bij`, `scale_bij` not defined"),
    ("training", lambda: {"td": ExactMoons()}, "`result` not defined"),
    # moons_data
    ("moons_data", lambda: {"data": "ten thousand points"}, "`data` should be an array of points, got str"),
    ("moons_data", lambda: {"data": _moons(100)}, "`data` has shape (100, 2); expected (10000, 2)"),
    ("moons_data", lambda: {"data": np.where(np.arange(N)[:, None] == 5, np.nan, _moons())},
     "`data` contains NaN or infinite values"),
    ("moons_data", lambda: {"data": datasets.make_circles(N, noise=0.05, random_state=0)[0]},
     "does not lie along two interleaved half circles"),
    ("moons_data", lambda: {"data": _moons((7000, 3000))}, "70% of the points are on the upper moon"),
    ("moons_data", lambda: {"data": _moons(noise=0.1)}, "Hint: pass noise=0.05 to make_moons"),
    # base_distribution
    ("base_distribution", lambda: {"zdist": np.zeros(2)}, "`zdist` should be a TFP distribution, got ndarray"),
    ("base_distribution", lambda: {"zdist": _zdist(loc=(0.0,))}, "`zdist` has event shape [1]"),
    ("base_distribution", lambda: {"zdist": tfd.MultivariateNormalDiag(loc=[[0.0, 0.0]] * 3)},
     "`zdist` has batch shape [3]; expected []"),
    ("base_distribution", lambda: {"zdist": _zdist(loc=(1.0, 0.0))}, "`zdist` is not the standard normal"),
    # base_samples
    ("base_samples", lambda: {"zsamples": _normal_points(5)}, "`zsamples` has shape (5, 2)"),
    ("base_samples", lambda: {"zsamples": _normal_points(scale=2.0)}, "samples of N(0, I) have mean 0 and identity"),
    ("base_samples", lambda: {"zsamples": _normal_points(shift=(0.5, 0.0))}, "`zsamples` has mean [0.5"),
    # bijectors
    ("bijectors", lambda: {**_bijectors(), "scale_bij": [1.0, 0.5]}, "`scale_bij` should be a TFP bijector, got list"),
    ("bijectors", lambda: _bijectors(scale=(0.5, 1.0)), "scaling by [1, 0.5] gives [1.0, 0.5]"),
    ("bijectors", lambda: _bijectors(shift=(0.25, 0.5)), "shifting by [0.5, 0.25] gives [0.5, 0.25]"),
    ("bijectors", lambda: {**_bijectors(), "b": tfb.Scale([1.0, 0.5])(tfb.Shift([0.5, 0.25]))},
     "b shifts first and then scales"),
    ("bijectors", lambda: {**_bijectors(), "b": tfb.Shift([0.5, 0.25])}, "scale-then-shift gives [1.5, 0.75]"),
    # right at (1, 1), but a pure shift: no volume change
    ("bijectors", lambda: {**_bijectors(), "b": tfb.Shift([0.5, -0.25])}, "b's log-det is 0.0000; expected log 0.5"),
    # transformed_distribution
    ("transformed_distribution", lambda: {"td": _zdist(), "zsamples": _normal_points()},
     "`td` should be a tfd.TransformedDistribution, got MultivariateNormalDiag"),
    ("transformed_distribution", lambda: {"td": _td(tfb.Scale([1.0, 0.5])), "zsamples": _normal_points()},
     "td.log_prob does not match N(0, I) pushed through scale [1, 0.5] then shift"),
    ("transformed_distribution", lambda: {"td": _td(), "zsamples": _normal_points()},
     "samples of td have mean [0.5, 0.25] and std [1.0, 0.5]"),
    # flow_chain
    ("flow_chain", lambda: {"big_bijector": _chain().bijectors[0], "td": _td()},
     "`big_bijector` should be a tfb.Chain, got MaskedAutoregressiveFlow"),
    ("flow_chain", lambda: _flow_namespace(blocks=2), "the lab asks for 3 x [MaskedAutoregressiveFlow, Permute]"),
    ("flow_chain", lambda: _flow_namespace(network=lambda x: (x, x)),
     "MAF 1 is not driven by a tfb.AutoregressiveNetwork"),
    ("flow_chain", lambda: _flow_namespace(hidden_units=(64, 64)), "MAF 1's network has hidden units [64, 64]"),
    ("flow_chain", lambda: _flow_namespace(activation="tanh"), "uses activation 'tanh'; the lab asks for relu"),
    ("flow_chain", lambda: _flow_namespace(params=1), "MAF 1's network has params=1"),
    ("flow_chain", lambda: _flow_namespace(permutation=(0, 1)), "Permute 1 maps (1, 2) to [1.0, 2.0]"),
    ("flow_chain", lambda: {"big_bijector": _chain(), "td": _td(_chain())},
     "`td` should be the TransformedDistribution of zdist through big_bijector"),
    # keras_model
    ("keras_model", lambda: {**_keras_namespace(), "x": tf.keras.Input(shape=(3,))},
     "`x` has shape (None, 3); expected (None, 2)"),
    ("keras_model", lambda: {**_keras_namespace(), "x": tf.keras.Input(shape=(2,), dtype=tf.float64)},
     "`x` has dtype float64"),
    ("keras_model", lambda: {**_keras_namespace(), "model": _td().log_prob}, "`model` should be a tf.keras.Model"),
    ("keras_model", lambda: _keras_namespace(sign=-1.0), "model(points) is not td.log_prob(points)"),
    # loss_and_optimizer
    ("loss_and_optimizer", _keras_namespace, "`model` is not compiled"),
    ("loss_and_optimizer", lambda: _compiled(optimizer="sgd"), "the optimizer is SGD; the lab trains with Adam"),
    ("loss_and_optimizer", lambda: _compiled(loss="mse"), "the loss should be the function neg_loglik, got 'mse'"),
    ("loss_and_optimizer", lambda: _compiled(loss=lambda y, log_prob: log_prob),
     "maps log p = [-1.0, 0.5] to [-1.0, 0.5]; the negative log-likelihood is -log p"),
    # training
    ("training", lambda: _trained(losses=[2.0, 1.0, 0.5, 0.4, 0.3]), "training ran 5 epochs; the lab asks for 80"),
    ("training", lambda: _trained(losses=[2.0] * 79 + [float("nan")]), "the training loss became NaN or infinite"),
    ("training", lambda: _trained(losses=[1.0] * 80), "the loss went from 1.00 to 1.00"),
    ("training", lambda: _trained(td=_zdist()), "a trained flow gets within 0.5"),
    # flow_samples
    ("flow_samples", lambda: {"zsamples": _normal_points()}, "of `zsamples` lie near the moons"),
    ("flow_samples", lambda: {"zsamples": _moons(50)}, "`zsamples` has shape (50, 2)"),
]


def test_every_check_has_wrong_answers_here():
    assert {name for name, _, _ in WRONG} == set(checks.CHECKS)


@pytest.mark.parametrize("name, namespace, needle", WRONG,
                         ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(WRONG)])
def test_wrong_answer_fails_saying_what_is_wrong(name, namespace, needle, capsys):
    with pytest.raises(CheckFailed) as failure:
        checks.CHECKS[name](namespace())
    assert needle in str(failure.value)
    assert capsys.readouterr().out == ""  # no OK line printed

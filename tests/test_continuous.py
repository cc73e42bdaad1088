"""The continuous flow (flowlab.flows.continuous) and its two trainings (flowlab.studies.flow_matching): the
instantaneous change of variables against a discrete chain, normalization, the flow-matching loss
where its answer is known, the two traces, reproducibility, and the command line."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import cli, measure
from flowlab.flows.continuous import CNF, ODESolve, Trace, VelocityField, cnf_of, count_evaluations
from flowlab.data import make_moons
from flowlab.studies.flow_matching import (CNF_CONFIG, FlowMatching, euler_paths, fit_matching, matching_loss,
                                           ot_pairing, straightness, train_cnf, with_solver)
from flowlab.flows import FlowConfig, make_flow
from flowlab.io import load_flow, save_flow
from flowlab.train import TrainSettings

tfd = tfp.distributions

#: A small continuous flow on 8 Euler steps (quick to trace); tests of the adaptive solver say so.
SMALL = dataclasses.replace(CNF_CONFIG, hidden_units=(16, 16), seed=3, options={"solver": "euler", "steps": 8})


def _moving(config: FlowConfig = SMALL, scale: float = 0.4) -> "tfd.Distribution":
    """A small continuous flow whose velocity is not zero (an untrained one's last layer is)."""
    flow = make_flow(config)
    velocity = cnf_of(flow).velocity
    rng = np.random.default_rng(config.seed)
    for variable in velocity.trainable_variables:
        variable.assign(rng.normal(scale=scale, size=variable.shape).astype(np.float32))
    return flow


# ---- two Gaussians: x0 ~ N(0, I), x1 ~ N(MU, S^2 I), independent ----
MU, S = np.array([1.0, -0.5], np.float32), 0.4


def optimal_velocity(t, x):
    """E[x1 - x0 | x_t = x] for the straight path between N(0, I) and N(MU, S^2 I), closed form:
    x_t is Gaussian with mean t MU and variance (1-t)^2 + t^2 S^2, and Cov(x1 - x0, x_t) = t S^2 - (1 - t)."""
    t = tf.cast(t, tf.float32)
    t = tf.reshape(t, [-1, 1]) if t.shape.rank else t
    return MU + (t * S**2 - (1 - t)) / ((1 - t) ** 2 + t**2 * S**2) * (x - t * MU)


def test_the_optimal_field_reaches_the_closed_form_minimum_of_the_matching_loss():
    """At fixed t the loss of E[x1 - x0 | x_t] is what x1 - x0 keeps of its variance given x_t,
    d S^2 / ((1-t)^2 + t^2 S^2); any other field pays its squared distance from it on top."""
    n, t = 200_000, 0.7
    x0 = tf.random.stateless_normal([n, 2], seed=[1, 1])
    x1 = MU + S * tf.random.stateless_normal([n, 2], seed=[1, 2])
    times = tf.fill([n], t)
    floor = 2 * S**2 / ((1 - t) ** 2 + t**2 * S**2)
    assert float(matching_loss(optimal_velocity, x0, x1, times)) == pytest.approx(floor, rel=0.01)
    shifted = lambda tt, x: optimal_velocity(tt, x) + [0.3, 0.0]  # noqa: E731
    assert float(matching_loss(shifted, x0, x1, times)) == pytest.approx(floor + 0.09, rel=0.01)


def test_the_optimal_field_carries_the_noise_to_the_target_density():
    """The flow of the closed-form field, integrated by the CNF with the instantaneous change of
    variables, has exactly the density N(MU, S^2 I), for either trace (Hutchinson's is exact in
    expectation; here with 64 probes it is close point by point)."""
    x = MU + S * tf.random.stateless_normal([6, 2], seed=[2, 1])
    truth = tfd.MultivariateNormalDiag(MU, [S, S]).log_prob(x).numpy()
    exact = tfd.TransformedDistribution(tfd.MultivariateNormalDiag([0.0, 0.0]),
                                        CNF(optimal_velocity, ODESolve(rtol=1e-6, atol=1e-6), Trace("exact")))
    np.testing.assert_allclose(exact.log_prob(x).numpy(), truth, atol=1e-4)
    samples = exact.sample(4000, seed=5).numpy()
    np.testing.assert_allclose(samples.mean(0), MU, atol=0.03)
    np.testing.assert_allclose(samples.std(0), [S, S], atol=0.03)


def _euler_chain_log_det(velocity, x: tf.Tensor, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The discrete flow x <- x + h v(t, x), ``steps`` steps of h = 1/steps, and the sum of each
    step's exact log|det(I + h J)| (J from one reverse pass per coordinate): a chain of ``steps``
    residual layers."""
    def chain(x):
        h, log_det = 1.0 / steps, tf.zeros(tf.shape(x)[:1])
        for k in range(steps):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(x)
                step = x + h * velocity(k * h, x)
            rows = [tape.gradient(step, x, output_gradients=tf.one_hot(tf.fill(tf.shape(x)[:1], i), 2))
                    for i in range(2)]  # row i of the step's Jacobian
            log_det += tf.math.log(tf.abs(rows[0][:, 0] * rows[1][:, 1] - rows[0][:, 1] * rows[1][:, 0]))
            x = step
        return x, log_det

    y, log_det = chain(x)
    return y.numpy(), log_det.numpy()


@pytest.fixture(scope="module")
def adaptive() -> "tfd.Distribution":
    """:func:`_moving`'s flow on Dormand-Prince at 1e-6 (its solves are traced once for the module)."""
    return with_solver(_moving(), solver="dopri", rtol=1e-6, atol=1e-6)


def test_the_instantaneous_change_of_variables_is_the_limit_of_a_discrete_chain(adaptive):
    cnf = cnf_of(adaptive)
    x = tf.random.stateless_normal([8, 2], seed=[3, 1])
    y, log_det = cnf.forward(x).numpy(), cnf.forward_log_det_jacobian(x, event_ndims=1).numpy()
    assert np.abs(log_det).max() > 0.1  # the field really changes volume
    errors = []
    for steps in (20, 80):
        chain_y, chain_log_det = _euler_chain_log_det(cnf.velocity, x, steps)
        np.testing.assert_allclose(chain_y, y, atol=0.1)
        errors.append(np.abs(chain_log_det - log_det).max())
    assert errors[1] < 0.05
    assert errors[1] < errors[0] / 2.5  # first order in h: four times the steps, about a quarter of the error


def test_the_density_integrates_to_one_on_a_grid(adaptive):
    xx, yy, p = measure.density_on_grid(adaptive, lim=7.0, n=90)
    assert np.isfinite(p).all()
    assert p.sum() * (xx[0, 1] - xx[0, 0]) * (yy[1, 0] - yy[0, 0]) == pytest.approx(1.0, abs=0.01)


def test_exact_and_hutchinson_traces_agree_in_expectation():
    """Hutchinson's estimate eps^T J eps at one point, drawn 20,000 times (the point repeated: each
    copy gets its own probe), averages to the exact trace; a fresh probe per solve, the same ones
    for the same seed."""
    velocity = cnf_of(_moving()).velocity
    x = tf.repeat(tf.constant([[0.3, -0.2]]), 20_000, axis=0)
    state = (x, tf.zeros_like(x))
    exact = tf.reduce_sum(Trace("exact")(velocity, x.shape, tf.float32)(0.3, state)[1], -1).numpy()
    one = Trace("hutchinson", seed=1)
    draws = tf.reduce_sum(one(velocity, x.shape, tf.float32)(0.3, state)[1], -1).numpy()
    assert np.ptp(exact) < 1e-5 and abs(exact[0]) > 0.1
    assert draws.std() > 0.1  # an estimate, not the trace
    assert abs(draws.mean() - exact[0]) < 4 * draws.std() / np.sqrt(len(draws))
    second = tf.reduce_sum(one(velocity, x.shape, tf.float32)(0.3, state)[1], -1).numpy()
    assert not np.allclose(second, draws)  # a fresh probe per solve
    again = Trace("hutchinson", seed=1)
    np.testing.assert_array_equal(tf.reduce_sum(again(velocity, x.shape, tf.float32)(0.3, state)[1], -1).numpy(),
                                  draws)  # the same seed, the same probes


def test_hutchinson_log_prob_is_unbiased():
    """Through the whole ODE: 4,000 copies of one point, one probe each, average to the exact log-density."""
    flow = _moving()
    x = np.repeat(make_moons(1, seed=1), 4000, axis=0)
    exact = flow.log_prob(x[:1]).numpy()[0]
    estimates = with_solver(flow, trace="hutchinson").log_prob(x).numpy()
    assert estimates.std() > 0.01
    assert abs(estimates.mean() - exact) < 4 * estimates.std() / np.sqrt(len(estimates))


def test_euler_solver_costs_its_steps_and_the_adaptive_one_reports_its_evaluations(adaptive):
    euler = with_solver(adaptive, solver="euler", steps=7)
    assert count_evaluations(euler, lambda: euler.sample(5, seed=1))[1] == 7
    dopri = adaptive
    log_p, evaluations = count_evaluations(dopri, lambda: dopri.log_prob(make_moons(5, seed=2)))
    assert evaluations > 6 and evaluations % 6 in (0, 2)  # Dormand-Prince: 6 per step, the first step's guess
    assert with_solver(adaptive, solver="euler", steps=200).log_prob(make_moons(5, seed=2)).numpy() == \
        pytest.approx(log_p.numpy(), abs=0.02)


def test_config_make_save_and_reload(tmp_path):
    flow = _moving()
    save_flow(flow, tmp_path / "cnf")
    loaded, config = load_flow(tmp_path / "cnf")
    assert config == SMALL
    x = make_moons(20, seed=9)
    np.testing.assert_allclose(loaded.log_prob(x).numpy(), flow.log_prob(x).numpy(), rtol=1e-6)


@pytest.mark.parametrize("options, message", [
    ({"rtol": 0.0}, "rtol must be a number from 1e-10 to 0.1, got 0.0"),
    ({"atol": 1.0}, "atol must be a number from 1e-10 to 0.1, got 1.0"),
    ({"steps": 0}, "steps must be an integer from 1 to 10,000, got 0"),
    ({"solver": "rk4"}, "solver must be one of 'dopri', 'euler', got 'rk4'"),
    ({"trace": "none"}, "trace must be one of 'exact', 'hutchinson', got 'none'"),
])
def test_bad_options_name_the_option(options, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        FlowConfig(flow="cnf", num_layers=1, options=options)


def test_a_continuous_flow_is_one_ode():
    with pytest.raises(ValueError, match="num_layers must be 1 for a continuous flow .*got 3"):
        make_flow(FlowConfig(flow="cnf"))


def test_training_takes_only_continuous_flows_and_known_objectives():
    data = make_moons(256, seed=0)
    with pytest.raises(ValueError, match="flow must be a continuous flow"):
        fit_matching(make_flow(FlowConfig(num_layers=1, hidden_units=(4,))), data)
    with pytest.raises(ValueError, match="objective must be one of 'likelihood', 'matching', got 'kl'"):
        train_cnf(make_flow(SMALL), data, TrainSettings(), objective="kl")
    with pytest.raises(ValueError, match="ot applies to objective 'matching' only"):
        train_cnf(make_flow(SMALL), data, TrainSettings(), objective="likelihood", ot=True)


def test_ot_pairing_is_the_cheapest_assignment():
    x0 = tf.random.stateless_normal([7, 2], seed=[5, 1])
    x1 = tf.random.stateless_normal([7, 2], seed=[5, 2])
    paired = ot_pairing(x0, x1).numpy()
    assert sorted(map(tuple, paired)) == sorted(map(tuple, x0.numpy()))  # a permutation
    import itertools
    best = min(np.sum((x0.numpy()[list(p)] - x1.numpy()) ** 2) for p in itertools.permutations(range(7)))
    assert np.sum((paired - x1.numpy()) ** 2) == pytest.approx(best, rel=1e-5)


def test_matching_draws_are_seeded():
    model = FlowMatching(VelocityField((4,), "tanh"), seed=3, ot=True)
    x1 = tf.constant(make_moons(16, seed=0))
    first, again, other = model.draws(x1, 5), model.draws(x1, 5), model.draws(x1, 6)
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    assert not np.allclose(first[1].numpy(), other[1].numpy())


def test_straightness_of_a_straight_field_is_zero():
    """A constant field moves every point along a straight line: one Euler step follows it exactly."""
    flow = make_flow(SMALL)
    cnf_of(flow).velocity.out.bias.assign([1.0, -2.0])
    scores = straightness(flow, n=50, steps=10)
    assert scores["straightness"] == pytest.approx(0.0, abs=1e-8)
    assert scores["length_ratio"] == pytest.approx(1.0, abs=1e-5)
    paths = euler_paths(flow, np.zeros((1, 2)), steps=4)
    np.testing.assert_allclose(paths[-1], [[1.0, -2.0]], atol=1e-6)


@pytest.mark.slow  # trains twice
def test_matching_learns_and_the_same_seed_gives_the_same_losses():
    data = make_moons(2000, seed=0)
    settings = TrainSettings(epochs=6, batch_size=200)
    losses = []
    for _ in range(2):
        flow = make_flow(SMALL)
        losses.append(fit_matching(flow, data, settings, ot=True, progress=False).history["loss"])
    assert losses[0] == losses[1]
    assert losses[0][-1] < losses[0][0]


@pytest.mark.slow  # trains through the ODE
def test_likelihood_training_lowers_the_nll():
    flow = make_flow(SMALL)
    data = make_moons(512, seed=0)
    before = float(-np.mean(flow.log_prob(data).numpy()))
    history = train_cnf(flow, data, TrainSettings(epochs=2, batch_size=128), objective="likelihood", progress=False)
    assert history.history["loss"][-1] < before


# ---- the command line ----

def _error(capsys, argv) -> str:
    """The one-line error of a refused command (argparse's exit or flowlab's own check), status 2."""
    try:
        status = cli.main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    assert status == 2
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("argv, message", [
    (["--flow", "maf", "--objective", "matching"], "argument --objective: applies to --flow cnf only, not --flow maf"),
    (["--flow", "cnf", "--objective", "likelihood", "--ot"], "argument --ot: applies to --objective matching only"),
    (["--flow", "cnf", "--rtol", "0"], "argument --rtol: must be a number from 1e-10 to 0.1, got '0'"),
    (["--flow", "cnf", "--steps", "0"], "argument --steps: must be an integer from 1 to 10,000, got '0'"),
    (["--flow", "cnf", "--objective", "kl"], "argument --objective: invalid choice: 'kl'"),
    (["--flow", "cnf", "--layers", "2"], "argument --layers: a continuous flow is one ODE: must be 1, got 2"),
    (["--flow", "cnf", "--steps", "5"], "argument --steps: applies to --solver euler only"),
])
def test_cli_refuses_bad_input(capsys, tmp_path, argv, message):
    error = _error(capsys, ["train", *argv, "--out", str(tmp_path / "run")])
    assert error.startswith("flowlab train: error: ") and message in error, error


@pytest.mark.slow  # a subprocess that imports TensorFlow and trains
def test_cli_json_contract(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "flowlab", "train", "--flow", "cnf", "--objective", "matching",
                             "--epochs", "2", "--samples", "1000", "--json", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"flow", "objective", "ot", "epochs", "train_seconds", "heldout_nll", "kl_to_exact", "kl_se", "entropy",
            "final_train_loss", "ode", "log_prob_evaluations", "sample_evaluations", "sample_10k_s",
            "log_prob_10k_s", "straightness", "settings"} <= set(metrics)
    assert metrics["flow"] == "cnf" and metrics["objective"] == "matching"
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert {"density.png", "samples.png", "loss.png", "paths.png"} <= {p.name for p in out.iterdir()}
    loaded, config = load_flow(out / "flow")
    assert config.flow == "cnf"

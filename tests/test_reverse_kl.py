"""The reverse-KL flow: the TensorFlow moons density agrees with the NumPy one, a short fit lowers
the reverse KL, runs repeat, divergence stops, and bad input is named."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from flowlab import train
from flowlab.studies import reverse_kl
from flowlab.data import make_moons, moons_log_prob
from flowlab.flows import FlowConfig, make_flow

SHORT = train.TrainSettings(epochs=3, batch_size=128, learning_rate=3e-3, seed=1, steps_per_execution=1)


def _points() -> np.ndarray:
    """Moons samples, and points anywhere around them (gaps, far tails)."""
    far = np.random.default_rng(0).uniform(-2.0, 3.0, size=(2000, 2))
    return np.concatenate([make_moons(2000, seed=5), far])


@pytest.mark.parametrize("noise", [0.05, 0.2])
def test_tf_moons_log_prob_agrees_with_numpy(noise):
    x = _points()
    exact = moons_log_prob(x, noise=noise)
    in64 = reverse_kl.moons_log_prob_tf(tf.constant(x, tf.float64), noise).numpy()
    in32 = reverse_kl.moons_log_prob_tf(tf.constant(x, tf.float32), noise).numpy()
    assert in64.dtype == np.float64 and in32.dtype == np.float32
    np.testing.assert_allclose(in64, exact, rtol=1e-12, atol=1e-10)
    on_moons = slice(0, 2000)
    np.testing.assert_allclose(in32[on_moons], exact[on_moons], atol=3e-6)  # float32: ~1e-6 nats
    np.testing.assert_allclose(in32, exact, rtol=1e-5, atol=3e-6)  # far out, relative (log p to -2000)


def test_tf_moons_log_prob_has_finite_gradients_far_out():
    x = tf.constant([[0.5, 0.25], [10.0, -10.0], [1.0, 0.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        log_p = reverse_kl.moons_log_prob_tf(x)
    assert np.isfinite(tape.gradient(log_p, x).numpy()).all() and np.isfinite(log_p.numpy()).all()


def small_flow(family: str = "iaf"):
    return make_flow(FlowConfig(flow=family, num_layers=2, hidden_units=(16, 16), seed=3))


@pytest.mark.parametrize("family", ["iaf", "realnvp"])
def test_short_fit_lowers_the_reverse_kl(family):
    flow, history = reverse_kl.fit_reverse_kl(small_flow(family), SHORT, n_points=2000, progress=False)
    losses = history.history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0] - 1.0
    model = reverse_kl.ReverseKL(flow)
    z = tf.random.stateless_normal([4000, 2], seed=[5, 0])
    kl = float(tf.reduce_mean(model(z)))
    assert 0 < kl < losses[0]  # a reverse KL is positive (up to noise); this one has fallen


def test_loss_is_the_reverse_kl_through_log_prob():
    """log q through the forward log-det of the same pass equals the flow's own log_prob."""
    flow = small_flow("realnvp")
    model = reverse_kl.ReverseKL(flow)
    z = tf.random.stateless_normal([50, 2], seed=[1, 2])
    x, terms = model.reverse_kl_terms(z)
    expected = flow.log_prob(x) - reverse_kl.moons_log_prob_tf(x)
    np.testing.assert_allclose(terms.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


def test_same_seed_same_numbers():
    losses = [reverse_kl.fit_reverse_kl(small_flow(), SHORT, n_points=1000, progress=False)[1].history["loss"]
              for _ in range(2)]
    assert losses[0] == losses[1]


def test_divergence_stops_with_a_message():
    absurd = dataclasses.replace(SHORT)
    object.__setattr__(absurd, "learning_rate", 1e15)  # past TrainSettings' check (LIMITS: at most 1)
    with pytest.raises(train.TrainingDiverged, match=r"loss became (nan|inf) in epoch 1"):
        reverse_kl.fit_reverse_kl(small_flow("realnvp"), absurd, n_points=1000, progress=False)


def test_budget_matches_fit_on_the_same_points(capsys):
    """epochs x (n_points // batch_size) steps, as fit takes on n_points data points."""
    settings = dataclasses.replace(SHORT, epochs=2, batch_size=100)
    _, history = reverse_kl.fit_reverse_kl(small_flow(), settings, n_points=350, progress=True)
    assert history.params["steps"] == 3 == settings.steps_per_epoch(350)
    start, *lines = capsys.readouterr().out.strip().splitlines()
    assert start.startswith("training for 2 epochs")
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]


@pytest.mark.parametrize("call, needle", [
    (lambda: reverse_kl.fit_reverse_kl("iaf"), "flow must be a flow .* got str"),
    (lambda: reverse_kl.fit_reverse_kl(small_flow(), n_points=0), "n_points must be a positive integer, got 0"),
    (lambda: reverse_kl.fit_reverse_kl(small_flow(), n_points=50), r"batch_size must be at most the number of training points \(50\)"),
    (lambda: reverse_kl.moons_log_prob_tf(tf.zeros((2, 2)), noise=0.0), "noise must be > 0"),
])
def test_bad_input_is_named(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()

"""The VAE: a short training lowers the negative ELBO, runs repeat, divergence stops; the IWAE
bound is an upper bound on the NLL that tightens with k, and the grid's NLL is the marginal,
checked where the answer is known."""

import numpy as np
import pytest
import tensorflow as tf

from flowlab import measure, train
from flowlab.studies import vae
from flowlab.data import make_moons, moons_entropy_estimate
from flowlab.flows import FlowConfig, make_flow

SHORT = train.TrainSettings(epochs=3, batch_size=128, learning_rate=3e-3, seed=1, steps_per_execution=1)


def small_vae(**kwargs) -> vae.VAE:
    return vae.VAE(hidden_units=(16, 16), seed=3, **kwargs)


def test_short_training_lowers_the_negative_elbo_and_changes_weights():
    model = small_vae()
    x = make_moons(2000, seed=5)
    before = -model.elbo(x).mean()
    weights = [w.numpy().copy() for w in model.trainable_variables]
    history = vae.fit_vae(model, make_moons(2000, seed=0), SHORT, progress=False, kl_warmup_epochs=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert -model.elbo(x).mean() < before - 0.3
    assert all(not np.array_equal(a, b.numpy()) for a, b in zip(weights, model.trainable_variables, strict=True))


def test_same_seed_same_numbers():
    data = make_moons(512, seed=0)
    runs = []
    for _ in range(2):
        model = small_vae()
        losses = vae.fit_vae(model, data, SHORT, progress=False).history["loss"]
        runs.append((losses, model.sample(50, seed=4), model.iwae_bound(data[:20], k=10, seed=2)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])


def test_flow_prior_is_trained_with_the_vae():
    prior = make_flow(FlowConfig(num_layers=1, hidden_units=(8,), seed=2))
    model = small_vae(prior=prior)
    assert not model.unit_prior
    assert {id(v) for v in prior.trainable_variables} <= {id(v) for v in model.trainable_variables}
    before = [v.numpy().copy() for v in prior.trainable_variables]
    vae.fit_vae(model, make_moons(512, seed=0), SHORT, progress=False)
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(before, prior.trainable_variables, strict=True))
    assert model.sample(5, seed=1).shape == (5, 2) and np.isfinite(model.iwae_bound(make_moons(5), k=4)).all()


def test_divergence_stops_with_a_message():
    with pytest.raises(train.TrainingDiverged, match=r"loss became (nan|inf) in epoch 1"):
        vae.fit_vae(small_vae(), np.full((256, 2), 1e30, dtype=np.float32), SHORT, progress=False)


def test_sample_and_decoder_mean_share_latents_and_seeds():
    model = small_vae()
    samples, means = model.sample(1000, seed=3), model.decoder_mean(1000, seed=3)
    assert samples.shape == means.shape == (1000, 2) and samples.dtype == np.float32
    np.testing.assert_array_equal(means, model.decoder_mean(1000, seed=3))
    assert not np.array_equal(samples, model.sample(1000, seed=4))
    _, log_std = model.decode(tf.zeros((1, 2)))
    assert np.all(log_std.numpy() >= np.log(vae.MIN_DECODER_STD))  # the floor


class _KnownMarginal(vae.VAE):
    """A linear-Gaussian VAE: p(x|z) = N(A z + b, s^2 I), so p(x) = N(b, A A^T + s^2 I) exactly.
    Its encoder is the prior, q(z|x) = N(0, I), not the (narrower) true posterior: the bounds are
    strict, and tighten with k towards the exact NLL."""

    A = np.array([[0.8, 0.3], [-0.2, 0.5]], dtype=np.float32)
    b = np.array([0.4, -0.1], dtype=np.float32)
    s = 0.7

    def encode(self, x):
        return tf.zeros_like(x), tf.zeros_like(x)

    def decode(self, z):
        mean = tf.matmul(z, self.A.T) + self.b
        return mean, tf.fill(tf.shape(mean), np.float32(np.log(self.s)))

    def sample_marginal(self, n, rng):
        cov = self.A @ self.A.T + self.s**2 * np.eye(2)
        return rng.multivariate_normal(self.b, cov, size=n).astype(np.float32)

    def exact_nll(self, x):
        cov = self.A @ self.A.T + self.s**2 * np.eye(2)
        d = x - self.b
        quad = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
        return 0.5 * (quad + np.log(np.linalg.det(cov)) + 2 * np.log(2 * np.pi))


def test_iwae_bound_is_above_the_exact_nll_and_converges_to_it():
    model = _KnownMarginal(hidden_units=(8,), seed=1)
    x = model.sample_marginal(2000, np.random.default_rng(0))
    exact = model.exact_nll(x).mean()
    bounds = [model.iwae_bound(x, k=k, seed=1).mean() for k in (1, 10, 100, 1000)]
    assert -model.elbo(x, seed=2).mean() == pytest.approx(bounds[0], abs=0.1)  # same bound, other draws
    assert bounds == sorted(bounds, reverse=True)  # tightens with k
    assert bounds[-1] > exact - 1e-3  # stays above the exact NLL
    assert bounds[0] - exact > 0.2 and bounds[-1] - exact < 0.02  # and converges to it


def test_iwae_bound_is_exact_when_the_decoder_ignores_z():
    """Then every weight p(x, z) / q(z|x) equals p(x): the bound is the NLL for any k."""
    class IgnoresZ(_KnownMarginal):
        A = np.zeros((2, 2), dtype=np.float32)

    model = IgnoresZ(hidden_units=(8,))
    x = np.random.default_rng(1).normal(size=(100, 2)).astype(np.float32)
    np.testing.assert_allclose(model.iwae_bound(x, k=7), model.exact_nll(x), atol=1e-5)


def test_grid_nll_equals_the_closed_form_marginal_of_a_linear_gaussian_decoder():
    model = _KnownMarginal(hidden_units=(8,), seed=1)
    x = model.sample_marginal(500, np.random.default_rng(2))
    np.testing.assert_allclose(model.grid_nll(x, lim=7.0, n=200), model.exact_nll(x), atol=1e-4)
    assert model.grid_prior_mass(lim=7.0, n=200) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_grid_nll_is_stable_when_the_grid_is_refined_and_lies_below_the_bounds():
    """A trained VAE's decoder is no linear map: the midpoint sums on 100, 200 and 400 cells a side
    agree, a larger box changes nothing, and the IWAE bound stays above the grid's NLL."""
    model = small_vae()
    vae.fit_vae(model, make_moons(2000, seed=0), SHORT, progress=False)
    x = make_moons(300, seed=4)
    coarse, fine, finer = (model.grid_nll(x, lim=6.0, n=n) for n in (100, 200, 400))
    assert np.abs(fine - finer).max() < 1e-3 and np.abs(coarse - finer).max() < 1e-2
    np.testing.assert_allclose(model.grid_nll(x, lim=9.0, n=300), finer, atol=1e-3)
    assert model.iwae_bound(x, k=1000).mean() > finer.mean() - 1e-3
    assert model.iwae_bound(x, k=1).mean() > model.iwae_bound(x, k=1000).mean()


def test_bound_tightness_is_each_bound_minus_the_grid_nll():
    model = _KnownMarginal(hidden_units=(8,), seed=1)
    out = measure.bound_tightness(model, n_samples=2000, ks=(1, 100), lim=7.0, n=150)
    exact = model.exact_nll(measure.heldout_points(n_samples=2000)).mean()
    assert out["grid_nll"] == pytest.approx(exact, abs=1e-4)
    assert out["tightness_1"] == pytest.approx(out["iwae_1"] - exact, abs=1e-4)
    assert out["tightness_1"] > out["tightness_100"] > -0.01  # the bound tightens towards it
    assert out["grid_kl"] == pytest.approx(out["grid_nll"] - out["entropy"])


def test_latent_usage_counts_what_the_encoder_carries():
    model = _KnownMarginal(hidden_units=(8,), seed=1)  # its encoder is the prior: nothing carried
    usage = model.latent_usage(np.random.default_rng(0).normal(size=(50, 2)))
    np.testing.assert_allclose(usage["activity"], 0.0)
    np.testing.assert_allclose(usage["kl"], 0.0, atol=1e-7)
    np.testing.assert_allclose(usage["posterior_std"], 1.0)

    class Copies(_KnownMarginal):  # q(z|x) = N((x1, 0), 0.5^2): KL per unit known in closed form
        def encode(self, x):
            mean = tf.stack([x[:, 0], tf.zeros_like(x[:, 0])], axis=1)
            return mean, tf.fill(tf.shape(x), np.float32(np.log(0.5)))

    x = np.random.default_rng(1).normal(size=(4000, 2)).astype(np.float32)
    usage = Copies(hidden_units=(8,)).latent_usage(x)
    kl_per_unit = 0.5 * (0.25 - 1.0 - 2 * np.log(0.5))
    np.testing.assert_allclose(usage["kl"], [kl_per_unit + 0.5 * np.mean(x[:, 0] ** 2), kl_per_unit], rtol=1e-5)
    assert usage["activity"][0] == pytest.approx(x[:, 0].var(), rel=1e-5) and usage["activity"][1] == 0.0


def test_iwae_bounds_of_a_trained_vae_tighten_and_stay_above_the_entropy():
    model = small_vae()
    vae.fit_vae(model, make_moons(2000, seed=0), SHORT, progress=False)
    scores = measure.likelihood_bounds(model, n_samples=2000, ks=(1, 10, 100))
    entropy = moons_entropy_estimate(n_samples=20_000)
    assert scores["iwae_1"] >= scores["iwae_10"] >= scores["iwae_100"] == scores["nll_upper_bound"]
    assert scores["nll_upper_bound"] > entropy.mean + 3 * entropy.standard_error
    assert scores["kl_upper_bound_100"] > 0 and scores["kl_upper_bound"] == scores["kl_upper_bound_100"]
    assert scores["kl_upper_bound_1"] == pytest.approx(scores["iwae_1"] - scores["entropy"], abs=1e-9)


def test_iwae_bound_in_blocks_fits_large_k(monkeypatch):
    monkeypatch.setattr(vae, "_DRAWS_PER_BLOCK", 64)  # 3 points per block at k = 20
    model = small_vae()
    bounds = model.iwae_bound(make_moons(10, seed=1), k=20)
    assert bounds.shape == (10,) and np.isfinite(bounds).all()


@pytest.mark.parametrize("call, needle", [
    (lambda m: m.iwae_bound(np.zeros((3, 2)), k=0), "k must be a positive integer, got 0"),
    (lambda m: m.elbo(np.zeros((3, 3))), r"x must have shape \(n, 2\)"),
    (lambda m: m.sample(-1), "n must be a positive integer, got -1"),
    (lambda m: m.decoder_mean(2, seed=-3), "seed must be an integer >= 0, got -3"),
    (lambda m: vae.fit_vae(m, make_moons(256), SHORT, kl_warmup_epochs=9), r"kl_warmup_epochs must be at most epochs \(3\), got 9"),
    (lambda m: vae.fit_vae("vae", make_moons(256)), "vae must be a flowlab.vae.VAE, got str"),
    (lambda m: m.grid_nll(np.zeros((3, 2)), lim=0.0), "lim must be > 0, got 0.0"),
    (lambda m: m.grid_nll(np.zeros((3, 2)), n=1), "n must be at least 2 .cells per side., got 1"),
    (lambda m: m.grid_prior_mass(n=2.5), "n must be a positive integer, got 2.5"),
    (lambda m: m.latent_usage(np.zeros(3)), r"x must have shape \(n, 2\)"),
    (lambda m: measure.bound_tightness("vae"), "model must have a grid_nll.* got str"),
])
def test_bad_input_is_named(call, needle):
    with pytest.raises(ValueError, match=needle):
        call(small_vae())


@pytest.mark.parametrize("kwargs, needle", [
    ({"hidden_units": ()}, "hidden_units must be a non-empty list"),
    ({"min_decoder_std": 0.0}, "min_decoder_std must be > 0"),
    ({"prior": "normal"}, "prior must be None .* got str"),
    ({"activation": "cube"}, "activation must be one of"),
])
def test_bad_construction_is_named(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        vae.VAE(**kwargs)

"""flowlab.studies.digits.flows and flowlab.studies.digits.train: the digits flows' invariants (inverse round trip,
log-det against the autodiff Jacobian, the multi-scale permutations), the dequantization bound
against a case whose answer is known exactly, training, and save/load."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab.studies.digits import flows as image_flows
from flowlab.studies.digits.data import DIMS, load_digit_splits, uniform_dequantize
from flowlab.studies.digits.flows import ImageFlowConfig, VariationalDequantizer, make_image_flow
from flowlab.studies.digits.train import DequantizedBound, bits_per_dim_estimate, fit_digits, sample_images
from flowlab.train import TrainSettings

tfd = tfp.distributions
SMALL = {"couplings": (1, 1, 1), "hidden_channels": 4}
KINDS = [pytest.param(multiscale, transform, id=f"{'multiscale' if multiscale else 'flat'}-{transform}")
         for multiscale, transform in itertools.product((True, False), image_flows.COUPLINGS)]


def _trained_looking(config: ImageFlowConfig) -> image_flows.ImageFlow:
    """A small flow whose ActNorms start from data and whose weights were moved by seeded noise,
    so that no layer is the identity (every coupling starts as one)."""
    flow = make_image_flow(config)
    image_flows.initialize_actnorms(flow, uniform_dequantize(load_digit_splits().train[:200]))
    rng = np.random.default_rng(5)
    for variable in flow.trainable_variables:
        variable.assign(variable + 0.05 * rng.standard_normal(variable.shape).astype(np.float32))
    return flow


@pytest.fixture(scope="module")
def digits_x() -> np.ndarray:
    return uniform_dequantize(load_digit_splits().test[:6], seed=1)


@pytest.mark.parametrize("multiscale, transform", KINDS)
def test_inverse_round_trip(multiscale, transform, digits_x):
    flow = _trained_looking(ImageFlowConfig(multiscale=multiscale, transform=transform, **SMALL))
    z = flow.bijector.inverse(digits_x).numpy()
    back = flow.bijector.forward(tf.constant(z)).numpy()  # a new tensor: TFP caches by tensor
    assert np.abs(z).max() > 0.5 and np.allclose(back, digits_x, atol=2e-3)


@pytest.mark.parametrize("multiscale, transform", KINDS)
def test_log_det_matches_the_autodiff_jacobian(multiscale, transform, digits_x):
    flow = _trained_looking(ImageFlowConfig(multiscale=multiscale, transform=transform, **SMALL))
    z = tf.constant(flow.bijector.inverse(digits_x[:3]).numpy())
    with tf.GradientTape() as tape:
        tape.watch(z)
        x = flow.bijector.forward(z)
    jacobians = tape.batch_jacobian(x, z).numpy().astype(np.float64)
    assert jacobians.shape == (3, DIMS, DIMS)
    by_autodiff = np.linalg.slogdet(jacobians)[1]
    reported = flow.bijector.forward_log_det_jacobian(z, event_ndims=1).numpy()
    assert np.allclose(reported, by_autodiff, atol=2e-3), (reported, by_autodiff)


def test_log_prob_is_the_change_of_variables(digits_x):
    flow = _trained_looking(ImageFlowConfig(**SMALL, transform="spline"))
    x = tf.constant(digits_x)
    z = flow.bijector.inverse(x)
    expected = flow.distribution.log_prob(z) + flow.bijector.inverse_log_det_jacobian(x, event_ndims=1)
    assert np.allclose(flow.log_prob(x).numpy(), expected.numpy(), atol=1e-3)


def test_squeeze_is_space_to_depth():
    block = np.arange(4 * 6 * 2).reshape(4, 6, 2)
    squeezed = block.reshape(-1)[image_flows.squeeze_permutation((4, 6, 2))].reshape(2, 3, 8)
    expected = tf.nn.space_to_depth(block[None].astype(np.float32), 2).numpy()[0]
    assert np.array_equal(squeezed, expected)


def test_split_keeps_half_the_channels_in_front_and_factors_out_the_rest():
    permutation = image_flows.split_permutation((4, 4, 4))
    assert sorted(permutation) == list(range(DIMS))
    values = np.arange(DIMS).reshape(4, 4, 4)
    split = values.reshape(-1)[permutation]
    assert np.array_equal(split[:32].reshape(4, 4, 2), values[..., :2])
    assert np.array_equal(split[32:].reshape(4, 4, 2), values[..., 2:])


def test_later_stages_leave_the_factored_out_numbers_alone(digits_x):
    """After the split, every bijector acts on the first 32 numbers only."""
    flow = _trained_looking(ImageFlowConfig(**SMALL))
    steps = flow.steps
    after_split = steps[[step.name for step in steps].index("split") + 1:]
    value = tf.constant(digits_x)
    for step in steps[:len(steps) - len(after_split)]:
        value = step.inverse(value)
    out = value
    for step in after_split:
        out = step.inverse(out)
    assert np.array_equal(out.numpy()[:, 32:], value.numpy()[:, 32:])
    assert not np.allclose(out.numpy()[:, :32], value.numpy()[:, :32])


def test_masks():
    board = image_flows.checkerboard((4, 4, 1), 0)[..., 0]
    assert board.sum() == 8 and board[0, 0] == 1 and board[0, 1] == 0
    assert np.array_equal(image_flows.checkerboard((4, 4, 1), 1), 1 - image_flows.checkerboard((4, 4, 1), 0))
    assert image_flows.channel_mask((2, 2, 4), 0)[1, 1].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_actnorm_starts_standardized():
    x = uniform_dequantize(load_digit_splits().train[:300])
    norm = image_flows.ActNorm((8, 8, 1))
    norm.initialize(x)
    z = norm.inverse(x).numpy()
    moving = x.std(axis=0) > 0.5
    assert np.allclose(z.mean(0), 0, atol=1e-4) and np.allclose(z.std(0)[moving], 1, atol=1e-2)


@pytest.mark.parametrize("config, message", [
    ({"couplings": (1, 1)}, r"couplings must be 3 integers \(coupling layers at 8x8x1, 4x4x4 and 4x4x2\)"),
    ({"couplings": (0, 0, 0)}, "not all zero"),
    ({"transform": "cubic"}, "transform must be one of 'affine', 'spline', got 'cubic'"),
    ({"alpha": 0.7}, "alpha must be in \\(0, 0.5\\), got 0.7"),
    ({"multiscale": "yes"}, "multiscale must be True or False"),
])
def test_bad_configs_name_the_field(config, message):
    with pytest.raises(ValueError, match=message):
        ImageFlowConfig(**config)


def test_the_dequantizer_starts_exactly_uniform():
    """A standard logistic through a sigmoid is uniform, and every coupling starts as the identity:
    log q(u | x) = 0 for any draw, the uniform bound to the last digit."""
    dequantizer = VariationalDequantizer(couplings=2, hidden_channels=4)
    pixels = tf.constant(load_digit_splits().test[:5].reshape(5, 64).astype(np.float32))
    uniform = tf.random.stateless_uniform([5, 64], [1, 2], 1e-4, 1 - 1e-4)
    eps = tf.math.log(uniform) - tf.math.log1p(-uniform)  # standard logistic draws
    u, log_q = dequantizer.sample(pixels, eps)
    assert np.allclose(log_q.numpy(), 0.0, atol=1e-3)
    assert np.allclose(u.numpy(), tf.sigmoid(eps).numpy(), atol=1e-6)


# --- the bound on a case with a known answer --------------------------------------------------

LEVELS_KNOWN = 4
PROBABILITIES = np.array([[0.55, 0.25, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4],
                          [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]])  # per pixel of a 2x2 image
LOC, SCALE = np.array([0.9, 2.6, 2.0, 0.6]), np.array([0.9, 1.1, 1.3, 0.7])  # the fixed model p, per pixel


def _known_case() -> dict[str, float]:
    """Entropy of the data, the model's exact cross-entropy (its bins' Gaussian masses) and its
    uniform-dequantization bound (closed form), all in nats per image, by enumeration."""
    entropy = cross = uniform = 0.0
    for image in itertools.product(range(LEVELS_KNOWN), repeat=4):
        x = np.array(image, dtype=float)
        p = float(np.prod(PROBABILITIES[np.arange(4), image]))
        mass = np.prod(np.diff(np.stack([tfd.Normal(LOC, SCALE).cdf(x).numpy(),
                                         tfd.Normal(LOC, SCALE).cdf(x + 1).numpy()]), axis=0))
        # E_u[(x + u - m)^2] = (x - m)^2 + (x - m) + 1/3 for u uniform on [0, 1)
        squares = (x - LOC) ** 2 + (x - LOC) + 1 / 3
        log_p = -0.5 * squares / SCALE**2 - np.log(SCALE) - 0.5 * math.log(2 * math.pi)
        entropy -= p * math.log(p)
        cross -= p * math.log(float(mass))
        uniform -= p * float(log_p.sum())
    return {"entropy": entropy, "cross_entropy": cross, "uniform": uniform}


@pytest.mark.slow
def test_variational_dequantization_tightens_the_bound_on_a_known_case():
    """Data from a known discrete distribution, a fixed continuous model p: the exact discrete
    cross-entropy lies above the entropy; the uniform bound above that; training only the
    dequantizer brings the bound down towards the exact value, never below it."""
    known = _known_case()
    rng = np.random.default_rng(0)
    pixels = np.stack([rng.choice(LEVELS_KNOWN, size=4096, p=PROBABILITIES[i]) for i in range(4)], axis=1)
    model_p = tfd.MultivariateNormalDiag(loc=LOC.astype(np.float32), scale_diag=SCALE.astype(np.float32))
    dequantizer = VariationalDequantizer(shape=(2, 2), couplings=2, hidden_channels=16, levels=LEVELS_KNOWN)
    trainer = DequantizedBound(model_p, dequantizer, seed=1)
    trainer.compile(optimizer=tf.keras.optimizers.Adam(3e-3))
    trainer.fit(pixels.astype(np.float32), np.zeros(len(pixels)), batch_size=256, epochs=30, verbose=0)
    held_out = np.stack([rng.choice(LEVELS_KNOWN, size=20_000, p=PROBABILITIES[i]) for i in range(4)], axis=1)

    def bound(dq) -> float:
        uniform = tf.random.stateless_uniform(held_out.shape, [3, 4], 1e-6, 1 - 1e-6)
        model = DequantizedBound(model_p, dq)
        return float(-np.mean(model.bound(tf.constant(held_out, tf.float32), uniform).numpy()))

    uniform_estimate, variational = bound(None), bound(dequantizer)
    normal = tfd.Normal(LOC, SCALE)
    exact = -np.mean(np.log(normal.cdf(held_out + 1.0).numpy() - normal.cdf(held_out * 1.0).numpy()).sum(1))
    assert known["entropy"] < known["cross_entropy"] < known["uniform"]
    assert exact == pytest.approx(known["cross_entropy"], abs=0.05)  # the held-out points' own exact NLL
    assert uniform_estimate == pytest.approx(known["uniform"], abs=0.03)
    # on the same points: never below their exact NLL (up to the noise draws), well below the uniform bound
    assert exact - 0.01 < variational < uniform_estimate - 0.2, (exact, variational, uniform_estimate)


# --- training, sampling, save and load --------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    splits = load_digit_splits()
    flow = make_image_flow(ImageFlowConfig(**SMALL, transform="spline"))
    dequantizer = VariationalDequantizer(couplings=1, hidden_channels=4)
    # one step per call: tracing five steps unrolled took longer than the three epochs themselves
    history = fit_digits(flow, splits, TrainSettings(epochs=3, batch_size=64, learning_rate=1e-2,
                                                     steps_per_execution=1), dequantizer=dequantizer,
                         progress=False)
    return flow, dequantizer, history.history, splits


def test_training_lowers_the_bound_and_keeps_the_best_epoch(trained):
    flow, dequantizer, history, splits = trained
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0] - 0.1
    assert all(np.isfinite(history["val_loss"]))
    estimate = bits_per_dim_estimate(flow, splits.validation, dequantizer, draws=1, seed=0)
    assert abs(estimate.mean - min(history["val_loss"])) < 0.05  # the best epoch's weights are the ones kept


def test_the_importance_weighted_bound_is_never_looser(trained):
    flow, dequantizer, _, splits = trained
    plain = bits_per_dim_estimate(flow, splits.test, dequantizer, draws=8, seed=3)
    weighted = bits_per_dim_estimate(flow, splits.test, dequantizer, draws=8, seed=3, importance=True)
    assert weighted.mean < plain.mean


def test_samples_are_grey_level_images(trained):
    flow = trained[0]
    images = sample_images(flow, 12, seed=4)
    assert images.shape == (12, 8, 8) and images.min() >= 0 and images.max() <= 16
    assert np.array_equal(images, sample_images(flow, 12, seed=4))


def test_save_and_load_give_the_same_bound(trained, tmp_path):
    from flowlab.io import load_image_flow, save_image_flow

    flow, dequantizer, _, splits = trained
    save_image_flow(flow, tmp_path / "flow", dequantizer)
    loaded, loaded_dequantizer = load_image_flow(tmp_path / "flow")
    assert loaded.config == flow.config and loaded_dequantizer.config == dequantizer.config
    for a, b in ((flow, dequantizer), (loaded, loaded_dequantizer)):
        assert bits_per_dim_estimate(a, splits.test[:20], b, seed=1) == \
            bits_per_dim_estimate(loaded, splits.test[:20], loaded_dequantizer, seed=1)


def test_loading_what_is_not_a_digits_flow_says_so(tmp_path):
    from flowlab.io import load_image_flow, save_image_flow

    with pytest.raises(FileNotFoundError, match="holds no saved digits flow"):
        load_image_flow(tmp_path)
    with pytest.raises(TypeError, match="must be a digits flow"):
        save_image_flow(tfd.Normal(0.0, 1.0), tmp_path)

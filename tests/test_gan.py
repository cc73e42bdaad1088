"""The GAN: a short training brings its samples closer to the moons, runs repeat, divergence
stops with a message, and bad input is named."""

import dataclasses

import numpy as np
import pytest

from flowlab import measure, train
from flowlab.studies import gan
from flowlab.data import make_moons

SHORT = train.TrainSettings(epochs=4, batch_size=128, learning_rate=1e-3, seed=1, steps_per_execution=1)


def small_gan() -> gan.GAN:
    return gan.GAN(hidden_units=(32, 32), seed=3)


def test_short_training_brings_samples_closer_to_the_moons():
    """A GAN's losses do not fall steadily (two players); what must fall is the distance to the data."""
    model = small_gan()
    reference = make_moons(2000, seed=9)
    before = measure.energy_distance(model.sample(2000, seed=1), reference)
    history = gan.fit_gan(model, make_moons(2000, seed=0), SHORT, progress=False)
    after = measure.energy_distance(model.sample(2000, seed=1), reference)
    assert after < before / 2
    assert history.history["loss"] == pytest.approx(
        np.add(history.history["d_loss"], history.history["g_loss"]), rel=1e-6)


def test_same_seed_same_numbers():
    data = make_moons(512, seed=0)
    runs = []
    for _ in range(2):
        model = small_gan()
        runs.append((gan.fit_gan(model, data, SHORT, progress=False).history["loss"], model.sample(20, seed=5)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(small_gan().sample(20, seed=5), small_gan().sample(20, seed=6))


def test_divergence_stops_with_a_message():
    """An absurd learning rate: Adam's steps of ~1e15 make the networks' outputs overflow."""
    absurd = dataclasses.replace(SHORT)
    object.__setattr__(absurd, "learning_rate", 1e15)  # past TrainSettings' check (LIMITS: at most 1)
    with pytest.raises(train.TrainingDiverged, match=r"loss became (nan|inf) in epoch 1"):
        gan.fit_gan(small_gan(), make_moons(256), absurd, progress=False)


def test_discriminate_gives_probabilities():
    p = small_gan().discriminate(make_moons(10))
    assert p.shape == (10,) and np.all((p > 0) & (p < 1))


def test_a_gan_has_no_density():
    assert not hasattr(small_gan(), "log_prob")


@pytest.mark.parametrize("call, needle", [
    (lambda: small_gan().sample(0), "n must be a positive integer, got 0"),
    (lambda: small_gan().discriminate(np.zeros(4)), r"x must have shape \(n, 2\)"),
    (lambda: gan.GAN(hidden_units=[8, 0]), r"hidden_units\[1\] must be a positive integer, got 0"),
    (lambda: gan.fit_gan(small_gan(), np.zeros((10, 2))), r"batch_size must be at most the number of training points \(10\)"),
    (lambda: gan.fit_gan(object(), make_moons(256)), "gan must be a flowlab.gan.GAN, got object"),
])
def test_bad_input_is_named(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()

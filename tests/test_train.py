"""Training on the NLL: the loss falls, runs repeat, divergence stops with a message, and the
caller's random generators and graph-optimizer setting are left as they were."""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from flowlab import measure, train
from flowlab.data import make_moons
from flowlab.flows import LAYER_FLOWS, FlowConfig, make_flow

# one step per call into TensorFlow: a smaller graph to trace, so these short fits start sooner
SHORT = train.TrainSettings(epochs=4, batch_size=128, learning_rate=3e-3, seed=1, steps_per_execution=1)
TINY = train.TrainSettings(epochs=2, batch_size=128, steps_per_execution=1)


def test_nll_loss_is_negative_log_prob_and_ignores_labels():
    log_prob = tf.constant([-1.0, 2.5])
    np.testing.assert_allclose(train.nll_loss(tf.constant([7.0, -3.0]), log_prob).numpy(), [1.0, -2.5])


def test_build_model_outputs_log_prob(small_flow):
    model = train.build_model(small_flow)
    assert model.input_shape == (None, 2) and model.input.dtype == tf.float32
    x = make_moons(8, seed=2)
    np.testing.assert_allclose(model(x).numpy(), small_flow.log_prob(x).numpy(), rtol=1e-5)


def test_short_training_lowers_heldout_nll_and_changes_weights(small_flow):
    data = make_moons(2000, seed=0)
    before = measure.evaluate(small_flow, n_samples=5000)
    weights_before = [w.numpy().copy() for w in small_flow.trainable_variables]
    history = train.fit(small_flow, data, SHORT, progress=False)
    after = measure.evaluate(small_flow, n_samples=5000)
    assert len(history.history["loss"]) == SHORT.epochs
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert after["heldout_nll"] < before["heldout_nll"] - 0.2
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(weights_before, small_flow.trainable_variables, strict=True))


@pytest.mark.slow  # trains twice per case
@pytest.mark.parametrize("family", LAYER_FLOWS)
def test_same_seed_same_numbers(small_config, family):
    data = make_moons(1000, seed=0)
    losses = []
    for _ in range(2):
        flow = make_flow(dataclasses.replace(small_config, flow=family, options={}))  # the family's defaults
        losses.append(train.fit(flow, data, SHORT, progress=False).history["loss"])
    assert losses[0] == losses[1]


def test_progress_lines(capsys):
    printer = train.ProgressPrinter(epochs=20)
    printer.on_train_begin()
    for epoch in range(20):
        printer.on_epoch_end(epoch, {"loss": 2.0 - epoch / 20})
    start, *lines = capsys.readouterr().out.strip().splitlines()
    assert start.startswith("training for 20 epochs: a line after epoch 1, every 10 epochs")
    assert [line.split()[1] for line in lines] == ["1/20", "10/20", "20/20"]
    assert [line.split()[3] for line in lines] == ["2.0000", "1.5500", "1.0500"]
    assert all(line.endswith(" s)") for line in lines)


@pytest.mark.slow  # trains for 20 epochs
def test_fit_prints_progress(small_flow, capsys):
    train.fit(small_flow, make_moons(500), train.TrainSettings(epochs=20, batch_size=250), progress=True)
    start, *lines = capsys.readouterr().out.strip().splitlines()
    assert start.startswith("training for 20 epochs")  # printed before the graph is built
    assert [line.split()[1] for line in lines] == ["1/20", "10/20", "20/20"]


def test_divergence_stops_with_a_message(small_flow):
    data = np.full((256, 2), 1e30, dtype=np.float32)  # log_prob overflows: loss is not finite
    before = _grappler_off()
    with pytest.raises(train.TrainingDiverged, match=r"loss became (nan|inf) in epoch 1\. Try a smaller"):
        train.fit(small_flow, data, SHORT, progress=False)
    assert _grappler_off() is before


def test_stop_on_nan_callback_raises_on_nan_epoch():
    callback = train.StopOnNaN()
    callback.set_model(tf.keras.Sequential())
    callback.on_epoch_end(0, {"loss": 0.5})
    with pytest.raises(train.TrainingDiverged, match="epoch 3"):
        callback.on_epoch_end(2, {"loss": math.nan})


def test_schedule_warms_up_then_decays_to_zero():
    schedule = train.learning_rate_schedule(1e-2, total_steps=100, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert values[0] == pytest.approx(0.0) and values[1] == pytest.approx(5e-3)
    # step 55 is halfway through the 90 decay steps: half the peak on a cosine
    assert values[2] == pytest.approx(1e-2) and values[3] == pytest.approx(5e-3) and values[4] == pytest.approx(0.0)


def test_default_warm_up_is_an_eighth_of_the_epochs(monkeypatch):
    """The stall study's recipe: 10 of 80 epochs; short runs get proportionally less, none at all
    under 8 epochs; an explicit warmup_epochs wins. The optimizer's schedule gets it in steps."""
    assert [train.TrainSettings(epochs=e).effective_warmup_epochs for e in (80, 16, 7, 1)] == [10, 2, 0, 0]
    assert train.TrainSettings(warmup_epochs=1).effective_warmup_epochs == 1
    schedules = []
    real_schedule = train.learning_rate_schedule
    monkeypatch.setattr(train, "learning_rate_schedule",
                        lambda *args: schedules.append(args) or real_schedule(*args))
    train.TrainSettings().optimizer(1280)  # 10 steps per epoch
    assert schedules == [(3e-3, 800, 100)]


def test_schedule_without_warm_up_starts_at_the_peak():
    """What `flowlab train --epochs 1` gets: no warm-up, a cosine from the peak to zero."""
    schedule = train.learning_rate_schedule(1e-2, total_steps=100, warmup_steps=0)
    values = [float(schedule(step)) for step in (0, 25, 50, 100)]
    expected = [1e-2 * 0.5 * (1 + math.cos(math.pi * step / 100)) for step in (0, 25, 50, 100)]
    assert values == pytest.approx(expected, abs=1e-7)
    assert expected[:3] == pytest.approx([1e-2, 8.5355e-3, 5e-3], abs=1e-6)


@pytest.mark.parametrize("kwargs, needle", [
    ({"epochs": 0}, "epochs must be an integer from 1 to 10,000, got 0"),
    ({"batch_size": -4}, "batch_size must be an integer from 1 to 1,000,000, got -4"),
    ({"learning_rate": float("inf")}, "learning_rate must be a number > 0 and <= 1, got inf"),
    ({"learning_rate": 0.0}, "learning_rate must be a number > 0 and <= 1, got 0.0"),
    ({"epochs": 2, "warmup_epochs": 2}, "warmup_epochs must be < epochs"),
    ({"epochs": 8, "warmup_epochs": -1}, "warmup_epochs must be an integer >= 0, got -1"),
])
def test_settings_reject_bad_values(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        train.TrainSettings(**kwargs)


def test_fit_rejects_bad_data(small_flow):
    with pytest.raises(ValueError, match=r"data must have shape \(n, 2\)"):
        train.fit(small_flow, np.zeros((10, 3)), SHORT)


def test_batch_stream_cuts_each_epoch_from_a_fresh_seeded_order():
    data = np.arange(22, dtype=np.float32).reshape(11, 2)  # point i is (2i, 2i + 1)
    settings = train.TrainSettings(epochs=3, batch_size=4, seed=5)
    stream = train.batch_stream(data, settings)
    assert stream.element_spec[0].shape == (4, 2)  # static: the faster training graph
    batches = [x.numpy() for x, _ in stream]
    assert len(batches) == settings.epochs * settings.steps_per_epoch(len(data)) == 6
    epochs = [np.concatenate(batches[i:i + 2])[:, 0] / 2 for i in (0, 2, 4)]
    for seen in epochs:
        assert len(set(seen)) == 8 and set(seen) <= set(range(11))  # no point twice in an epoch
    assert not all(np.array_equal(epochs[0], other) for other in epochs[1:])
    again = [x.numpy() for x, _ in train.batch_stream(data, settings)]
    np.testing.assert_array_equal(np.stack(batches), np.stack(again))
    labels = np.concatenate([y.numpy() for _, y in stream])
    assert labels.shape == (24,) and not labels.any()


def test_batch_size_larger_than_data_is_named():
    with pytest.raises(ValueError, match=r"batch_size must be at most the number of training points \(10\), got 128"):
        train.batch_stream(np.zeros((10, 2), np.float32), train.TrainSettings())


@pytest.mark.slow  # trains twice per case
def test_losses_do_not_depend_on_steps_per_execution():
    """With Grappler's rewrites on, this spline flow's losses differed at 1e-7 (measured)."""
    data = make_moons(1000, seed=0)
    losses = [train.fit(make_flow(FlowConfig(flow="spline", hidden_units=(32, 32))),
                        data, dataclasses.replace(SHORT, steps_per_execution=steps), progress=False).history["loss"]
              for steps in (1, 20)]
    assert losses[0] == losses[1]


@pytest.fixture
def graph_optimizer_options():
    """Put TensorFlow's graph-optimizer options back as they were after the test."""
    before = tf.config.optimizer.get_experimental_options()
    yield
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": before.get("disable_meta_optimizer", False)})


def _grappler_off() -> bool:
    return tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)


@pytest.mark.parametrize("off", [False, True])
def test_graph_rewrites_off_turns_grappler_off_and_restores_it(off, graph_optimizer_options):
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": off})
    with train._graph_rewrites_off():
        assert _grappler_off()
    assert _grappler_off() is off
    with pytest.raises(KeyError), train._graph_rewrites_off():
        raise KeyError("inside")
    assert _grappler_off() is off


@pytest.mark.slow  # trains twice; the quick test above covers the context manager alone
@pytest.mark.parametrize("off", [False, True])
def test_fit_restores_the_graph_optimizer_setting_after_an_exception(small_flow, off, graph_optimizer_options):
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": off})
    with pytest.raises(train.TrainingDiverged):
        train.fit(small_flow, np.full((256, 2), 1e30, dtype=np.float32), SHORT, progress=False)
    assert _grappler_off() is off


def test_fit_leaves_the_global_random_generators_alone(small_config):
    """fit neither reseeds nor advances Python's or NumPy's global generator: the draws after
    it are the ones a control that did not train gets."""
    import random

    def draws():
        return random.random(), float(np.random.random())

    data = make_moons(256)
    random.seed(123)
    np.random.seed(123)
    draws()
    control = draws()
    random.seed(123)
    np.random.seed(123)
    draws()
    train.fit(make_flow(small_config), data, dataclasses.replace(TINY, seed=9), progress=False)
    assert draws() == control


@pytest.mark.slow  # trains twice
def test_same_seed_same_losses_without_reseeding_the_globals(small_config):
    """The run's randomness is its own: reseeding the globals differently between two runs
    changes nothing (fit no longer calls tf.keras.utils.set_random_seed)."""
    data = make_moons(512, seed=0)
    losses = []
    for global_seed in (1, 2):
        tf.keras.utils.set_random_seed(global_seed)
        losses.append(train.fit(make_flow(small_config), data, SHORT, progress=False).history["loss"])
    assert losses[0] == losses[1]


@pytest.fixture
def optimizer_off_each_epoch(monkeypatch):
    """Whether Grappler is off at the end of each epoch of the next fit (with progress=True)."""
    seen = []
    monkeypatch.setattr(train.ProgressPrinter, "on_epoch_end",
                        lambda self, epoch, logs=None: seen.append(_grappler_off()))
    return seen


@pytest.mark.parametrize("deterministic, off, during", [
    pytest.param(False, False, False, marks=pytest.mark.slow),  # left as it was
    pytest.param(False, True, True, marks=pytest.mark.slow),
    (True, False, True),  # off while fit runs
    pytest.param(True, True, True, marks=pytest.mark.slow),
])
def test_grappler_setting_during_and_after_fit(small_flow, graph_optimizer_options, optimizer_off_each_epoch,
                                               deterministic, off, during):
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": off})
    train.fit(small_flow, make_moons(256), dataclasses.replace(TINY, deterministic=deterministic))
    assert optimizer_off_each_epoch == [during, during]
    assert _grappler_off() is off


def test_deterministic_must_be_a_bool():
    with pytest.raises(ValueError, match="deterministic must be True or False, got 'yes'"):
        train.TrainSettings(deterministic="yes")

"""Save and reload a trained flow with identical log_prob; damaged or mismatched saves are named."""

import json
import shutil

import numpy as np
import pytest
import tensorflow_probability as tfp

from flowlab import load_flow, save_flow, train
from flowlab.data import make_moons
from flowlab.flows import LAYER_FLOWS, FlowConfig, make_flow, maf_chain, standard_normal


def _moved(config: FlowConfig):
    """A flow whose weights are no longer the ones its config makes: each moved by seeded noise
    (what training does to them, without the seconds a training run costs)."""
    flow = make_flow(config)
    rng = np.random.default_rng(0)
    for variable in flow.trainable_variables:
        variable.assign_add(rng.normal(0.0, 0.1, variable.shape).astype(np.float32))
    return flow


def test_save_reload_round_trip(tmp_path):
    data = make_moons(500, seed=0)
    config = FlowConfig(num_layers=2, hidden_units=(16,), seed=5, loc=tuple(data.mean(axis=0).tolist()),
                        scale=tuple(data.std(axis=0).tolist()))
    flow = _moved(config)
    save_flow(flow, tmp_path / "saved")
    loaded, loaded_config = load_flow(tmp_path / "saved")
    assert loaded_config == config
    x = make_moons(200, seed=9)
    np.testing.assert_array_equal(loaded.log_prob(x).numpy(), flow.log_prob(x).numpy())
    # the flow load_flow builds before reading the weights (same config, same seed) differs from
    # the moved one: equal log_prob above means the weights really came from disk
    assert not np.allclose(make_flow(config).log_prob(x).numpy(), flow.log_prob(x).numpy(), atol=1e-3)
    assert json.loads((tmp_path / "saved" / "flow_config.json").read_text())["seed"] == 5


@pytest.mark.slow  # trains
def test_a_flow_trained_by_fit_saves_and_reloads(tmp_path):
    """Training wraps the flow in a Keras model: its save must still hold just the flow."""
    flow = make_flow(FlowConfig(num_layers=2, hidden_units=(8,), seed=1))
    train.fit(flow, make_moons(300, seed=0), train.TrainSettings(epochs=2, batch_size=100), progress=False)
    save_flow(flow, tmp_path / "trained")
    loaded, _ = load_flow(tmp_path / "trained")
    x = make_moons(50, seed=9)
    np.testing.assert_array_equal(loaded.log_prob(x).numpy(), flow.log_prob(x).numpy())


@pytest.mark.parametrize("family", LAYER_FLOWS)
def test_every_family_saves_and_reloads(tmp_path, family):
    config = FlowConfig(flow=family, num_layers=2, hidden_units=(8,), seed=1)
    flow = _moved(config)
    save_flow(flow, tmp_path / family)
    loaded, _ = load_flow(tmp_path / family)
    x = make_moons(50, seed=9)
    np.testing.assert_array_equal(loaded.log_prob(x).numpy(), flow.log_prob(x).numpy())
    assert not np.allclose(make_flow(config).log_prob(x).numpy(), flow.log_prob(x).numpy(), atol=1e-3)


def test_load_missing_flow_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no saved flow"):
        load_flow(tmp_path)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small trained MAF saved to a folder; tests damage copies of it."""
    folder = tmp_path_factory.mktemp("saved") / "flow"
    config = FlowConfig(num_layers=1, hidden_units=(4,), seed=1)
    save_flow(make_flow(config), folder)
    return folder


def _copy(saved, tmp_path):
    return shutil.copytree(saved, tmp_path / "copy")


def test_missing_weights_are_named(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    for path in folder.glob("weights*"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match="holds a flow configuration but no weights"):
        load_flow(folder)


def test_corrupt_weights_are_named(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    for path in folder.glob("weights.data*"):
        path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights in .* are damaged or do not fit the flow"):
        load_flow(folder)


def test_unreadable_config_is_named(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "flow_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="flow_config.json' is not a configuration written by flowlab.save_flow"):
        load_flow(folder)


@pytest.mark.parametrize("change", [
    {"hidden_units": [8]},  # other shapes
    {"num_layers": 2},  # more layers than were saved
    {"flow": "realnvp"},  # another family
])
def test_config_that_does_not_match_the_weights_is_refused(saved, tmp_path, change):
    folder = _copy(saved, tmp_path)
    config = json.loads((folder / "flow_config.json").read_text())
    (folder / "flow_config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(ValueError, match="do not fit the flow its flow_config.json describes"):
        load_flow(folder)


def test_fewer_layers_than_were_saved_is_refused(tmp_path):
    """Weights left over in the checkpoint are a mismatch too, not silently dropped."""
    config = FlowConfig(num_layers=2, hidden_units=(4,), seed=1)
    save_flow(make_flow(config), tmp_path)
    config_path = tmp_path / "flow_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "num_layers": 1}))
    with pytest.raises(ValueError, match="do not fit the flow"):
        load_flow(tmp_path)


def test_save_needs_a_flow_that_carries_its_config(tmp_path):
    td = tfp.distributions.TransformedDistribution(standard_normal(), maf_chain(num_layers=1, hidden_units=(4,)))
    with pytest.raises(TypeError, match="flow must be a flow made by flowlab.make_flow.*got _TransformedDistribution"):
        save_flow(td, tmp_path)


def test_config_saved_before_bins_and_bound_existed_loads_with_their_defaults(tmp_path):
    config = FlowConfig(flow="spline", num_layers=1, hidden_units=(4,), seed=1)
    save_flow(make_flow(config), tmp_path)
    config_path = tmp_path / "flow_config.json"
    saved = json.loads(config_path.read_text())
    assert saved["options"] == {"bins": 16, "bound": 5.0} == config.options
    config_path.write_text(json.dumps({k: v for k, v in saved.items() if k != "options"}))
    assert load_flow(tmp_path)[1] == config


def test_config_saved_with_every_familys_options_at_the_top_loads(tmp_path):
    """Before families had their own options, every config held bins, bound and log_scale_bound."""
    config = FlowConfig(flow="realnvp", num_layers=1, hidden_units=(4,), seed=1, options={"log_scale_bound": 2.0})
    save_flow(make_flow(config), tmp_path)
    config_path = tmp_path / "flow_config.json"
    saved = {k: v for k, v in json.loads(config_path.read_text()).items() if k != "options"}
    config_path.write_text(json.dumps({**saved, "bins": 16, "bound": 5.0, "log_scale_bound": 2.0}))
    assert load_flow(tmp_path)[1] == config


def test_spline_bins_and_bound_round_trip(tmp_path):
    config = FlowConfig(flow="spline", num_layers=1, hidden_units=(4,), options={"bins": 5, "bound": 2.5})
    save_flow(make_flow(config), tmp_path)
    flow, loaded = load_flow(tmp_path)
    assert loaded == config and flow.config == config


def test_flow_saved_before_log_scales_were_bounded_loads_unbounded(tmp_path):
    """Old saves have no log_scale_bound: they were trained unbounded and must load that way,
    or their log_prob would change wherever a log-scale is large."""
    config = FlowConfig(flow="maf", num_layers=1, hidden_units=(4,), seed=1, options={"log_scale_bound": None})
    flow = make_flow(config)
    for variable in flow.trainable_variables:  # large log-scales, where the bound would bite
        variable.assign(variable * 8.0)
    save_flow(flow, tmp_path)
    config_path = tmp_path / "flow_config.json"
    saved = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({k: v for k, v in saved.items() if k != "options"}))  # the old layout
    loaded, loaded_config = load_flow(tmp_path)
    assert loaded_config.options["log_scale_bound"] is None
    x = make_moons(200, seed=9) * 3
    np.testing.assert_array_equal(loaded.log_prob(x).numpy(), flow.log_prob(x).numpy())
    bounded = make_flow(FlowConfig(flow="maf", num_layers=1, hidden_units=(4,), seed=1))
    bounded.bijector.bijectors[0]._shift_and_log_scale_fn.set_weights(
        flow.bijector.bijectors[0]._shift_and_log_scale_fn.get_weights())
    assert not np.allclose(bounded.log_prob(x).numpy(), flow.log_prob(x).numpy(), atol=1e-3)


def test_actnorm_flow_round_trips_initialized(tmp_path):
    from flowlab.flows import initialize_actnorms

    config = FlowConfig(flow="realnvp", num_layers=1, hidden_units=(4,), seed=1, options={"actnorm": True})
    flow = make_flow(config)
    initialize_actnorms(flow, make_moons(500, seed=2))
    save_flow(flow, tmp_path)
    loaded, loaded_config = load_flow(tmp_path)
    assert loaded_config == config and bool(loaded.bijector.bijectors[0].initialized.numpy())
    x = make_moons(50, seed=3)
    np.testing.assert_array_equal(loaded.log_prob(x).numpy(), flow.log_prob(x).numpy())


def test_the_digits_save_and_load_are_the_studys_looked_up_from_io():
    """flowlab.io (the lab's core) imports no study: its image names come from flowlab.studies.digits.io on
    first use, the same functions under both names."""
    import flowlab.studies.digits.io
    import flowlab.io

    assert flowlab.io.save_image_flow is flowlab.studies.digits.io.save_image_flow
    from flowlab.io import load_image_flow
    assert load_image_flow is flowlab.studies.digits.io.load_image_flow
    assert {"save_image_flow", "load_image_flow"} <= set(dir(flowlab.io)) & set(flowlab.io.__all__)
    with pytest.raises(AttributeError, match="module 'flowlab.io' has no attribute 'save_image'"):
        flowlab.io.save_image  # noqa: B018

"""The chain stage by stage, and density snapshots taken during one training run."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow_probability as tfp

from flowlab import measure, plots
from flowlab.anatomy import DensitySnapshots, bijectors_in_sampling_order, chain_stages
from flowlab.data import make_moons
from flowlab.flows import LAYER_FLOWS, FlowConfig, make_flow
from flowlab.train import TrainSettings, fit

tfd, tfb = tfp.distributions, tfp.bijectors


@pytest.fixture(scope="module", params=LAYER_FLOWS)
def family_flow(request):
    return make_flow(FlowConfig(flow=request.param, num_layers=2, hidden_units=(8,), seed=5))


def test_stage_count_is_bijector_count_plus_one(family_flow):
    z = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    stages = chain_stages(family_flow, z)
    assert len(stages) == len(bijectors_in_sampling_order(family_flow)) + 1 == 2 * 2 + 1
    np.testing.assert_array_equal(stages[0].points, z)


def test_last_stage_is_the_flows_sample_for_the_same_base_points(family_flow):
    seed = (11, 12)  # a stateless seed: the same base draw inside and outside the flow
    z = family_flow.distribution.sample(200, seed=seed).numpy()
    sample = family_flow.sample(200, seed=seed).numpy()
    np.testing.assert_allclose(chain_stages(family_flow, z)[-1].points, sample, rtol=1e-5, atol=1e-5)


def test_each_stage_is_the_previous_one_through_one_bijector(family_flow):
    z = np.random.default_rng(1).normal(size=(20, 2)).astype(np.float32)
    stages = chain_stages(family_flow, z)
    for bijector, before, after in zip(bijectors_in_sampling_order(family_flow), stages, stages[1:]):
        np.testing.assert_allclose(bijector.forward(before.points).numpy(), after.points, rtol=1e-6)


def test_maf_stages_are_named_in_sampling_order():
    flow = make_flow(FlowConfig(num_layers=2, hidden_units=(4,)))
    names = [s.name for s in chain_stages(flow, np.zeros((2, 2), np.float32))]
    # tfb.Chain([MAF, Permute, MAF, Permute]) samples right to left: each Permute acts first.
    assert names == ["base z", "Permute [1, 0]", "MAF", "Permute [1, 0]", "MAF"]
    iaf = make_flow(FlowConfig(flow="iaf", num_layers=1, hidden_units=(4,)))
    assert [s.name for s in chain_stages(iaf, np.zeros((2, 2), np.float32))][-1] == "IAF"


def test_a_family_registered_after_import_has_its_short_names_in_figures(monkeypatch):
    """anatomy reads the families' short names when it names a stage, not once at import."""
    from flowlab import flows
    from flowlab.anatomy import stage_name

    class Squish(tfp.bijectors.Scale):
        pass

    monkeypatch.setitem(flows.FAMILIES, "squish", flows.Family(
        "squish", lambda **kw: tfp.bijectors.Chain([Squish(2.0)]), {}, dict, layer_names={"Squish": "SQ"}))
    assert stage_name(Squish(2.0)) == "SQ"
    assert stage_name(tfp.bijectors.Invert(Squish(2.0))) == "inverse SQ"


def test_a_permute_stage_swaps_the_coordinates():
    flow = make_flow(FlowConfig(num_layers=1, hidden_units=(4,)))
    z = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)
    np.testing.assert_array_equal(chain_stages(flow, z)[1].points, z[:, ::-1])


def test_chain_stages_rejects_a_plain_distribution():
    with pytest.raises(TypeError, match="flow must be a tfd.TransformedDistribution"):
        chain_stages(tfd.MultivariateNormalDiag(loc=[0.0, 0.0]), np.zeros((1, 2)))


def test_snapshots_record_the_density_before_and_during_training():
    flow = make_flow(FlowConfig(num_layers=1, hidden_units=(16,), seed=2))
    snapshots = DensitySnapshots(flow, epochs=(0, 2, 4), n=40, n_heldout=2000, seed=3)
    _, _, untrained = measure.density_on_grid(flow, lim=2.5, n=40)
    heldout = make_moons(2000, noise=0.05, seed=3)
    untrained_nll = -float(np.mean(flow.log_prob(heldout).numpy()))
    fit(flow, make_moons(1024, seed=1), TrainSettings(epochs=4, batch_size=128, steps_per_execution=1),
        progress=False, callbacks=[snapshots])
    assert [s.epoch for s in snapshots.snapshots] == [0, 2, 4]
    np.testing.assert_allclose(snapshots.snapshots[0].density, untrained, rtol=1e-5, atol=1e-12)
    assert snapshots.snapshots[0].heldout_nll == pytest.approx(untrained_nll, rel=1e-6)
    _, _, trained = measure.density_on_grid(flow, lim=2.5, n=40)
    np.testing.assert_allclose(snapshots.snapshots[-1].density, trained, rtol=1e-5, atol=1e-12)
    assert snapshots.snapshots[-1].heldout_nll < snapshots.snapshots[0].heldout_nll - 0.1


def test_snapshots_need_an_epoch():
    flow = make_flow(FlowConfig(num_layers=1, hidden_units=(4,)))
    with pytest.raises(ValueError, match="epochs must name at least one epoch"):
        DensitySnapshots(flow, epochs=())
    with pytest.raises(ValueError, match="epochs"):
        DensitySnapshots(flow, epochs=(-1,))


def test_chain_figure_has_one_titled_panel_per_stage():
    flow = make_flow(FlowConfig(num_layers=3, hidden_units=(4,)))
    z = np.random.default_rng(2).normal(size=(300, 2)).astype(np.float32)
    fig = plots.plot_chain_stages(flow, z)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [
        f"{i}: {s.name}" for i, s in enumerate(chain_stages(flow, z))]
    assert (visible[0].get_xlabel(), visible[-1].get_xlabel()) == ("$z_1$", "$x_1$")
    assert fig.get_figwidth() <= 10
    plt.close(fig)


def test_snapshot_figure_shares_one_colour_scale():
    flow = make_flow(FlowConfig(num_layers=1, hidden_units=(4,)))
    snapshots = DensitySnapshots(flow, epochs=(0,), n=30)
    snapshots.on_train_begin()
    sharp = type(snapshots.snapshots[0])(epoch=3, density=snapshots.snapshots[0].density * 4,
                                         heldout_nll=0.5)
    fig = plots.plot_density_snapshots([snapshots.snapshots[0], sharp], entropy=0.29)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    top = float(sharp.density.max())
    assert [im.get_clim() for im in images] == [(0.0, top), (0.0, top)]
    assert images[1].axes.get_title() == "epoch 3\nheld-out NLL 0.500"
    assert "0.290" in fig._suptitle.get_text()
    plt.close(fig)


def test_chains_side_by_side_have_one_row_per_flow_and_one_panel_per_stage():
    flows = {"MAF": make_flow(FlowConfig(num_layers=2, hidden_units=(4,))),
             "RealNVP, one layer": make_flow(FlowConfig(flow="realnvp", num_layers=1, hidden_units=(4,)))}
    z = np.random.default_rng(3).normal(size=(100, 2)).astype(np.float32)
    fig = plots.plot_chain_stages_by_flow(flows, z)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5 + 3
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == [f"{name}\ncoordinate 2" for name in flows]
    assert [ax.get_title() for ax in visible][5:] == ["0: base z", "1: Permute [1, 0]", "2: RealNVP"]
    assert visible[2].get_xlim() == visible[7].get_xlim()  # one scale per column: stage 2 of both flows
    assert visible[2].get_xticks().size > 0  # axes with ticks, not bare panels
    assert fig.get_figwidth() <= 10
    plt.close(fig)

"""The VAE / GAN / flow comparison: the summary's contract (means, spread, failures counted,
null where a model has no such number), failures scored as failures, and the `flowlab compare`
command (bad arguments exit 2 with one line; a tiny run writes the JSON and the figures)."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib.pyplot as plt
import pytest

from flowlab import cli
from flowlab.studies.compare import HEADLINE, MODELS, Trained, score_model, summarize


def _scores(log_p: float, nll: float | None, diverged: bool = False, collapse: bool = False) -> dict:
    return {"sample_log_p_true": log_p, "energy_distance": 0.01, "gap_disc_fraction": 0.0, "min_arc_ratio": 0.5,
            "train_seconds": 2.0, "heldout_nll": nll, "nll_upper_bound": None, "diverged": diverged,
            "mode_collapse": collapse}


def test_summary_means_spreads_and_counts_failures():
    per_seed = {0: {"flow": _scores(-0.5, 0.40), "gan": _scores(-0.1, None)},
                1: {"flow": _scores(-0.3, 0.30, collapse=True), "gan": _scores(-0.2, None)},
                2: {"flow": _scores(None, None, diverged=True), "gan": _scores(-0.3, None)}}
    summary = summarize(per_seed)
    flow, gan = summary["models"]["flow"], summary["models"]["gan"]
    assert flow["sample_log_p_true"] == pytest.approx(-0.4) and flow["heldout_nll"] == pytest.approx(0.35)
    assert flow["spread"]["heldout_nll"]["std"] == pytest.approx(0.0707107, rel=1e-5)
    assert (flow["diverged"], flow["mode_collapse"]) == (1, 1)
    assert gan["heldout_nll"] is None and gan["nll_upper_bound"] is None
    assert gan["spread"]["sample_log_p_true"]["min"] == pytest.approx(-0.3)
    assert summary["seeds"] == [0, 1, 2] and 0.27 < summary["entropy"] < 0.31
    assert set(flow["per_seed"]) == {"0", "1", "2"}
    json.dumps(summary)  # JSON as it stands: no NaN, no numpy types


def test_a_diverged_model_is_a_counted_failure_with_no_numbers():
    scores = score_model(Trained("flow", None, 1.5, diverged="loss became NaN in epoch 3"))
    assert scores["diverged"] is True and scores["train_seconds"] == 1.5
    assert all(scores[key] is None for key in HEADLINE if key != "train_seconds")


def test_parameters_count_every_trained_number_of_each_kind_of_model():
    from flowlab.flows import FlowConfig, make_flow
    from flowlab.studies.gan import GAN
    from flowlab.studies.vae import VAE

    # Dense 2->8 has 24 numbers; the encoder and decoder add 8->4 (36), the generator 8->2 (18)
    # and the discriminator 8->1 (9); the one-layer MAF of 4 hidden units has 32
    assert Trained("vae", VAE(hidden_units=(8,)), 0.0).parameters() == 2 * (24 + 36)
    assert Trained("gan", GAN(hidden_units=(8,)), 0.0).parameters() == (24 + 18) + (24 + 9)
    assert Trained("flow", make_flow(FlowConfig(num_layers=1, hidden_units=(4,))), 0.0).parameters() == 32
    assert Trained("flow", None, 1.5, diverged="NaN").parameters() is None


def test_every_registered_model_has_a_label_trainer_and_likelihood():
    assert {"vae", "gan", "flow", "flow_reverse_kl"} <= set(MODELS)
    for model in MODELS.values():
        assert model.label and callable(model.train) and callable(model.likelihood)


@pytest.mark.parametrize("arguments, message", [
    (["--seeds", "-1"], "argument --seeds: must be an integer from 0"),
    (["--epochs", "0"], "argument --epochs: must be an integer from 1"),
    (["--models", "diffusion"], "argument --models: invalid choice: 'diffusion'"),
    (["--samples", "10"], "argument --samples: must be an integer from 1,000"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", *arguments])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and err.count("\n") == 1


def test_an_unwritable_out_folder_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert cli.main(["compare", "--out", str(tmp_path / "file")]) == 2
    assert "argument --out: cannot write to the folder" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_json_contract_and_figures(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "flowlab", "compare", "--epochs", "2", "--samples", "1000",
                             "--seeds", "0", "1", "--json", "--out", str(out)], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert json.loads((out / "compare.json").read_text()) == summary
    assert set(summary["models"]) == set(MODELS) and summary["seeds"] == [0, 1]
    for name, model in summary["models"].items():
        for key in ("sample_log_p_true", "energy_distance", "train_seconds", "heldout_nll", "nll_upper_bound"):
            assert key in model, (name, key)
        assert isinstance(model["sample_log_p_true"], float) and model["train_seconds"] > 0
    models = summary["models"]
    assert models["gan"]["heldout_nll"] is None and models["gan"]["nll_upper_bound"] is None
    assert models["flow"]["heldout_nll"] > 0 and models["flow"]["nll_upper_bound"] is None
    assert models["vae"]["nll_upper_bound"] > summary["entropy"] and models["vae"]["heldout_nll"] is None
    for name in ("samples.png", "densities.png", "vae_mean.png", "gan.png", "kl_directions.png"):
        image = plt.imread(out / name)
        assert image[..., :3].std() > 0.05, f"{name} is blank"

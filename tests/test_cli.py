"""The flowlab command on a tiny budget, and its exits on bad arguments."""

import json
import subprocess
import sys

import pytest

from flowlab import cli, train

TINY = ["train", "--epochs", "2", "--samples", "400", "--layers", "1", "--hidden-units", "8",
        "--batch-size", "100"]


def _flowlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowlab", *args], capture_output=True, text=True,
                          timeout=300)


def test_train_json_writes_metrics_figures_and_flow(tmp_path):
    out = tmp_path / "run"
    result = _flowlab(*TINY, "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("train_seconds", "heldout_nll", "kl_to_exact", "epochs", "flow"):
        assert key in metrics
    assert metrics["epochs"] == 2 and metrics["flow"] == "maf" and metrics["n_samples"] == 100_000
    assert metrics["kl_to_exact"] == pytest.approx(metrics["heldout_nll"] - metrics["entropy"])
    assert json.loads((out / "metrics.json").read_text()) == metrics
    for name in ("data.png", "density.png", "samples.png", "loss.png"):
        assert (out / name).stat().st_size > 10_000
    assert (out / "flow" / "flow_config.json").is_file()


def test_train_other_family_in_process(tmp_path, capsys):
    assert cli.main([*TINY, "--flow", "realnvp", "--out", str(tmp_path), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["flow"] == "realnvp" and (tmp_path / "flow" / "flow_config.json").is_file()


@pytest.mark.parametrize("args, option", [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "ten"], "--epochs"),
    (["--noise", "-0.1"], "--noise"),
    (["--noise", "0"], "--noise"),
    (["--flow", "glow"], "--flow"),
    (["--hidden-units", "128,-1"], "--hidden-units"),
    (["--hidden-units", "128,abc"], "--hidden-units"),
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--learning-rate", "inf"], "--learning-rate"),
    (["--batch-size", "0"], "--batch-size"),
    (["--samples", "-5"], "--samples"),
    (["--seed", "-1"], "--seed"),
    (["--activation", "banana"], "--activation"),
])
def test_bad_arguments_exit_2_with_one_line(args, option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        status = cli.main(["train", *args, "--out", "unused"])
        raise SystemExit(status)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and "Traceback" not in err


def test_bad_arguments_from_the_shell_are_one_line():
    result = _flowlab("train", "--epochs", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == \
        "flowlab train: error: argument --epochs: must be a positive integer, got '0'"


def test_divergence_exits_1_with_message(monkeypatch, tmp_path, capsys):
    def diverge(*args, **kwargs):
        raise train.TrainingDiverged("training diverged: the loss became nan in epoch 1.")
    monkeypatch.setattr(train, "fit", diverge)
    status = cli.main([*TINY, "--out", str(tmp_path)])
    assert status == 1
    assert "training diverged" in capsys.readouterr().err


def test_no_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2


def test_train_writes_the_chain_and_training_figures(tmp_path, capsys):
    import matplotlib.image

    assert cli.main([*TINY, "--out", str(tmp_path), "--json"]) == 0
    layers = matplotlib.image.imread(tmp_path / "layers.png")
    training = matplotlib.image.imread(tmp_path / "training.png")
    # One layer: base, Permute, MAF in one row of a 4-column grid; snapshots 0, 1, 2 in one row.
    assert layers.shape[1] <= 1000 and training.shape[1] <= 1000  # fits a notebook at 100 dpi
    assert training.shape[1] > training.shape[0]
    assert float(layers[..., :3].std()) > 0.05 and float(training[..., :3].std()) > 0.05  # not blank

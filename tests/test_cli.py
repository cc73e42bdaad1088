"""The flowlab command on a tiny budget, and its exits on bad arguments."""

import json
import subprocess
import sys

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest

from flowlab import cli, evaluate, load_flow, train
from flowlab.flows import FlowConfig
from flowlab.studies.digits.flows import ImageFlowConfig

TINY = ["train", "--epochs", "2", "--samples", "400", "--layers", "1", "--hidden-units", "8",
        "--batch-size", "100"]


def _flowlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowlab", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
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
    # figures: PNG images of the shape drawn; the learned-vs-exact panels side by side
    shapes = {}
    for name in ("data.png", "density.png", "samples.png", "loss.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        image = plt.imread(out / name)
        assert image[..., :3].std() > 0.05, f"{name} is blank"
        shapes[name] = image.shape[1] / image.shape[0]
    assert shapes["density.png"] > 1.8 > 1.3 > shapes["data.png"] > 0.75
    assert shapes["loss.png"] > 1.2  # a 6 x 4 figure
    # the saved flow is the one that was scored: reloaded, it scores the same
    flow, config = load_flow(out / "flow")
    assert config.flow == "maf" and config.hidden_units == (8,)
    assert evaluate(flow)["heldout_nll"] == pytest.approx(metrics["heldout_nll"], abs=1e-5)


@pytest.mark.slow
def test_train_other_family_in_process(tmp_path, capsys):
    assert cli.main([*TINY, "--flow", "realnvp", "--out", str(tmp_path), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["flow"] == "realnvp" and (tmp_path / "flow" / "flow_config.json").is_file()


@pytest.fixture
def no_training(monkeypatch):
    """Make any attempt to train fail the test: bad input must be refused before training."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(train, "fit", refuse)
    monkeypatch.setattr(train, "run_training", refuse)  # what the digits flows train with


def _exit_status(argv: list[str]) -> int:
    """cli.main's exit status, whether it returns it or argparse exits."""
    try:
        return cli.main(argv)
    except SystemExit as exit_info:
        return exit_info.code


@pytest.mark.parametrize("args, needle", [
    (["--epochs", "0"], "argument --epochs: must be an integer from 1 to 10,000, got '0'"),
    (["--epochs", "ten"], "argument --epochs: "),
    (["--noise", "-0.1"], "argument --noise: must be a number from 0.01 to 1, got '-0.1'"),
    (["--noise", "0"], "argument --noise: "),
    (["--flow", "glow"], "argument --flow: invalid choice: 'glow'"),
    (["--hidden-units", "128,-1"], "argument --hidden-units: "),
    (["--hidden-units", "128,abc"], "argument --hidden-units: "),
    (["--learning-rate", "nan"], "argument --learning-rate: must be a number > 0 and <= 1, got 'nan'"),
    (["--learning-rate", "inf"], "argument --learning-rate: "),
    (["--learning-rate", "0"], "argument --learning-rate: "),
    (["--batch-size", "0"], "argument --batch-size: "),
    (["--samples", "-5"], "argument --samples: "),
    (["--seed", "-1"], "argument --seed: "),
    (["--activation", "banana"], "argument --activation: "),
    # sizes no one can mean: refused with the range allowed
    (["--samples", "100000000"], "argument --samples: must be an integer from 1 to 1,000,000, got '100000000'"),
    (["--epochs", "100000000"], "argument --epochs: must be an integer from 1 to 10,000"),
    (["--layers", "1000"], "argument --layers: must be an integer from 1 to 32, got '1000'"),
    (["--hidden-units", "100000,100000"],
     "argument --hidden-units: must be 1 to 4 integers, each from 1 to 1,024, got '100000,100000'"),
    (["--hidden-units", "8,8,8,8,8"], "argument --hidden-units: must be 1 to 4 integers"),
    (["--batch-size", "10000000"], "argument --batch-size: must be an integer from 1 to 1,000,000"),
    (["--noise", "1e-9"], "argument --noise: must be a number from 0.01 to 1, got '1e-9'"),
    (["--seed", "99999999999"], "argument --seed: must be an integer from 0 to 2,147,483,647"),
    (["--learning-rate", "1e6"], "argument --learning-rate: must be a number > 0 and <= 1, got '1e6'"),
    (["--bins", "1"], "argument --bins: must be an integer from 2 to 64, got '1'"),
    (["--bins", "many"], "argument --bins: "),
    (["--bound", "0"], "argument --bound: must be a number from 0.5 to 100, got '0'"),
    (["--bound", "inf"], "argument --bound: "),
    # options of the other data set, of the other family, and the digits' own
    (["--data", "pictures"], "argument --data: invalid choice: 'pictures'"),
    (["--data", "digits", "--flow", "maf"], "argument --flow: applies to --data moons only, not --data digits"),
    (["--data", "digits", "--samples", "500"], "argument --samples: applies to --data moons only"),
    (["--couplings", "1,1,1"], "argument --couplings: applies to --data digits only, not --data moons"),
    (["--flow", "maf", "--bins", "4"], "argument --bins: applies to --flow spline only, not --flow maf"),
    (["--data", "digits", "--couplings", "1,2"], "argument --couplings: must be 3 integers"),
    (["--data", "digits", "--couplings", "1,99,1"], "each from 0 to 16, not all zero, got '1,99,1'"),
    (["--data", "digits", "--couplings", "0,0,0"], "each from 0 to 16, not all zero, got '0,0,0'"),
    (["--data", "digits", "--hidden-channels", "0"], "argument --hidden-channels: must be an integer from 1 to 512"),
    (["--data", "digits", "--image-flow", "deep"], "argument --image-flow: invalid choice: 'deep'"),
    (["--data", "digits", "--batch-size", "2000"],
     "argument --batch-size: must be at most the 1350 training images, got 2000"),
    # fewer training points than one batch
    (["--samples", "50"], "argument --batch-size: must be at most --samples (50), got 128"),
    (["--samples", "50", "--batch-size", "51"], "argument --batch-size: must be at most --samples (50), got 51"),
])
def test_bad_arguments_exit_2_with_one_line_before_training(args, needle, tmp_path, capsys, no_training):
    out = tmp_path / "run"
    assert _exit_status(["train", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("flowlab train: error: ") and needle in err, err
    assert not out.exists()  # refused before anything was written


def _library_refusal(call, value) -> str:
    with pytest.raises(ValueError) as refused:
        call(value)
    return str(refused.value)


#: (flowlab train's option and the options it needs, the library's check of the same setting, bad values)
_SAME_BOUNDS = [
    (["--layers"], "num_layers", lambda v: FlowConfig(num_layers=v), [0, 33, 2.5]),
    (["--hidden-units"], "hidden_units", lambda v: FlowConfig(hidden_units=v), [(0,), (1025,), (8,) * 5, ()]),
    (["--seed"], "seed", lambda v: FlowConfig(seed=v), [-1, 2**31]),
    (["--seed"], "seed", lambda v: train.TrainSettings(seed=v), [-1, 2**31]),
    (["--flow", "spline", "--bins"], "bins", lambda v: FlowConfig(flow="spline", options={"bins": v}), [1, 65]),
    (["--flow", "spline", "--bound"], "bound", lambda v: FlowConfig(flow="spline", options={"bound": v}), [0.4, 101.0]),
    (["--epochs"], "epochs", lambda v: train.TrainSettings(epochs=v), [0, 10_001]),
    (["--batch-size"], "batch_size", lambda v: train.TrainSettings(batch_size=v), [0, 1_000_001]),
    (["--learning-rate"], "learning_rate", lambda v: train.TrainSettings(learning_rate=v), [0.0, 1.5]),
    (["--data", "digits", "--couplings"], "couplings", lambda v: ImageFlowConfig(couplings=v),
     [(0, 0, 0), (17, 1, 1), (1, 1)]),
    (["--data", "digits", "--hidden-channels"], "hidden_channels", lambda v: ImageFlowConfig(hidden_channels=v),
     [0, 513]),
]


@pytest.mark.parametrize("option, name, call, values", _SAME_BOUNDS, ids=lambda v: v[-1] if isinstance(v, list)
                         and isinstance(v[0], str) else None)
def test_the_library_and_the_cli_refuse_the_same_values_with_the_same_message(
        option, name, call, values, tmp_path, capsys, no_training):
    """_validate.LIMITS is the one source of bounds: FlowConfig, TrainSettings and ImageFlowConfig
    refuse what flowlab train refuses, saying 'NAME must be WHAT, got VALUE' where the command line
    says 'argument --OPTION: must be WHAT, got 'TEXT''."""
    for value in values:
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        library = _library_refusal(call, value)
        assert library.startswith(f"{name} must be ") and library.endswith(f", got {value!r}"), library
        must = library.removeprefix(f"{name} ").removesuffix(f", got {value!r}")
        assert _exit_status(["train", *option, text, "--out", str(tmp_path / "run")]) == 2
        assert capsys.readouterr().err == f"flowlab train: error: argument {option[-1]}: {must}, got {text!r}\n"


@pytest.mark.parametrize("out, reason", [
    ("a-file/run", "Not a directory"),  # a parent is a file
    ("a-file", "it is a file, not a folder"),
])
def test_out_that_cannot_be_written_exits_2_before_training(out, reason, tmp_path, capsys, no_training):
    (tmp_path / "a-file").write_text("not a folder")
    assert _exit_status([*TINY, "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert err == f"flowlab train: error: argument --out: cannot write to the folder " \
                  f"{str(tmp_path / out)!r}: {reason}\n"


def test_out_is_created_with_its_parents(tmp_path, monkeypatch):
    """A missing --out (and its parents) is created before training starts."""
    seen = []

    def stop(*args, **kwargs):
        seen.append((tmp_path / "new" / "run").is_dir())
        raise train.TrainingDiverged("stopped by the test")
    monkeypatch.setattr(train, "fit", stop)
    assert cli.main([*TINY, "--out", str(tmp_path / "new" / "run")]) == 1
    assert seen == [True]


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "flowlab train: error: argument --epochs: must be an integer from 1 to 10,000, got '0'"),
    (["--samples", "50"], "flowlab train: error: argument --batch-size: must be at most --samples (50), got 128"),
])
def test_bad_arguments_from_the_shell_are_one_line(args, message):
    result = _flowlab("train", *args)
    assert result.returncode == 2
    assert result.stderr == message + "\n" and result.stdout == ""


def test_epochs_1_trains_without_warm_up(tmp_path, monkeypatch):
    """One epoch leaves no room for a warm-up (an eighth of the epochs): the rate starts at its
    peak and decays."""
    runs = []
    real_fit = train.fit

    def fit_then_stop(flow, data, settings, **kwargs):  # train for real, then skip the scoring
        runs.append((settings, real_fit(flow, data, settings, **kwargs)))
        raise train.TrainingDiverged("stopped by the test after training")
    monkeypatch.setattr(train, "fit", fit_then_stop)
    assert cli.main([*TINY, "--epochs", "1", "--out", str(tmp_path), "--json"]) == 1
    ((settings, history),) = runs
    assert settings.epochs == 1 and settings.effective_warmup_epochs == 0
    assert float(settings.optimizer(400).learning_rate) == pytest.approx(settings.learning_rate)  # at step 0
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])


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


def _notebook(path, *sources: str) -> None:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in sources]), str(path))


def test_student_writes_placeholders_for_solution_regions(tmp_path, capsys):
    _notebook(tmp_path / "solution.ipynb", "x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION")
    assert cli.main(["student", "--solution", str(tmp_path / "solution.ipynb"),
                     "--out", str(tmp_path / "student.ipynb")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'student.ipynb'}\n"
    cells = nbformat.read(str(tmp_path / "student.ipynb"), as_version=4).cells
    (code,) = [cell.source for cell in cells if cell.cell_type == "code"]
    assert code.startswith("x = 1\nraise NotImplementedError(") and "y = 2" not in code


@pytest.mark.parametrize("make_solution, needle", [
    (lambda path: None, "argument --solution: no such file: "),
    (lambda path: _notebook(path, "x = 1", "print(x)"),
     "argument --solution: the solution notebook has no '### BEGIN SOLUTION' regions to strip"),
    (lambda path: path.write_text("not a notebook"), "argument --solution: "),
], ids=["missing", "no solution regions", "not a notebook"])
def test_student_with_a_bad_solution_exits_2_with_one_line(make_solution, needle, tmp_path, capsys):
    solution, out = tmp_path / "solution.ipynb", tmp_path / "student.ipynb"
    make_solution(solution)
    assert cli.main(["student", "--solution", str(solution), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"flowlab student: error: {needle}"), err
    assert not out.exists()


@pytest.mark.slow  # a whole in-process run: training, scoring, six figures
def test_train_writes_the_chain_and_training_figures(tmp_path, capsys):
    import matplotlib.image

    assert cli.main([*TINY, "--out", str(tmp_path), "--json"]) == 0
    layers = matplotlib.image.imread(tmp_path / "layers.png")
    training = matplotlib.image.imread(tmp_path / "training.png")
    # One layer: base, Permute, MAF in one row of a 4-column grid; snapshots 0, 1, 2 in one row.
    assert layers.shape[1] <= 1000 and training.shape[1] <= 1000  # fits a notebook at 100 dpi
    assert training.shape[1] > training.shape[0]
    assert float(layers[..., :3].std()) > 0.05 and float(training[..., :3].std()) > 0.05  # not blank


def test_bins_and_bound_reach_the_flow_config(tmp_path, monkeypatch):
    from flowlab import flows

    class Made(Exception):
        pass

    def capture(config):
        raise Made(config)
    monkeypatch.setattr(flows, "make_flow", capture)
    with pytest.raises(Made) as made:
        cli.main([*TINY, "--flow", "spline", "--bins", "4", "--bound", "2.5", "--out", str(tmp_path)])
    config = made.value.args[0]
    assert (config.flow, config.options) == ("spline", {"bins": 4, "bound": 2.5})


DIGITS_TINY = ["train", "--data", "digits", "--epochs", "1", "--couplings", "1,1,1", "--hidden-channels", "4",
               "--batch-size", "256"]


@pytest.mark.slow
def test_train_digits_json_writes_metrics_figures_and_flow(tmp_path, capsys):
    from flowlab.studies.digits.data import load_digit_splits
    from flowlab.studies.digits.train import bits_per_dim_estimate
    from flowlab.io import load_image_flow

    out = tmp_path / "digits"
    assert cli.main([*DIGITS_TINY, "--out", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert metrics["data"] == "digits" and metrics["dequantization"] == "variational" and metrics["epochs"] == 1
    baselines = metrics["baseline_bits_per_dim"]
    assert set(baselines) == {"independent_pixels", "gaussian"} and 2.3 < baselines["independent_pixels"] < 2.55
    assert metrics["ratio_to_independent_pixels"] == pytest.approx(
        metrics["test_bits_per_dim"] / baselines["independent_pixels"])
    assert metrics["test_bits_per_dim"] <= metrics["test_bits_per_dim_dequantization_bound"]  # the tighter bound
    assert metrics["split"] == {"train": 1350, "validation": 150, "test": 297, "seed": 0}
    for name in ("data.png", "samples.png", "nearest.png", "interpolation.png", "loss.png"):
        image = plt.imread(out / name)
        assert image[..., :3].std() > 0.05, f"{name} is blank"
    flow, dequantizer = load_image_flow(out / "flow")
    assert flow.config.couplings == (1, 1, 1) and dequantizer is not None
    again = bits_per_dim_estimate(flow, load_digit_splits().test, dequantizer, draws=64, seed=1, importance=True)
    assert again.mean == pytest.approx(metrics["test_bits_per_dim"], abs=1e-4)  # the saved flow is the one scored


def test_two_families_may_share_a_command_line_option(monkeypatch, tmp_path, capsys, no_training):
    """A family option offered by two families is one flag (argparse refuses a flag twice), and
    an option of neither chosen family names both owners."""
    import dataclasses

    from flowlab import flows

    twin = dataclasses.replace(flows.FAMILIES["spline"], name="spline_twin")
    monkeypatch.setitem(flows.FAMILIES, "spline_twin", twin)
    assert _exit_status(["train", "--flow", "maf", "--bins", "4", "--out", str(tmp_path / "run")]) == 2
    assert "argument --bins: applies to --flow spline or --flow spline_twin only, not --flow maf" in capsys.readouterr().err

"""The training verdict computed outside the kernel: the hand-over and the rebuild (quick), and
forged full-lab submissions that make the in-kernel training check pass without training (slow):
each fails training because the grader's own evaluation does not confirm it."""

from __future__ import annotations

import ast
import inspect
import json
import os
from pathlib import Path

import nbformat
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab.grader import verdict
from flowlab.flows import SoftClampedLogScale
from flowlab.grader.grade import grade_notebook
from flowlab.grader.student import check_name

tfb, tfd = tfp.bijectors, tfp.distributions
ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "notebooks" / "normalizing_flows.ipynb"
STUDENT = ROOT / "notebooks" / "normalizing_flows_student.ipynb"


def _lab_td(hidden=(16,), bound: float | None = None) -> tfd.TransformedDistribution:
    layers = []
    for _ in range(2):
        network = tfb.AutoregressiveNetwork(params=2, hidden_units=list(hidden), activation="relu")
        shift_and_log_scale = network if bound is None else SoftClampedLogScale(network, bound)
        layers += [tfb.MaskedAutoregressiveFlow(shift_and_log_scale), tfb.Permute([1, 0])]
    td = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(loc=[0.0, 0.0]), tfb.Chain(layers))
    td.log_prob(tf.zeros([1, 2]))  # build the networks' weights
    return td


def _saved(td, path: Path, monkeypatch) -> Path:
    monkeypatch.setattr(verdict, "_ARTIFACT", str(path))
    assert verdict.save({"td": td}) == "saved"
    return path


def test_a_handed_over_chain_is_rebuilt_with_its_weights(tmp_path, monkeypatch):
    td = _lab_td()
    path = _saved(td, tmp_path / "training.npz", monkeypatch)
    rebuilt = verdict._rebuild(path)
    points = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    np.testing.assert_allclose(rebuilt.log_prob(points).numpy(), td.log_prob(points).numpy(), rtol=1e-5, atol=1e-5)


def test_a_chain_with_bounded_log_scales_is_rebuilt_with_its_bound(tmp_path, monkeypatch):
    """The lab's chain soft-clamps its log-scales (issue 34): the rebuild must too, or the grader scores
    another density than the student trained. Weights large enough to saturate the bound show it."""
    td = _lab_td(bound=0.5)
    for network in (bij._shift_and_log_scale_fn.network for bij in td.bijector.bijectors[::2]):
        network.set_weights([3.0 * w if w.ndim > 1 else w + 0.5 for w in network.get_weights()])
    rebuilt = verdict._rebuild(_saved(td, tmp_path / "training.npz", monkeypatch))
    points = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    np.testing.assert_allclose(rebuilt.log_prob(points).numpy(), td.log_prob(points).numpy(), rtol=1e-5, atol=1e-5)
    unbounded = _lab_td()
    for mine, theirs in zip(unbounded.trainable_variables, td.trainable_variables, strict=True):
        mine.assign(theirs)
    assert not np.allclose(unbounded.log_prob(points).numpy(), td.log_prob(points).numpy(), atol=1e-2)


@pytest.mark.parametrize("bound", [0.0, -1.0, 1e9, "3", True])
def test_a_saved_bound_the_lab_never_makes_is_refused(tmp_path, monkeypatch, bound):
    path = _saved(_lab_td(bound=3.0), tmp_path / "training.npz", monkeypatch)
    with np.load(path) as artifact:
        arrays = dict(artifact)
    layers = json.loads(str(arrays.pop("structure")))
    layers[0]["log_scale_bound"] = bound
    np.savez(path, structure=np.array(json.dumps(layers)), **arrays)
    assert "log_scale_bound must be a number in (0, 20.0]" in verdict.judge(path, seed=1)["error"]


def test_an_untrained_chain_fails_the_outside_verdict(tmp_path, monkeypatch):
    result = verdict.judge(_saved(_lab_td(), tmp_path / "training.npz", monkeypatch), seed=123, n_samples=2000)
    assert result["passed"] is False and result["kl"] > verdict.MAX_KL


def test_nothing_handed_over_or_a_foreign_artifact_fails_with_its_reason(tmp_path):
    assert "was not handed over" in verdict.judge(tmp_path / "none.npz", seed=1)["error"]
    np.savez(tmp_path / "odd.npz", structure=np.array(json.dumps([{"kind": "exec", "code": "1"}])))
    assert "'exec' is not a layer the lab builds" in verdict.judge(tmp_path / "odd.npz", seed=1)["error"]
    np.save(tmp_path / "pickled.npy", np.array([object()], dtype=object), allow_pickle=True)
    assert verdict.judge(tmp_path / "pickled.npy", seed=1)["passed"] is False


def test_saving_outside_grading_does_nothing(monkeypatch):
    monkeypatch.setattr(verdict, "_ARTIFACT", None)
    assert verdict.save({}) == "not grading: nothing saved"


def test_the_training_verdict_has_one_bound_and_one_list_of_activations(tmp_path, monkeypatch):
    """The kernel's training check and the grader's outside verdict read one MAX_KL; the outside
    verdict rebuilds every activation flowlab's flows take (gelu included, as flows.ACTIVATIONS)."""
    from flowlab.grader import checks
    from flowlab.flows import ACTIVATIONS

    assert checks.MAX_KL is verdict.MAX_KL
    for activation in ACTIVATIONS:
        network = tfb.AutoregressiveNetwork(params=2, hidden_units=[4], activation=activation)
        td = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(loc=[0.0, 0.0]),
                                         tfb.Chain([tfb.MaskedAutoregressiveFlow(network), tfb.Permute([1, 0])]))
        td.log_prob(tf.zeros([1, 2]))
        path = _saved(td, tmp_path / f"{activation}.npz", monkeypatch)
        points = np.zeros((3, 2), np.float32)
        np.testing.assert_allclose(verdict._rebuild(path).log_prob(points).numpy(), td.log_prob(points).numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_taking_the_grading_environment_is_a_call_not_an_import(monkeypatch):
    """Importing checks and verdict leaves the environment alone; the grader's start-up file takes
    the key and the artifact's path out of it, before any cell runs, by calling them."""
    from flowlab.grader import _seal
    from flowlab.grader import checks
    from flowlab.grader import run as grade_run

    monkeypatch.setattr(checks, "_KEY", None)
    monkeypatch.setattr(verdict, "_ARTIFACT", None)
    monkeypatch.setenv(_seal.KEY_VARIABLE, "k3y")
    monkeypatch.setenv(verdict.ARTIFACT_VARIABLE, "/work/verdict/training.npz")
    assert checks.take_grading_key() is True and checks._KEY == "k3y"
    assert verdict.take_artifact_path() == "/work/verdict/training.npz"
    assert verdict._ARTIFACT == "/work/verdict/training.npz"
    assert _seal.KEY_VARIABLE not in os.environ and verdict.ARTIFACT_VARIABLE not in os.environ
    assert checks.take_grading_key() is False and checks._KEY == "k3y"  # a second call keeps what was taken
    assert verdict.take_artifact_path() is None and verdict._ARTIFACT == "/work/verdict/training.npz"
    startup = inspect.getsource(grade_run._lay_out)
    assert "flowlab.grader.checks.take_grading_key()" in startup
    assert "flowlab.grader.verdict.take_artifact_path()" in startup


@pytest.mark.parametrize("module", ["checks", "verdict"])
def test_importing_checks_or_verdict_changes_no_environment(module):
    """No statement at a module's top level touches os.environ (the functions above do, when called)."""
    import importlib

    tree = ast.parse(Path(importlib.import_module(f"flowlab.grader.{module}").__file__).read_text())
    top_level = [node for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    assert not [ast.unparse(node) for node in top_level if "environ" in ast.unparse(node)]


# --- forged submissions of the full lab (slow) ------------------------------------------------

def _ok_line(name: str) -> str:
    student = nbformat.read(str(STUDENT), as_version=4)
    cell = next(c for c in student.cells if check_name(c) == name)
    return cell.outputs[0]["text"].strip().removeprefix("OK: ")


# the dict behind the read-only REGISTRY that flowlab.checks.run reads (flowlab.grader.check_registry)
FORGE_TRAINING = ("import importlib\n"
                  "checker = importlib.import_module('flowlab.grader.' + 'check_registry')\n"
                  "registry = vars(checker)['_REG' + 'ISTRY']\n"
                  "real = registry['train' + 'ing']\n"
                  "registry['train' + 'ing'] = type(real)(real.name, lambda ns: {line!r}, real.points, (), ())\n")


def _forged(extra: str = "") -> nbformat.NotebookNode:
    """The solution trained for 1 epoch, with the training check's entry point replaced so that
    the genuine checker prints the sealed OK line (the case the issue found), plus ``extra``."""
    notebook = nbformat.read(str(SOLUTION), as_version=4)
    fit = next(c for c in notebook.cells if "model.fit(" in c.source and c.cell_type == "code")
    assert "epochs=epochs," in fit.source
    fit.source = fit.source.replace("epochs=epochs,", "epochs=1,")
    at = next(i for i, c in enumerate(notebook.cells) if check_name(c) == "training")
    notebook.cells.insert(at, nbformat.v4.new_code_cell(FORGE_TRAINING.format(line=_ok_line("training")) + extra))
    return notebook


FORGERIES = {
    # the case: entry point replaced, the seal computed by the genuine checker
    "forged": "",
    # also keeps the trained flow from being handed over
    "withholds": "handover = importlib.import_module('flowlab.' + 'verdict')\n"
                 "vars(handover)['sa' + 've'] = lambda ns: 'saved'\n",
    # hands over another object as td: a chain the grader cannot rebuild
    "swaps_td": "td_real = td\n"
                "td = tfd.TransformedDistribution(zdist, bijector=tfb.Chain([tfb.Exp(), tfb.Permute([1, 0])]))\n",
}


@pytest.fixture(scope="module")
def forged_grades(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forged")
    grades = {}
    for name, extra in FORGERIES.items():
        nbformat.write(_forged(extra), str(folder / f"{name}.ipynb"))
        grades[name] = grade_notebook(folder / f"{name}.ipynb", STUDENT, timeout=600)
    return grades


@pytest.mark.slow
@pytest.mark.parametrize("name, reason", [
    ("forged", "the grader's own evaluation, outside your kernel, finds the trained flow"),
    ("withholds", "was not handed over for the grader's own evaluation"),
    ("swaps_td", "was not handed over for the grader's own evaluation"),
])
def test_forged_training_fails_the_outside_verdict(forged_grades, name, reason):
    grade = forged_grades[name]
    assert grade.status == "graded"
    assert reason in grade.results["training"], grade.results["training"]
    assert any("passed in the kernel, but not the grader's own evaluation" in note for note in grade.notes)
    assert grade.results["moons_data"] is None  # the honest answers before it still count

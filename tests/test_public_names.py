"""The names users stand on, kept when the package moved into subpackages (issue 37): every old
flat module name (``flowlab.checks``, ``flowlab.vae``, ``flowlab.image_flows``, ...) imports the
very same module as its new path, with the attributes the notebooks, the hand-out and submitted
notebooks use; ``python -m flowlab.verdict`` and ``python -m flowlab.gradescope`` still run."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import flowlab
from flowlab._moved import MOVED

ROOT = Path(__file__).resolve().parents[1]

#: Old name -> attributes that notebooks, the README or instructors' scripts use.
USED = {
    "checks": ["run", "stand_in", "take_grading_key", "CHECKS", "LEDGER", "CheckFailed"],
    "verdict": ["save", "judge", "main", "take_artifact_path", "MAX_KL"],
    "gradescope": ["main", "build_autograder_zip"],
    "grade": ["grade_all", "grade_notebook", "grade_job", "Reference", "flowlab_sources"],
    "student": ["write_student_notebook", "check_name"],
    "vae": ["VAE", "fit_vae"],
    "gan": ["GAN", "GAN_SETTINGS", "fit_gan"],
    "reverse_kl": ["fit_reverse_kl", "REVERSE_KL_CONFIG"],
    "compare": ["MODELS", "compare_seed", "summarize"],
    "continuous": ["CNF_OPTIONS", "SOLVERS", "TRACES"],
    "flow_matching": ["CNF_CONFIG", "train_cnf", "euler_paths"],
    "image_flows": ["ImageFlowConfig", "make_image_flow", "ImageFlow"],
    "image_train": ["DIGITS_SETTINGS", "fit_digits"],
    "image_io": ["save_image_flow", "load_image_flow"],
    "digits_lab": ["run_digits"],
    "lms": ["fill_canvas", "fill_moodle"],
    "late": ["LatePolicy", "parse_time"],
    "gradebook": ["Gradebook"],
}
#: Names of the modules that stayed where they were, which notebooks use too.
STAYED = {
    "flows": ["SoftClampedLogScale", "LAYER_FLOWS", "FLOWS", "ACTIVATIONS", "FAMILIES", "FlowConfig", "make_flow",
              "standard_normal", "soft_clamp", "SPLINE_BINS"],
    "train": ["fit", "learning_rate_schedule", "StopOnNaN", "ProgressPrinter", "TrainSettings"],
    "anatomy": ["DensitySnapshots", "snapshot_epochs"],
    "bijectivity": ["check_bijection"],
    "lab_runs": ["standing"],
    "measure": ["evaluate", "gap_disc"],
}


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_the_old_name_imports_the_very_same_module(old, new):
    moved = importlib.import_module(new)
    assert importlib.import_module(f"flowlab.{old}") is moved
    assert sys.modules[f"flowlab.{old}"] is moved
    assert getattr(flowlab, old) is moved  # `import flowlab.checks` then `flowlab.checks.run(...)`
    assert moved.__name__ == new  # the module keeps its own name, spec and file
    assert moved.__spec__.name == new and Path(moved.__file__).is_file()


@pytest.mark.parametrize("old", sorted(USED))
def test_the_old_name_has_the_names_in_use(old):
    module = importlib.import_module(f"flowlab.{old}")
    assert [name for name in USED[old] if not hasattr(module, name)] == []


@pytest.mark.parametrize("name", sorted(STAYED))
def test_the_modules_that_stayed_keep_their_names(name):
    module = importlib.import_module(f"flowlab.{name}")
    assert module.__name__ == f"flowlab.{name}"
    assert [attribute for attribute in STAYED[name] if not hasattr(module, attribute)] == []


def test_the_notebooks_own_forms_give_the_same_module():
    import flowlab.checks
    from flowlab import checks
    from flowlab.grader import checks as moved

    assert flowlab.checks is checks is moved
    from flowlab.checks import run

    assert run is moved.run


def test_state_and_patches_are_shared_whichever_name_is_used(monkeypatch):
    """One module, one registry and ledger: a patch through the old name is seen through the new."""
    import flowlab.grade
    import flowlab.grader.grade

    def refuse(*args, **kwargs):
        raise AssertionError("patched")

    monkeypatch.setattr("flowlab.grade.grade_all", refuse)
    assert flowlab.grader.grade.grade_all is refuse
    import flowlab.checks
    import flowlab.grader.checks

    assert flowlab.checks.CHECKS is flowlab.grader.checks.CHECKS
    assert flowlab.checks.LEDGER is flowlab.grader.checks.LEDGER


def test_the_finder_leaves_other_names_alone():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("flowlab.no_such_module")
    with pytest.raises(AttributeError):
        flowlab.no_such_module  # noqa: B018
    assert sum(type(finder).__name__ == "MovedFinder" for finder in sys.meta_path) == 1


def _flowlab_names(source: str) -> set[tuple[str, str | None]]:
    """(module, attribute) for each ``flowlab.<module>[.<attribute>]`` and ``from flowlab import
    <module>`` in a cell's code."""
    found = {(module, attribute) for module, attribute in re.findall(r"\bflowlab\.(\w+)(?:\.(\w+))?", source)}
    for names in re.findall(r"^\s*from flowlab import ([\w, ]+)", source, flags=re.M):
        found |= {(name.strip(), None) for name in names.split(",")}
    return found


NOTEBOOKS = sorted([*(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "flowlab" / "reference").glob("*.ipynb"),
                    ROOT / "tests" / "data" / "mini_lab.ipynb"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_flowlab_name_a_notebook_uses_still_resolves(path):
    """Each ``flowlab.x`` and ``flowlab.x.y`` in a notebook's code resolves (read, not run)."""
    notebook = nbformat.read(str(path), as_version=4)
    used = set().union(*(_flowlab_names(cell.source) for cell in notebook.cells if cell.cell_type == "code"))
    assert used
    missing = []
    for module, attribute in sorted(used, key=str):
        if module in MOVED or (ROOT / "flowlab" / f"{module}.py").is_file() or (ROOT / "flowlab" / module).is_dir():
            owner = importlib.import_module(f"flowlab.{module}")
            if attribute and not hasattr(owner, attribute):
                missing.append(f"flowlab.{module}.{attribute}")
        elif not hasattr(flowlab, module):  # a package-level name: flowlab.make_moons, flowlab.evaluate
            missing.append(f"flowlab.{module}")
    assert missing == []


def _python(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_python_m_flowlab_gradescope_still_runs(tmp_path):
    result = _python("-m", "flowlab.gradescope", "--help", cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("usage: python -m flowlab.gradescope")


@pytest.mark.slow
def test_python_m_flowlab_verdict_still_runs(tmp_path):
    """The grader's outside verdict, by its old name: a missing artifact is a failed verdict, as JSON."""
    result = _python("-m", "flowlab.verdict", str(tmp_path / "missing.npz"), "0", cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    verdict = json.loads(result.stdout)
    assert verdict["passed"] is False and "not handed over" in verdict["error"]
    moved = _python("-m", "flowlab.grader.verdict", str(tmp_path / "missing.npz"), "0", cwd=ROOT)
    assert moved.returncode == 0 and json.loads(moved.stdout) == verdict


@pytest.mark.slow
def test_a_fresh_interpreter_imports_the_old_names_first():
    """Without the package imported first by anything else: what a submitted notebook's first cell does."""
    code = ("import flowlab.checks, flowlab.grader.checks, sys\n"
            "assert flowlab.checks is flowlab.grader.checks\n"
            "from flowlab import gradescope, verdict\n"
            "assert verdict is sys.modules['flowlab.grader.verdict'] and gradescope.main\n"
            "from flowlab.cli import main\n"
            "print('ok')\n")
    result = _python("-c", code, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]

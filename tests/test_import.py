"""`import flowlab` and the CLI's help are light: no TensorFlow, no pyplot until needed."""

import subprocess
import sys

import pytest

import flowlab

HEAVY = ("tensorflow", "tensorflow_probability", "matplotlib.pyplot", "sklearn", "nbformat")


def _loaded_after(code: str, env: dict[str, str]) -> list[str]:
    """Run ``code`` in a fresh Python; return which HEAVY modules it left imported."""
    probe = f"{code}\nimport sys\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])  # the list printed above


def test_import_flowlab_imports_no_tensorflow_but_selects_keras2(clean_env):
    code = "import os, flowlab\nassert os.environ['TF_USE_LEGACY_KERAS'] == '1', os.environ"
    assert _loaded_after(code, clean_env) == []


@pytest.mark.parametrize("argv", [["--help"], ["student", "--help"], ["grade", "--help"],
                                  ["check", "--help"]])
def test_help_imports_nothing_heavy(clean_env, argv):
    code = ("from flowlab import cli\n"
            "try:\n"
            f"    cli.main({argv!r})\n"
            "except SystemExit as exit_info:\n"
            "    assert exit_info.code == 0, exit_info.code")
    assert _loaded_after(code, clean_env) == []


def test_help_from_the_shell_lists_the_commands(clean_env):
    result = subprocess.run([sys.executable, "-m", "flowlab", "--help"], capture_output=True, text=True,
                            env=clean_env, timeout=120)
    assert result.returncode == 0 and result.stderr == ""
    for command in ("train", "student", "grade"):
        assert command in result.stdout


@pytest.mark.parametrize("name, module", [
    ("make_moons", "flowlab.data"), ("moons_log_prob", "flowlab.data"), ("moons_entropy", "flowlab.data"),
    ("evaluate", "flowlab.measure"), ("fit", "flowlab.train"), ("TrainSettings", "flowlab.train"),
    ("TrainingDiverged", "flowlab.train"), ("FlowConfig", "flowlab.flows"), ("make_flow", "flowlab.flows"),
    ("save_flow", "flowlab.io"), ("load_flow", "flowlab.io"),
])
def test_public_names_load_from_their_module(name, module):
    assert getattr(flowlab, name) is getattr(sys.modules[module], name)


def test_submodules_are_attributes_and_everything_listed_exists():
    for name in ("data", "flows", "plots", "train", "io", "measure", "checks", "vae", "gan", "reverse_kl"):
        assert getattr(flowlab, name) is sys.modules[f"flowlab.{name}"]
    for name in flowlab.__all__:
        assert name in dir(flowlab) and getattr(flowlab, name) is not None
    from flowlab import checks, plots  # the notebooks' own import
    assert checks.__name__ == "flowlab.grader.checks" and plots.__name__ == "flowlab.plots"


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'flowlab' has no attribute 'make_moon'"):
        flowlab.make_moon  # noqa: B018

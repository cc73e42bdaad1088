"""The declared stack: pyproject.toml, environment.yml and flowlab's version guard agree."""

import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from flowlab import _keras

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _requirement(name: str) -> Requirement:
    return next(Requirement(d) for d in PROJECT["dependencies"] if Requirement(d).name == name)


def test_environment_yml_matches_pyproject():
    wanted = PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert sorted(r for r in pip_section if r != "-e .") == sorted(wanted)
    assert "-e ." in pip_section
    python = next(d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"


def test_tf_keras_range_is_tensorflows():
    assert _requirement("tensorflow").specifier == _requirement("tf-keras").specifier


@pytest.mark.parametrize("python, supported", [
    ("3.9", False), ("3.10", True), ("3.11", True), ("3.12", True), ("3.13", True), ("3.14", False)])
def test_python_range(python, supported):
    """3.13 is Colab's Python; 3.14 has no TensorFlow wheel yet."""
    assert (Version(python) in SpecifierSet(PROJECT["requires-python"])) is supported


def _minors(requirement: Requirement, major: int, top: int) -> list[tuple[int, int]]:
    """The (major, minor) pairs whose ``.0`` release the requirement admits."""
    return [(major, m) for m in range(top) if Version(f"{major}.{m}.0") in requirement.specifier]


@pytest.mark.parametrize("package", ["tensorflow", "tf-keras", "tensorflow-probability"])
def test_version_guard_reads_the_declared_specifiers(package):
    guarded = _keras.SUPPORTED["tensorflow" if package == "tf-keras" else package]
    assert _requirement(package).specifier == guarded


def test_version_guard_agrees_with_declared_tensorflow_range():
    minors = _minors(_requirement("tensorflow"), 2, 40)
    assert (minors[0], minors[-1]) == (_keras.MIN_TF, _keras.MAX_TF)
    assert len(minors) == _keras.MAX_TF[1] - _keras.MIN_TF[1] + 1  # no hole in the range


def test_version_guard_agrees_with_declared_tfp_range():
    assert _minors(_requirement("tensorflow-probability"), 0, 40) == [_keras.TFP_MINOR]


def test_every_subpackage_is_a_listed_package():
    """pyproject lists flowlab's packages one by one: a subpackage missing there would be left out
    of the wheel (and of every student's and grader's install) without an error."""
    package = ROOT / "flowlab"
    on_disk = {".".join(path.parent.relative_to(ROOT).parts) for path in package.rglob("__init__.py")
               if "__pycache__" not in path.parts}
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert on_disk <= listed
    assert listed - on_disk == {"flowlab.reference", "flowlab.notebooks", "flowlab.notebooks.data"}  # data only


def test_the_console_script_is_the_commands_main():
    assert PROJECT["scripts"] == {"flowlab": "flowlab.cli:main"}

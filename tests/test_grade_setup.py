"""What check and grade need before a notebook runs: the packaged reference notebook (one
source with the repository's student notebook), the runner's packages (a missing one is one line
naming it and its pip line, never a table of zeros), and a runner that runs no cell is a crash
with its reason, not a silent zero."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

from flowlab import cli
from flowlab.grader import _setup as _grade_setup
from flowlab.cli import grading as cli_grading
from flowlab.grader.grade import Job, flowlab_sources, grade_job
from flowlab.grader.student import make_student_notebook

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "notebooks" / "normalizing_flows.ipynb"
HANDOUT = ROOT / "notebooks" / "normalizing_flows_student.ipynb"
MINI = ROOT / "tests" / "data" / "mini_lab.ipynb"


def test_packaged_reference_is_the_handout_byte_for_byte():
    assert _grade_setup.REFERENCE.is_file()
    assert _grade_setup.REFERENCE.read_bytes() == HANDOUT.read_bytes(), \
        "run `flowlab student` to regenerate both copies of the student notebook"


def test_check_and_grade_default_to_the_packaged_reference():
    parser = cli.build_parser()
    for command in (["check", "lab.ipynb"], ["grade", "lab.ipynb"]):
        assert parser.parse_args(command).reference == _grade_setup.REFERENCE


def test_student_command_writes_the_handout_and_the_packaged_reference(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(SOLUTION, tmp_path / "notebooks" / SOLUTION.name)
    packaged = tmp_path / "package" / "reference.ipynb"
    packaged.parent.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_grading, "REFERENCE", packaged)
    assert cli.main(["student"]) == 0
    handout = tmp_path / cli.STUDENT
    assert handout.read_bytes() == packaged.read_bytes() == HANDOUT.read_bytes()


def _without(monkeypatch, missing: str) -> None:
    real = _grade_setup.importlib.util.find_spec
    monkeypatch.setattr(_grade_setup.importlib.util, "find_spec",
                        lambda name, *a: None if name == missing else real(name, *a))


@pytest.fixture
def no_grading(monkeypatch):
    """Fail the test if any notebook would be graded."""
    def refuse(*args, **kwargs):
        raise AssertionError("a notebook was graded although the runner is missing")
    monkeypatch.setattr("flowlab.grader.grade.grade_notebook", refuse)
    monkeypatch.setattr("flowlab.grader.grade.grade_all", refuse)


def _named_requirement(message: str) -> Requirement:
    """The requirement in 'grading needs REQUIREMENT, ...'."""
    return Requirement(message.split("grading needs ", 1)[1].split(", ")[0])


def _declared(name: str) -> Requirement:
    """pyproject.toml's core requirement on ``name``."""
    text = (ROOT / "pyproject.toml").read_text()
    dependencies = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    lines = [line.strip().strip('",') for line in dependencies.splitlines()]
    return next(Requirement(line) for line in lines if line and not line.startswith("#")
                and Requirement(line).name == name)


@pytest.mark.parametrize("missing", ["nbval", "pytest", "ipykernel", "nbformat"])
def test_missing_runner_package_is_one_line_naming_it_and_the_pip_line(monkeypatch, missing):
    _without(monkeypatch, missing)
    message = _grade_setup.missing_grading_requirement("check")
    assert message is not None and "\n" not in message
    assert message.startswith(f"flowlab check: error: grading needs {missing}")
    assert ", which is not installed in this Python" in message
    named = _named_requirement(message)
    assert (named.name, named.specifier) == (missing, _declared(missing).specifier)
    assert str(named.specifier)  # a declared range, not a bare name
    assert f"pip install '{named}'" in message


@pytest.mark.parametrize("command", ["check", "grade"])
def test_check_and_grade_stop_before_any_notebook_when_the_runner_is_missing(
        monkeypatch, capsys, no_grading, tmp_path, command):
    _without(monkeypatch, "nbval")
    notebook = tmp_path / "lab.ipynb"
    shutil.copy(HANDOUT, notebook)
    assert cli.main([command, str(notebook)] + (["--out", str(tmp_path / "g")] if command == "grade" else [])) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and f"flowlab {command}: error: grading needs nbval" in err
    assert not (tmp_path / "g").exists()


def test_unsupported_runner_version_is_named(monkeypatch):
    real = _grade_setup.metadata.version
    monkeypatch.setattr(_grade_setup.metadata, "version",
                        lambda name: "0.12.0" if name == "nbval" else real(name))
    message = _grade_setup.missing_grading_requirement("grade")
    assert message.startswith("flowlab grade: error: grading needs nbval")
    assert _named_requirement(message).specifier == _declared("nbval").specifier
    assert ", but found nbval 0.12.0 in this Python" in message


def test_the_declared_requirement_is_found_by_its_name_as_packaging_reads_it(monkeypatch):
    """Names compare as packaging normalises them (case, ``_``, ``.``); requirements with a marker
    (an extra's, a platform's) are not what a plain install brings; an unparsable line is skipped."""
    declared = ["Jupyter_Client >= 8.0", "nbval[extra]>=0.11,<0.12", "psutil>=5; extra == 'test'",
                "not a requirement !!", "psutil>=5.9"]
    monkeypatch.setattr(_grade_setup.metadata, "requires", lambda name: declared)
    assert _grade_setup._declared("jupyter-client") == "Jupyter_Client>=8.0"
    assert _grade_setup._declared("nbval") == "nbval[extra]>=0.11,<0.12"
    assert _grade_setup._declared("psutil") == "psutil>=5.9"
    assert _grade_setup._declared("ipykernel") == "ipykernel"  # not declared: its bare name


def test_packaging_is_declared_since_import_flowlab_imports_it():
    import sys

    import flowlab  # noqa: F401

    assert "packaging" in sys.modules
    assert str(_declared("packaging").specifier)


def test_a_runner_that_runs_no_cell_is_a_crash_with_its_reason(tmp_path, monkeypatch):
    """Like a Python without pytest: the run exits 1 having run nothing. That is a crash naming the
    runner's last words, not 'graded' with every check 'did not run'."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho '/usr/bin/python: No module named pytest' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr("flowlab.grader.run.sys.executable", str(fake))
    reference = nbformat.writes(make_student_notebook(nbformat.read(str(MINI), as_version=4)))
    grade = grade_job(Job("lab.ipynb", MINI.read_bytes(), reference, flowlab_sources(), timeout=60))
    assert grade.status == "crashed"
    assert grade.score == 0
    for message in grade.results.values():
        assert message == "not run: the grader's runner ran no cell (/usr/bin/python: No module named pytest)"

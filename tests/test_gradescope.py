"""Gradescope: the autograder zip, and run_autograder in a temporary root laid out like
Gradescope's (source/, submission/, results/), which must always leave a valid results.json:
for an honest notebook, a crashing one, a hanging one, and when nothing usable was submitted."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from flowlab import cli
from flowlab.grader import gradescope
from flowlab.grader.grade import Grade

MINI = Path(__file__).resolve().parent / "data" / "mini_lab.ipynb"
ZSAMPLES, BIJECTORS = (next(i for i, c in enumerate(nbformat.read(str(MINI), as_version=4).cells) if c.id == name)
                       for name in ("zsamples", "bijectors"))  # the mini lab's cells, by name
TEST_KEYS = {"name", "score", "max_score", "status", "output", "output_format", "visibility"}


@pytest.fixture
def reference(mini_reference) -> Path:
    return mini_reference


@pytest.fixture
def wheel(tmp_path) -> Path:
    """A stand-in wheel file (run_autograder is tried with this repository's flowlab installed)."""
    path = tmp_path / "flowlab-0.1.0-py3-none-any.whl"
    path.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    return path


def _autograder_root(tmp_path: Path, zip_path: Path) -> Path:
    root = tmp_path / "autograder"
    for folder in ("source", "submission", "results"):
        (root / folder).mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root / "source")
        for info in archive.infolist():  # zipfile drops the modes: restore them as Gradescope does
            (root / "source" / info.filename).chmod(info.external_attr >> 16 or 0o644)
    return root


def _run_autograder(root: Path) -> dict:
    environment = {**os.environ, gradescope.ROOT_VARIABLE: str(root),
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([str(root / "source" / "run_autograder")], env=environment, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((root / "results" / "results.json").read_text())


def _valid(results: dict) -> None:
    assert isinstance(results["score"], float) and results["output_format"] == "md"
    for test in results["tests"]:
        assert set(test) == TEST_KEYS and test["status"] in ("passed", "failed")
        assert test["score"] == (test["max_score"] if test["status"] == "passed" else 0)
    assert results["score"] == sum(test["score"] for test in results["tests"])


def test_zip_holds_executable_scripts_the_wheel_and_the_reference(tmp_path, wheel, reference):
    out = gradescope.build_autograder_zip(wheel, tmp_path / "ag.zip", reference=reference, timeout=120,
                                          visibility="after_published")
    with zipfile.ZipFile(out) as archive:
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        setup = archive.read("setup.sh").decode()
        run = archive.read("run_autograder").decode()
        assert archive.read("reference.ipynb") == reference.read_bytes()
    assert set(modes) == {"setup.sh", "run_autograder", wheel.name, "reference.ipynb"}
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert f"-m pip install --no-cache-dir ./{wheel.name}" in setup
    assert run.rstrip().endswith("\"$python\" -m flowlab.gradescope --timeout=120 --memory-mb=4096 "
                                 "--visibility=after_published --reference=reference.ipynb")


def test_results_carry_each_checks_reason_and_hint_in_markdown():
    grade = Grade("lab.ipynb", "timeout", {"data": None, "flow": "not run: out of time. Hint: train less."},
                  {"data": 1.0, "flow": 3.0}, notes=["check cell 'flow' was edited"], seconds=12.4)
    results = gradescope.results_for(grade, "hidden")
    _valid(results)
    assert results["tests"][1]["output"] == "**Failed:** not run: out of time.\n\n*Hint:* train less."
    assert results["visibility"] == "hidden" and results["execution_time"] == 12
    assert "Status: **timeout**" in results["output"] and "- check cell 'flow' was edited" in results["output"]
    with pytest.raises(ValueError, match="visibility must be one of visible, hidden"):
        gradescope.results_for(grade, "public")


def test_nothing_submitted_and_a_broken_grader_still_write_results(tmp_path, reference):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "answers.pdf").write_text("%PDF")
    results = gradescope.run_autograder(root, reference)
    assert results["score"] == 0 and "no .ipynb file was submitted (found: answers.pdf)" in results["output"]
    assert json.loads((root / "results" / "results.json").read_text()) == results
    nbformat.write(nbformat.read(str(MINI), as_version=4), str(root / "submission" / "lab.ipynb"))
    unusable = tmp_path / "not_a_reference.ipynb"
    unusable.write_text("{}")
    results = gradescope.run_autograder(root, unusable)
    assert results["score"] == 0 and results["output"].startswith("**Not graded:** the autograder failed (")


def test_cli_writes_the_zip_and_refuses_what_is_not_a_wheel(tmp_path, wheel, capsys, monkeypatch):
    out = tmp_path / "autograder.zip"
    assert cli.main(["gradescope", "--wheel", str(wheel), "--out", str(out)]) == 0
    assert zipfile.is_zipfile(out) and "set Gradescope's timeout above 600 s" in capsys.readouterr().out
    assert cli.main(["gradescope", "--wheel", str(tmp_path / "x.zip"), "--out", str(out)]) == 2
    assert "argument --wheel: not a flowlab wheel file" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert cli.main(["gradescope"]) == 2
    assert "no dist/flowlab-*.whl here; build it with" in capsys.readouterr().err


def _submission(extra: str | None, after: int) -> nbformat.NotebookNode:
    notebook = nbformat.read(str(MINI), as_version=4)
    if extra is not None:
        notebook.cells.insert(after + 1, nbformat.v4.new_code_cell(extra))
    return notebook


@pytest.mark.slow
@pytest.mark.parametrize("kind, extra, after", [
    ("honest", None, 0),
    ("crashes", "import os\nos._exit(1)", ZSAMPLES - 1),
    ("hangs", "import time\ntime.sleep(3600)", BIJECTORS),
])
def test_run_autograder_in_a_gradescope_root(tmp_path, wheel, reference, kind, extra, after):
    zip_path = gradescope.build_autograder_zip(wheel, tmp_path / "ag.zip", reference=reference, timeout=60)
    root = _autograder_root(tmp_path, zip_path)
    nbformat.write(_submission(extra, after), str(root / "submission" / "my lab.ipynb"))
    results = _run_autograder(root)
    _valid(results)
    statuses = {test["name"]: test["status"] for test in results["tests"]}
    assert list(statuses) == ["moons_data", "base_distribution", "base_samples", "bijectors"]
    if kind == "honest":
        assert results["score"] == 5 and set(statuses.values()) == {"passed"}
    elif kind == "crashes":  # the kernel died before the third check
        assert "Status: **crashed**" in results["output"] and statuses["base_samples"] == "failed"
        assert statuses["moons_data"] == "passed" and results["score"] == 2
    else:  # stopped at the timeout; the checks before it count
        assert "Status: **timeout**" in results["output"] and statuses["bijectors"] == "failed"
        assert results["score"] == 3
        assert "ran out of time" in next(t["output"] for t in results["tests"] if t["name"] == "bijectors")

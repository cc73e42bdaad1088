"""flowlab as students and instructors install it: the wheel built as the README says, installed
alone into a fresh virtual environment as the README's Colab/hub section says, then the commands
that section names, run from a folder that is not the repository: `flowlab check` gives the
solution every point and the untouched student version only what it earns, and `flowlab grade`
grades both. All slow: a fresh environment and three gradings of the full lab."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import nbformat
import pytest

from flowlab.grader.student import check_name

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "notebooks" / "normalizing_flows.ipynb"
HANDOUT = ROOT / "notebooks" / "normalizing_flows_student.ipynb"


def _run(command: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PYTHONPATH", "VIRTUAL_ENV", "FLOWLAB_", "PYTEST_"))}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`python -m build --wheel`, as the README tells instructors."""
    out = tmp_path_factory.mktemp("dist")
    result = _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], cwd=out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (built,) = out.glob("flowlab-*-py3-none-any.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with only the wheel installed (`pip install <the wheel>`);
    returns its bin folder."""
    env = tmp_path_factory.mktemp("student") / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    result = _run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return env / "bin"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A student's folder: the solution and the untouched hand-out, nothing else."""
    folder = tmp_path_factory.mktemp("work")
    (folder / "solution.ipynb").write_bytes(SOLUTION.read_bytes())
    (folder / "untouched.ipynb").write_bytes(HANDOUT.read_bytes())
    return folder


def _max_points() -> float:
    handout = nbformat.read(str(HANDOUT), as_version=4)
    return sum(cell.metadata.flowlab.get("points", 1) for cell in handout.cells if check_name(cell))


def test_wheel_ships_the_reference_and_not_the_solution(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert archive.read("flowlab/reference/normalizing_flows_student.ipynb") == HANDOUT.read_bytes()
    assert not any(name.endswith("normalizing_flows.ipynb") for name in names)  # students install it


def test_wheel_ships_every_module_of_every_subpackage(wheel):
    """The subpackages (flows, studies, grader, cli) are in the wheel, every module of them."""
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("flowlab/") and name.endswith(".py")}
    package = ROOT / "flowlab"
    assert shipped == {path.relative_to(ROOT).as_posix() for path in package.rglob("*.py")
                       if "__pycache__" not in path.parts}


def test_wheel_ships_the_notebooks_the_handout_points_to(wheel):
    """flowlab.notebooks is notebooks/ itself: the same bytes, and the solution not among them."""
    from flowlab.grader.lab_notebooks import DATA, NOTEBOOKS

    with zipfile.ZipFile(wheel) as archive:
        shipped = {name.removeprefix("flowlab/notebooks/") for name in archive.namelist()
                   if name.startswith("flowlab/notebooks/")}
        assert shipped == set(NOTEBOOKS) | set(DATA)
        for name in shipped:
            assert archive.read(f"flowlab/notebooks/{name}") == (ROOT / "notebooks" / name).read_bytes(), name


def test_notebooks_copies_them_out_of_the_installed_wheel(installed, tmp_path):
    """`flowlab notebooks DIR` from the wheel alone: the hand-out and the notebooks it points to, with
    their data; a second run without --force changes nothing and says how to overwrite."""
    from flowlab.grader.lab_notebooks import DATA, NOTEBOOKS

    result = _run([str(installed / "flowlab"), "notebooks", "lab"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert (tmp_path / "lab" / HANDOUT.name).read_bytes() == HANDOUT.read_bytes()
    for name in (*NOTEBOOKS, *DATA):
        assert (tmp_path / "lab" / name).read_bytes() == (ROOT / "notebooks" / name).read_bytes(), name
    again = _run([str(installed / "flowlab"), "notebooks", "lab"], cwd=tmp_path)
    assert again.returncode == 2 and "pass --force to overwrite them" in again.stderr, again.stderr


def test_installed_reference_is_the_repositorys(installed, work):
    result = _run([str(installed / "python"), "-c",
                   "import flowlab, flowlab.grader._setup as s; print(flowlab.__file__); print(s.REFERENCE)"],
                  cwd=work)
    assert result.returncode == 0, result.stderr
    package, reference = result.stdout.split()
    assert Path(package).is_relative_to(installed.parent)  # the wheel's flowlab, not the repository's
    assert Path(reference).read_bytes() == HANDOUT.read_bytes()


def test_check_gives_the_solution_every_point(installed, work):
    result = _run([str(installed / "flowlab"), "check", "solution.ipynb"], cwd=work)
    total = _max_points()
    assert result.stdout.splitlines()[-1] == f"graded: {total:g}/{total:g} points, 15 of 15 checks passed", \
        result.stdout + result.stderr[-3000:]
    assert result.returncode == 0


def test_check_gives_the_untouched_handout_only_what_it_earns(installed, work):
    result = _run([str(installed / "flowlab"), "check", "untouched.ipynb"], cwd=work)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == f"graded: 2/{_max_points():g} points, 2 of 15 checks passed", result.stdout
    assert any(line.startswith("base_distribution") and line.endswith("pass") for line in lines)
    assert "note: transformed_distribution: judged with the reference's `b` (yours failed bijectors)" in lines
    assert "not defined. Hint: answer the TODO in the cell above" in result.stdout


def test_grade_grades_both(installed, work):
    result = _run([str(installed / "flowlab"), "grade", "solution.ipynb", "untouched.ipynb",
                   "--out", "grades", "--workers", "2"], cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    with (work / "grades" / "grades.csv").open() as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    total = f"{_max_points():g}"
    assert (rows["solution.ipynb"]["status"], rows["solution.ipynb"]["points"]) == ("graded", total)
    assert (rows["untouched.ipynb"]["status"], rows["untouched.ipynb"]["points"]) == ("graded", "2")
    assert (work / "grades" / "submissions" / "untouched" / "feedback.md").is_file()

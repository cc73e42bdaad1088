"""``flowlab notebooks DIR``: the hand-out and the notebooks it points to, copied out of the package
(here: of the source checkout; tests/test_wheel.py runs it from the installed wheel), never over a
file unasked. The wheel ships exactly the files the command copies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flowlab.grader import lab_notebooks
from flowlab.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_the_wheel_ships_what_the_command_copies():
    """pyproject.toml's package data of flowlab.notebooks (mapped to notebooks/) is the module's list."""
    assert {"flowlab.notebooks", "flowlab.notebooks.data"} <= set(SETUPTOOLS["packages"])
    assert SETUPTOOLS["package-dir"] == {"flowlab.notebooks": "notebooks", "flowlab.notebooks.data": "notebooks/data"}
    data = SETUPTOOLS["package-data"]
    shipped = set(data["flowlab.notebooks"]) | {f"data/{name}" for name in data["flowlab.notebooks.data"]}
    assert shipped == set(lab_notebooks.NOTEBOOKS) | set(lab_notebooks.DATA)
    assert all((ROOT / "notebooks" / name).is_file() for name in shipped)
    assert "normalizing_flows.ipynb" not in shipped  # the solution never ships


def test_the_notebooks_read_only_data_the_command_copies():
    """Every data/ file a shipped notebook opens is copied next to it."""
    import re

    opened = {match for name in lab_notebooks.NOTEBOOKS
              for match in re.findall(r"data/[\w.-]+\.json", (ROOT / "notebooks" / name).read_text())}
    assert opened == set(lab_notebooks.DATA)


def test_notebooks_copies_the_handout_and_the_notebooks_it_points_to(tmp_path, capsys):
    out = tmp_path / "lab"
    assert main(["notebooks", str(out)]) == 0
    assert (out / "normalizing_flows_student.ipynb").read_bytes() == \
        (ROOT / "notebooks" / "normalizing_flows_student.ipynb").read_bytes()
    for name in (*lab_notebooks.NOTEBOOKS, *lab_notebooks.DATA):
        assert (out / name).read_bytes() == (ROOT / "notebooks" / name).read_bytes(), name
    assert not (out / "normalizing_flows.ipynb").exists()
    assert f"copied {1 + len(lab_notebooks.NOTEBOOKS) + len(lab_notebooks.DATA)} files to {out}/" in capsys.readouterr().out


def test_notebooks_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "lab"
    out.mkdir()
    (out / "flow_families.ipynb").write_text("my own edits")
    assert main(["notebooks", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"flowlab notebooks: error: argument DIR: {str(out)!r} already holds flow_families.ipynb; "
                     "pass --force to overwrite them, or name another folder")
    assert (out / "flow_families.ipynb").read_text() == "my own edits"
    assert not (out / "vae_gan_flow.ipynb").exists()  # nothing copied at all
    assert main(["notebooks", str(out), "--force"]) == 0
    assert (out / "flow_families.ipynb").read_bytes() == (ROOT / "notebooks" / "flow_families.ipynb").read_bytes()


def test_notebooks_refuses_a_file_as_the_folder(tmp_path, capsys):
    target = tmp_path / "lab.ipynb"
    target.write_text("{}")
    assert main(["notebooks", str(target)]) == 2
    assert capsys.readouterr().err.strip() == f"flowlab notebooks: error: argument DIR: {str(target)!r} is a file, not a folder"

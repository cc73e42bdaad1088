"""Gradescope as deployed: what its autograder really gets. The metadata follows
gradescope/autograder_samples' ``docs/submission_metadata.md`` (``created_at``, ``assignment``,
``users``) with each user's own ``assignment`` dates, which carry their extension; the submission
folder holds whatever was uploaded (a zip or a GitHub repository unpacks into subfolders);
``setup.sh`` runs on Gradescope's Ubuntu base image, where Gradescope's samples install Python
with apt. The notebook runner is stood in for, so these run in milliseconds."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from flowlab.grader import grade as grade_module
from flowlab.grader import gradescope
from flowlab.grader.grade import Grade

DUE = "2025-12-01T23:59:00.000000-08:00"


def _metadata(root: Path, created: str, own_due: str | None = None, due: str = DUE) -> None:
    user = {"email": "ann@uni.edu", "id": 1234, "name": "Ann Lee"}
    if own_due is not None:
        user["assignment"] = {"release_date": "2025-11-01T00:00:00.000000-08:00", "due_date": own_due,
                              "late_due_date": None}
    (root / "submission_metadata.json").write_text(json.dumps(
        {"id": 1, "created_at": created, "assignment": {"due_date": due, "late_due_date": None, "title": "Lab"},
         "users": [user], "previous_submissions": []}))


def _grade() -> Grade:
    return Grade("lab.ipynb", "graded", {"a": None, "b": None}, {"a": 14.0, "b": 14.0})


@pytest.mark.parametrize("created, own_due, days", [
    ("2025-12-03T10:00:00.000000-08:00", "2025-12-05T23:59:00.000000-08:00", 0),  # extension not run out
    ("2025-12-03T10:00:00.000000-08:00", None, 2),  # no extension: the assignment's date
    ("2025-12-02T21:14:01.000-0800", None, 1),  # an offset without a colon (Python 3.10's fromisoformat fails)
])
def test_lateness_counts_from_the_students_own_due_date(tmp_path, created, own_due, days):
    _metadata(tmp_path, created, own_due)
    grade = _grade()
    gradescope._lateness(tmp_path, grade, late_penalty=10, late_cap=100)
    assert grade.days_late == days and grade.late_penalty == pytest.approx(2.8 * days)


def test_unreadable_metadata_never_costs_points(tmp_path):
    _metadata(tmp_path, "yesterday evening")
    grade = _grade()
    gradescope._lateness(tmp_path, grade, late_penalty=10, late_cap=100)
    assert grade.final == 28 and grade.late_penalty == 0
    assert grade.notes == ["the late policy was not applied: submission_metadata.json could not be read "
                           "(created_at must be an ISO 8601 time such as 2026-12-01T23:59 or 2026-12-01T23:59+01:00, "
                           "got 'yesterday evening')"]


def _notebook(path: Path, checks: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = [{"cell_type": "code", "metadata": {"flowlab": {"check": f"c{i}"}}, "source": "", "outputs": []}
             for i in range(checks)]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_notebooks_are_found_in_subfolders_and_the_lab_is_chosen(tmp_path):
    submission = tmp_path / "submission"
    _notebook(submission / "repo" / "scratch.ipynb", 0)
    lab = _notebook(submission / "repo" / "labs" / "normalizing_flows.ipynb", 15)
    _notebook(submission / "repo" / ".ipynb_checkpoints" / "normalizing_flows-checkpoint.ipynb", 15)
    _notebook(submission / "__MACOSX" / "repo" / "._normalizing_flows.ipynb", 15)
    assert gradescope.find_notebooks(submission) == [lab, submission / "repo" / "scratch.ipynb"]


def test_a_notebook_in_a_subfolder_is_graded_and_the_choice_said(tmp_path, mini_reference, monkeypatch):
    graded = []

    def fake(path, reference, timeout, memory_mb):  # the notebook runner, stood in for
        graded.append(path)
        return _grade()

    monkeypatch.setattr(grade_module, "grade_notebook", fake)
    lab = _notebook(tmp_path / "submission" / "lab-main" / "lab.ipynb", 3)
    _notebook(tmp_path / "submission" / "lab-main" / "old.ipynb", 1)
    results = gradescope.run_autograder(tmp_path, mini_reference)
    assert graded == [lab] and results["score"] == 28
    assert "2 notebooks were submitted; graded lab-main/lab.ipynb (the one with most of the lab's check cells)" \
        in results["output"]


def _shim(folder: Path, name: str, script: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("#!/bin/sh\n" + script)
    (folder / name).chmod(0o755)


def _setup_script(tmp_path: Path) -> Path:
    wheel = tmp_path / "flowlab-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    zip_path = gradescope.build_autograder_zip(wheel, tmp_path / "ag.zip")
    import zipfile

    source = tmp_path / "autograder" / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        (source / "setup.sh").write_bytes(archive.read("setup.sh"))
    return source / "setup.sh"


def test_setup_installs_python_with_apt_when_the_image_lacks_it_and_stops_on_an_old_one(tmp_path):
    setup = _setup_script(tmp_path)
    shims = tmp_path / "bin"
    log = tmp_path / "apt.log"
    _shim(shims, "apt-get", f'echo "$@" >> {log}\n')
    # an image whose python3 is 3.8 and has no venv module (Ubuntu 20.04 without python3-venv)
    _shim(shims, "python3", 'case "$*" in *--version*) echo "Python 3.8.10";; *) exit 1;; esac\n')
    environment = {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
                   gradescope.ROOT_VARIABLE: str(tmp_path / "autograder")}
    done = subprocess.run(["bash", str(setup)], env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert log.read_text().splitlines() == ["update -qq", "install -y -qq python3 python3-venv python3-pip"]
    assert done.stderr.strip() == ("setup.sh: flowlab needs Python 3.10 to 3.13, and this image has Python 3.8.10; "
                                   "choose the Ubuntu 22.04 or 24.04 base image in the autograder's settings")
    assert not (tmp_path / "autograder" / "flowlab-venv").exists()

"""What a submission leaves running is ended with it: a process that detached into a new session
(setsid, its parent gone, so it is nobody's child any more) does not outlive its grading."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

from flowlab.grader.grade import Job, flowlab_sources, grade_job
from flowlab.grader.student import make_student_notebook

MINI = Path(__file__).resolve().parent / "data" / "mini_lab.ipynb"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())  # a zombie is dead


@pytest.mark.slow
@pytest.mark.parametrize("how", ["setsid", "setsid_clean_env_other_folder"])
def test_detached_processes_do_not_outlive_the_grading(tmp_path, how):
    pidfile = tmp_path / "pid"
    launch = ("setsid sh -c 'sleep 300 >/dev/null 2>&1 & echo $! > {pidfile}'" if how == "setsid" else
              "cd / && env -i setsid sh -c 'sleep 300 >/dev/null 2>&1 & echo $! > {pidfile}'")
    notebook = nbformat.read(str(MINI), as_version=4)
    after_setup = next(i for i, cell in enumerate(notebook.cells) if cell.id == "setup") + 1
    notebook.cells.insert(after_setup, nbformat.v4.new_code_cell(
        f"import subprocess\nsubprocess.run({launch.format(pidfile=pidfile)!r}, shell=True, check=True)"))
    reference = nbformat.writes(make_student_notebook(nbformat.read(str(MINI), as_version=4)))
    grade = grade_job(Job("lab.ipynb", nbformat.writes(notebook).encode(), reference, flowlab_sources(), timeout=120))
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert not _alive(pid), "the detached process outlived its grading"
        assert grade.status == "graded" and grade.score == 5
        assert any("left 1 process running after its run; the grader ended them" in n for n in grade.notes)
    finally:
        if _alive(pid):
            os.kill(pid, 9)


@pytest.mark.slow
def test_an_interrupted_class_run_ends_its_running_notebooks_at_once(tmp_path, mini_reference):
    """Ctrl-C (or `kill`) on the grader: the notebooks still running end now, not at their timeout."""
    from flowlab.grader.grade import grade_all

    hanging = nbformat.read(str(MINI), as_version=4)
    hanging.cells.append(nbformat.v4.new_code_cell("import time\ntime.sleep(3600)"))
    (tmp_path / "class" / "slow").mkdir(parents=True)
    (tmp_path / "class" / "quick").mkdir(parents=True)
    nbformat.write(hanging, str(tmp_path / "class" / "slow" / "lab.ipynb"))
    (tmp_path / "class" / "quick" / "lab.ipynb").write_text("not a notebook")

    def interrupt_once_the_kernel_runs(grade) -> None:
        time.sleep(20)  # the other notebook is running by now
        raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        grade_all(sorted((tmp_path / "class").rglob("*.ipynb")), mini_reference, tmp_path / "out", workers=2,
                  timeout=600, progress=interrupt_once_the_kernel_runs)
    assert time.monotonic() - start < 120  # not the 600 s timeout


def test_the_private_copy_holds_subpackages_read_only(tmp_path):
    """Each submission imports a private, read-only copy of flowlab: a subpackage flowlab gains
    must be in it too, or the kernel would import it from elsewhere (or not at all)."""
    from flowlab.grader.run import _lay_out

    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "grader").mkdir()
    for name in ("__init__.py", "grader/_nbval_plugin.py", "sub/__init__.py", "sub/part.py"):
        (package / name).write_text(f"# {name}\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "stale.py").write_text("")
    sources = flowlab_sources(package)
    assert [name for name, _ in sources] == ["__init__.py", "grader/_nbval_plugin.py", "sub/__init__.py",
                                             "sub/part.py"]
    work = tmp_path / "work"
    work.mkdir()
    copy = _lay_out(work, Job("lab.ipynb", b"{}", "{}", sources, timeout=30))
    assert (copy / "sub" / "part.py").read_text() == "# sub/part.py\n"
    assert not os.access(copy / "sub" / "part.py", os.W_OK) or os.geteuid() == 0
    assert (copy / "sub").stat().st_mode & 0o777 == 0o555
    from flowlab.grader.run import remove
    remove(work)  # the read-only copy is still removable
    assert not work.exists()

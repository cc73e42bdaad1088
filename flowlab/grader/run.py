"""The sandboxed run of one prepared submission: a fresh temporary folder (its home, temp and
IPython folders too), a private read-only copy of flowlab first on ``PYTHONPATH``, a memory
limit, a timeout for the whole notebook, ``pytest --nbval-lax`` under :mod:`flowlab.grader._launcher`
(which ends whatever the notebook leaves running), then the training verdict recomputed outside
the kernel (:mod:`flowlab.grader.verdict`) and the private copy verified."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import nbformat

from flowlab.grader import _seal
from flowlab.grader.prepare import JUDGED_CHECK
from flowlab.grader.records import Grade, Job, Reference
from flowlab.grader.verdicts import all_failed, check_notes, last_line, verdicts
from flowlab.grader.student import check_name
from flowlab.grader.verdict import MAX_KL as MAX_JUDGED_KL

__all__ = ["PLUGIN", "run_in_sandbox", "remove", "digest", "file_digest", "stop_running"]

#: The launchers running now, in this process: an interrupted grader ends them (stop_running).
_RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()


def stop_running() -> int:
    """Ask every launcher this process started and that still runs to end its notebook (and all
    that notebook started); returns how many were asked. For a grader that is interrupted."""
    with _RUNNING_LOCK:
        running = [process for process in _RUNNING if process.poll() is None]
    for process in running:
        process.terminate()
    return len(running)

PLUGIN = "_flowlab_nbval_plugin"


def digest(files: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files}


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def kill_tree(process: subprocess.Popen) -> None:
    """Kill pytest and everything it started (the kernel runs in its own session)."""
    try:
        import psutil

        children = psutil.Process(process.pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - the process may be gone already
        children = []
    for victim in children:
        try:
            victim.kill()
        except Exception:  # noqa: BLE001
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def remove(folder: Path) -> None:
    def writable(function: Callable, path: str, _: object) -> None:
        os.chmod(path, stat.S_IRWXU)
        os.chmod(os.path.dirname(path), stat.S_IRWXU)
        function(path)

    shutil.rmtree(folder, onexc=writable) if sys.version_info >= (3, 12) else \
        shutil.rmtree(folder, onerror=writable)


def executed(graded: nbformat.NotebookNode, records: list[dict]) -> str:
    outputs = {r["id"]: r["outputs"] for r in records if r.get("when") == "call"}
    for cell in graded.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = [nbformat.from_dict(o) for o in outputs.get(cell.get("id"), [])]
    return nbformat.writes(graded)


def run_in_sandbox(job: Job, reference: Reference, graded: nbformat.NotebookNode, key: str, work: Path,
                   grade: Grade, progress: Callable[[str], None] | None = None) -> Grade:
    """Run the prepared notebook ``graded`` in ``work`` and fill in ``grade``: status, verdicts,
    log, executed notebook and notes. ``key`` seals the official checks' OK lines. ``progress``, if
    given, gets a line as each check cell finishes and every 15 s without one (flowlab.grader.progress)."""
    package = _lay_out(work, job)
    notebook = work / "run" / "submission.ipynb"
    nbformat.write(graded, str(notebook))
    env = _environment(work, key, job)
    with _following(work / "results.jsonl", graded, progress):
        returncode, timed_out = _execute(_command(package, job, work, notebook), work, env, job.timeout)
    leftovers = int((work / "leftovers").read_text()) if (work / "leftovers").is_file() else 0
    if leftovers:
        grade.notes.append(f"the notebook left {leftovers} process{'es' if leftovers != 1 else ''} running "
                           "after its run; the grader ended them")
    records = _records(work / "results.jsonl")
    log_text = (work / "pytest.log").read_text(encoding="utf-8", errors="replace")
    grade.log = log_text + _stderr_of_cells(records)
    grade.executed = executed(graded, records)
    grade.status, why = _status(records, timed_out, returncode, log_text, job.timeout)
    grade.results = verdicts(records, reference, grade.status, why, grade.notes)
    grade.notes += check_notes(records, reference)
    judge_outside(grade, work, env, reference)
    changed = sorted(name for name, data in digest(job.sources).items() if file_digest(package / name) != data)
    if changed:
        reason = "the submission changed the grader's files while it ran: " + ", ".join(changed)
        grade.notes.append(reason)
        grade.results = all_failed(reference, reason)
    return grade


def _following(results: Path, graded: nbformat.NotebookNode,
               progress: Callable[[str], None] | None) -> contextlib.AbstractContextManager:
    """A thread that follows the plugin's records and reports to ``progress``; nothing without one."""
    if progress is None:
        return contextlib.nullcontext()
    from flowlab.grader.progress import CellProgress

    cells = [(cell.get("id"), check_name(cell)) for cell in graded.cells  # numbered as in the student's notebook:
             if cell.get("cell_type") == "code" and "flowlab_grader" not in cell.get("metadata", {})]  # not ours
    return CellProgress(results, cells, progress)


def _lay_out(work: Path, job: Job) -> Path:
    """The run's folders: a read-only private copy of flowlab (returned) and the nbval plugin, an
    IPython start-up file that takes the key out of the environment, home, temp and run folders."""
    grader = work / "grader"
    package = grader / "flowlab"
    package.mkdir(parents=True)
    for name, data in job.sources:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_bytes(data)
    (grader / f"{PLUGIN}.py").write_bytes(dict(job.sources)["grader/_nbval_plugin.py"])
    startup = work / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-flowlab-grading.py").write_text(
        "import flowlab.grader.checks\n"
        "import flowlab.grader.verdict\n"
        "flowlab.grader.checks.take_grading_key()  # out of the environment before any cell runs\n"
        "flowlab.grader.verdict.take_artifact_path()  # and where to hand the trained flow over\n")
    subpackages = sorted((path for path in package.rglob("*") if path.is_dir()), reverse=True)  # deepest first
    for folder in (*subpackages, package, grader, startup):
        for path in folder.iterdir():
            if path.is_file():
                path.chmod(0o444)
        folder.chmod(0o555)
    for name in ("home", "tmp", "run", "verdict"):
        (work / name).mkdir()
    (work / "run" / "pytest.ini").write_text("[pytest]\n")
    return package


def _environment(work: Path, key: str, job: Job) -> dict[str, str]:
    """The run's environment: ours, less anything flowlab, pytest, Jupyter or matplotlib would read."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLOWLAB_", "PYTEST_", "JUPYTER_", "IPYTHON", "PYTHONPATH", "MPL"))}
    env.update(PYTHONPATH=str(work / "grader"), IPYTHONDIR=str(work / "ipython"), HOME=str(work / "home"),
               TMPDIR=str(work / "tmp"), PYTHONDONTWRITEBYTECODE="1", JUPYTER_PLATFORM_DIRS="1",
               FLOWLAB_VERDICT_FILE=str(work / "verdict" / "training.npz"),
               FLOWLAB_NBVAL_RESULTS=str(work / "results.jsonl"), **{_seal.KEY_VARIABLE: key})
    if job.threads:  # N notebooks at once on N cores: one each, not N fighting over all of them
        env.update(TF_NUM_INTRAOP_THREADS=str(job.threads), TF_NUM_INTEROP_THREADS="1",
                   OMP_NUM_THREADS=str(job.threads))
    return env


def _command(package: Path, job: Job, work: Path, notebook: Path) -> list[str]:
    """``pytest --nbval-lax`` on the notebook, under the launcher (memory limit, leftovers ended)."""
    return [sys.executable, "-I", str(package / "grader" / "_launcher.py"), str(job.memory_mb), str(work / "leftovers"),
            str(notebook), "--nbval-lax", "--nbval-current-env", "-p", PLUGIN, "-p", "no:cacheprovider", "-q",
            f"--nbval-cell-timeout={max(1, int(job.timeout))}", "-c", str(work / "run" / "pytest.ini"),
            f"--rootdir={work / 'run'}"]


def _execute(command: list[str], work: Path, env: dict[str, str], timeout: float) -> tuple[int | None, bool]:
    """Run ``command`` for at most ``timeout`` seconds, output to ``work/pytest.log``; returns its
    exit status and whether it timed out (then the launcher is asked to end everything, then killed)."""
    timed_out = False
    with (work / "pytest.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=work / "run", env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        with _RUNNING_LOCK:
            _RUNNING.add(process)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            process.terminate()  # the launcher ends pytest and everything under it, detached ones too
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        finally:
            if process.poll() is None:
                kill_tree(process)
            with _RUNNING_LOCK:
                _RUNNING.discard(process)
    return process.returncode, timed_out


def _records(path: Path) -> list[dict]:
    """The plugin's records, one per cell phase (a line cut short by a kill is skipped)."""
    records = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return records


def _stderr_of_cells(records: list[dict]) -> str:
    parts = [f"--- stderr of cell {r['id']} ---\n" + "".join(o.get("text", "") for o in r["outputs"]
             if o.get("output_type") == "stream" and o.get("name") == "stderr") for r in records
             if any(o.get("name") == "stderr" for o in r["outputs"])]
    return "\n" + "\n".join(parts) if parts else ""


def _status(records: list[dict], timed_out: bool, returncode: int | None, log_text: str,
            timeout: float) -> tuple[str, str]:
    """The run's status and why its unfinished checks did not run."""
    died = any("kernel died" in (r.get("message") or "") or "Kernel dead" in (r.get("message") or "")
               for r in records)
    if timed_out or any(r.get("timed_out") for r in records):
        return "timeout", f"not run: the notebook ran out of time ({timeout:g} s)"
    if died:
        return "crashed", "not run: the kernel died (killed, out of memory, or os._exit)"
    if returncode not in (0, 1):
        return "crashed", f"not run: pytest stopped with exit status {returncode} (see the log)"
    if not records:  # pytest ran no cell at all: never a silent zero
        return "crashed", f"not run: the grader's runner ran no cell ({last_line(log_text)})"
    return "graded", "the check did not run"


def judge_outside(grade: Grade, work: Path, env: dict[str, str], reference: Reference) -> None:
    """Recompute the training check's verdict outside the kernel (:mod:`flowlab.grader.verdict`), on
    points from a seed the kernel never saw; a pass in the kernel that this does not confirm fails."""
    if JUDGED_CHECK not in reference.cells or grade.results.get(JUDGED_CHECK) is not None:
        return
    seed = secrets.randbelow(2**31)
    command = [sys.executable, "-m", "flowlab.grader.verdict", str(work / "verdict" / "training.npz"), str(seed)]
    clean = {k: v for k, v in env.items() if k != _seal.KEY_VARIABLE}
    try:
        done = subprocess.run(command, cwd=work, env=clean, capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL)
        verdict = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as error:
        verdict = {"passed": False, "error": f"the grader's own evaluation failed ({type(error).__name__})"}
    if verdict.get("passed"):
        return
    reason = verdict.get("error") or (f"the grader's own evaluation, outside your kernel, finds the trained flow "
                                      f"{verdict['kl']:.2f} nats from the exact density on fresh points; a trained "
                                      f"flow gets within {MAX_JUDGED_KL}")
    grade.results[JUDGED_CHECK] = reason
    grade.notes.append(f"the '{JUDGED_CHECK}' check passed in the kernel, but not the grader's own evaluation "
                       f"outside it: {reason} (possible tampering: review the notebook)")

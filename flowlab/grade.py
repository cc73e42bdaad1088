"""Grade submitted notebooks with nbval, safely and at scale.

Each submission becomes one :class:`Job` (its bytes, the reference notebook's text and a
copy of flowlab's sources: everything needed, so a job runs on any
:class:`concurrent.futures.Executor`, a Dask cluster's included) and one :class:`Grade`:

1. The submission is read; a file that is not a notebook, or has no cells, is graded
   ``unreadable``. Its check cells are found by name (``metadata.flowlab.check``, or
   the official source) and replaced by the official ones; edited, deleted, duplicated
   and moved check cells are noted.
2. ``pytest --nbval-lax`` runs it in a fresh temporary folder (its home, temp and
   IPython folders too), with its own copy of flowlab first on ``PYTHONPATH``, a memory
   limit, a wall-clock timeout for the whole notebook, and a random key that seals the
   official checks' OK lines (:mod:`flowlab._seal`). A small pytest plugin
   (:mod:`flowlab._nbval_plugin`) records each cell's result as it finishes, keeps stderr
   out of the comparison and notices a dead kernel.
3. Results are matched to checks by name. Only a check whose cell ran and printed its
   expected (sealed) line passes; skipped, expected-failure and missing ones fail with the
   reason. The run is ``graded``, ``timeout``, ``crashed`` or ``unreadable``.
4. Afterwards the copy of flowlab is verified; a submission that wrote to it fails every
   check. :func:`grade_all` also verifies the reference notebook and flowlab's installed
   sources after each submission, and writes ``grades.csv`` row by row as results arrive.
"""

from __future__ import annotations

import concurrent.futures
import csv
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from flowlab import _seal
from flowlab._grade_limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
from flowlab.gradebook import Gradebook, Handin, Row, content_digest
from flowlab.late import NO_POLICY, LatePolicy
from flowlab.verdict import MAX_KL as MAX_JUDGED_KL
from flowlab.student import check_name

__all__ = ["Grade", "Job", "Reference", "STATUSES", "grade_job", "grade_notebook", "grade_all",
           "make_jobs", "write_tables", "write_feedback", "flowlab_sources", "check_name", "graded_rows"]

STATUSES = ("graded", "timeout", "crashed", "unreadable")
PLUGIN = "_flowlab_nbval_plugin"
_PACKAGE = Path(__file__).resolve().parent
_ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")
_ERROR_LINE = re.compile(r"^(\w*(?:Error|Failed|Exception)\w*): (.+)$")
_CHECK_CALL = re.compile(r"""flowlab\.checks\.run\(\s*["'](\w+)["']""")
_SUSPICIOUS = [  # code an honest answer to this lab never needs; reported, not penalised
    (re.compile(r"flowlab\.checks|\bchecks\s*\.\s*\w+\s*=|from\s+flowlab\.checks\s+import"), "the checker"),
    (re.compile(r"_LEDGER|_SNAPSHOT|_TABLE|_KEY\b|FLOWLAB_GRADING|_seal"), "the checker's internals"),
    (re.compile(r"\bsetattr\s*\(|__builtins__|\bimport\s+builtins|sys\.modules"), "patching modules"),
    (re.compile(r"^\s*(np|numpy|tf|tfp|tfd|tfb|flowlab|plots)\.[\w.]+\s*=(?!=)", re.M),
     "assigning to a library's attribute"),
    (re.compile(r"/proc/|\bos\.environ|\bctypes\b|__closure__|__code__|gc\.get_objects"),
     "process internals"),
    (re.compile(r"flowlab-grade-|tempfile\.gettempdir|/tmp\b"), "the grader's temporary folders"),
]


@dataclass(frozen=True)
class Reference:
    """The official check cells of a reference (student) notebook, in order, with their points."""

    text: str
    cells: dict[str, dict]
    points: dict[str, float]
    before: dict[str, str | None]  # check -> id of the cell just above it (its answer)

    @classmethod
    def from_text(cls, text: str) -> Reference:
        notebook = nbformat.reads(text, as_version=4)
        cells: dict[str, dict] = {}
        points: dict[str, float] = {}
        before: dict[str, str | None] = {}
        previous: str | None = None
        for cell in notebook.cells:
            name = check_name(cell)
            if name:
                if name in cells:
                    raise ValueError(f"reference notebook: check {name!r} has two cells")
                cells[name] = cell
                value = cell.metadata["flowlab"].get("points", 1)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"reference notebook: check {name!r} has points={value!r}; "
                                     "points must be a number >= 0")
                points[name] = float(value)
                before[name] = previous
            previous = cell.get("id")
        if not cells:
            raise ValueError("the reference notebook has no check cells (metadata.flowlab.check)")
        return cls(text=text, cells=cells, points=points, before=before)


@dataclass
class Grade:
    """One submission's result. ``results`` maps check name -> None (passed) or the reason it failed."""

    submission: str
    status: str
    results: dict[str, str | None]
    points: dict[str, float]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    executed: str | None = None  # the executed notebook (JSON), for disputes
    log: str = ""
    student_id: str = ""  # the roster's or the LMS's id, when known
    days_late: int = 0
    late_penalty: float = 0.0  # points deducted under the late policy (flowlab.late)
    late_note: str = ""

    @property
    def final(self) -> float:
        """The points that count: the checks' points less the late penalty, never below zero."""
        return max(0.0, self.score - self.late_penalty)

    @property
    def passed(self) -> int:
        return sum(message is None for message in self.results.values())

    @property
    def score(self) -> float:
        return sum(self.points[name] for name, message in self.results.items() if message is None)

    @property
    def max_points(self) -> float:
        return sum(self.points.values())


@dataclass(frozen=True)
class Job:
    """Everything one submission's grading needs, picklable for any executor."""

    submission: str  # its name in the tables: the path relative to the submissions' common folder
    content: bytes
    reference: str
    sources: tuple[tuple[str, bytes], ...]
    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB
    threads: int | None = None  # CPU threads for the notebook's TensorFlow; None: its default


def flowlab_sources(package: Path = _PACKAGE) -> tuple[tuple[str, bytes], ...]:
    """flowlab's Python sources, name -> bytes (what each submission gets a private copy of)."""
    return tuple((p.name, p.read_bytes()) for p in sorted(package.glob("*.py")))


def _digest(files: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files}


def _failure_message(text: str) -> str:
    """The most telling line of an nbval failure: the last exception line, else the first line."""
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    errors = [m for m in (_ERROR_LINE.match(line) for line in lines) if m]
    if errors:
        kind, message = errors[-1].groups()
        return message if kind == "CheckFailed" else f"{kind}: {message}"
    if any("Cell outputs differ" in line for line in lines):
        return "the check's output differs from the expected output (was it printed by the official checker?)"
    if any("Timeout of" in line for line in lines):
        return "the cell ran out of time"
    return next((line for line in lines if line), "failed")


def _all_failed(reference: Reference, reason: str) -> dict[str, str | None]:
    return {name: reason for name in reference.cells}


def _normalized(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def _prepare(submission: nbformat.NotebookNode, reference: Reference,
             key: str) -> tuple[nbformat.NotebookNode, list[str]]:
    """The copy that runs (official check cells, sealed expected outputs) and tamper notes."""
    official_source = {name: _normalized(cell.source) for name, cell in reference.cells.items()}
    by_source = {source: name for name, source in official_source.items()}
    notes: list[str] = []
    names: list[str | None] = []
    for cell in submission.cells:
        names.append(_identify(cell, reference, by_source, notes))
    # a check that appears more than once is graded once: at its first place below its answer
    ids = [c.get("id") if isinstance(c, dict) else None for c in submission.cells]
    chosen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name is None:
            continue
        answer = reference.before.get(name)
        below = not (answer and answer in ids) or ids.index(answer) < index
        if name not in chosen or (below and not _below(chosen[name], answer, ids)):
            chosen[name] = index
    seen = {name: names.count(name) for name in chosen}
    order = [name for index, name in enumerate(names) if name is not None and chosen[name] == index]
    cells = []
    for index, (cell, name) in enumerate(zip(submission.cells, names)):
        if name is None:
            cells.append(cell)
            continue
        if chosen[name] != index:
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if _normalized(source) != official_source[name]:
            notes.append(f"check cell '{name}' was edited (the official one was run)")
        official = nbformat.from_dict(json.loads(json.dumps(reference.cells[name])))
        for output in official.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = _seal.seal_text(output.get("text", ""), key, name)
        cells.append(official)
    for name, count in seen.items():
        if count > 1:
            notes.append(f"check cell '{name}' appears {count} times (graded once: the first copy below its answer)")
    for name in reference.cells:
        if name not in seen:
            notes.append(f"check cell '{name}' was deleted")
    expected = [name for name in reference.cells if name in seen]
    if order != expected:
        notes.append("check cells are out of order: " + ", ".join(order))
    ids = [c.get("id") for c in cells if isinstance(c, dict)]
    for name in order:
        answer = reference.before.get(name)
        if answer and answer in ids and ids.index(answer) > _index_of(cells, name):
            notes.append(f"check cell '{name}' was moved above the answer it checks")
    cells = _with_verdict_cell(cells)
    for number, cell in enumerate(cells):  # nbformat wants unique ids; ours are only for matching
        if isinstance(cell, dict):
            cell["id"] = f"cell-{number}"
    graded = nbformat.v4.new_notebook(cells=cells, metadata=submission.get("metadata", {}))
    return graded, notes


#: The check whose verdict the grader also computes outside the kernel (flowlab.verdict).
JUDGED_CHECK = "training"
_VERDICT_SOURCE = "import flowlab.verdict\nflowlab.verdict.save(globals())"


def _with_verdict_cell(cells: list) -> list:
    """``cells`` with the grader's own cell right after the official training check, which hands
    the trained flow over for :func:`flowlab.verdict.judge` (no cell is added without that check)."""
    index = next((i for i, c in enumerate(cells) if isinstance(c, dict) and check_name(c) == JUDGED_CHECK), None)
    if index is None:
        return cells
    cell = nbformat.v4.new_code_cell(_VERDICT_SOURCE)
    cell.metadata["flowlab_grader"] = "verdict"
    return [*cells[:index + 1], cell, *cells[index + 1:]]


def _below(index: int, answer: str | None, ids: list) -> bool:
    return not (answer and answer in ids) or ids.index(answer) < index


def _identify(cell: object, reference: Reference, by_source: dict[str, str], notes: list[str]) -> str | None:
    """Which official check a submitted cell is (by metadata, else by its source), or None."""
    if not isinstance(cell, dict) or cell.get("cell_type") != "code":
        return None
    name = check_name(cell)
    if name in reference.cells:
        return name
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else str(source)
    call = _CHECK_CALL.search(source)
    guess = by_source.get(_normalized(source)) or (call.group(1) if call else None)
    if guess in reference.cells:
        notes.append(f"check cell '{guess}': its metadata was changed")
        return guess
    if name is not None:
        notes.append(f"a cell is tagged with an unknown check {name!r}")
    elif isinstance(cell.get("metadata"), dict) and "flowlab" in cell["metadata"]:
        notes.append("a cell has malformed flowlab metadata")
    return None


def _index_of(cells: list, name: str) -> int:
    return next(i for i, c in enumerate(cells) if isinstance(c, dict) and check_name(c) == name)


def _scan(submission: nbformat.NotebookNode, reference: Reference) -> list[str]:
    """Notes on code in the student's cells that reaches for the grader's or the libraries' internals."""
    official = {_normalized(cell.source) for cell in reference.cells.values()}
    notes = []
    for number, cell in enumerate(submission.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if _normalized(source) in official:
            continue  # an official check cell (replaced anyway)
        for pattern, what in _SUSPICIOUS:
            if pattern.search(source):
                notes.append(f"cell {number + 1} touches {what} (review it)")
    return notes


def _kill_tree(process: subprocess.Popen) -> None:
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


def _remove(folder: Path) -> None:
    def writable(function: Callable, path: str, _: object) -> None:
        os.chmod(path, stat.S_IRWXU)
        os.chmod(os.path.dirname(path), stat.S_IRWXU)
        function(path)

    shutil.rmtree(folder, onexc=writable) if sys.version_info >= (3, 12) else \
        shutil.rmtree(folder, onerror=writable)


def _executed(graded: nbformat.NotebookNode, records: list[dict]) -> str:
    outputs = {r["id"]: r["outputs"] for r in records if r.get("when") == "call"}
    for cell in graded.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = [nbformat.from_dict(o) for o in outputs.get(cell.get("id"), [])]
    return nbformat.writes(graded)


def grade_job(job: Job) -> Grade:
    """Grade one submission (see the module docstring); never raises for a bad submission."""
    start = time.monotonic()
    reference = Reference.from_text(job.reference)
    grade = Grade(job.submission, "unreadable", {}, dict(reference.points))
    try:
        submission = nbformat.reads(job.content.decode("utf-8"), as_version=4)
        if not isinstance(submission.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as error:  # noqa: BLE001 - any unreadable file is a row, not a crash
        kind = type(error).__name__
        reason = f"unreadable: not a Jupyter notebook ({kind}: {str(error).splitlines()[0][:120] if str(error) else ''})"
        grade.results, grade.seconds = _all_failed(reference, reason), time.monotonic() - start
        return grade
    if not any(isinstance(c, dict) and c.get("cell_type") == "code" for c in submission.cells):
        grade.results = _all_failed(reference, "unreadable: the notebook has no code cells")
        grade.seconds = time.monotonic() - start
        return grade
    key = secrets.token_hex(16)
    try:
        graded, notes = _prepare(submission, reference, key)
    except Exception as error:  # noqa: BLE001
        grade.results = _all_failed(reference, f"unreadable: malformed notebook ({type(error).__name__}: {error})")
        return grade
    grade.notes = notes + _scan(submission, reference)
    work = Path(tempfile.mkdtemp(prefix="flowlab-grade-"))
    try:
        grade = _run(job, reference, graded, key, work, grade)
    finally:
        _remove(work)
    grade.seconds = time.monotonic() - start
    return grade


def _run(job: Job, reference: Reference, graded: nbformat.NotebookNode, key: str, work: Path,
         grade: Grade) -> Grade:
    grader = work / "grader"
    package = grader / "flowlab"
    package.mkdir(parents=True)
    for name, data in job.sources:
        (package / name).write_bytes(data)
    (grader / f"{PLUGIN}.py").write_bytes(dict(job.sources)["_nbval_plugin.py"])
    startup = work / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-flowlab-grading.py").write_text(
        "import flowlab.checks  # takes the grading key out of the environment before any cell runs\n"
        "import flowlab.verdict  # and where to hand the trained flow over\n")
    for folder in (package, grader, startup):
        for path in folder.iterdir():
            if path.is_file():
                path.chmod(0o444)
        folder.chmod(0o555)
    for name in ("home", "tmp", "run"):
        (work / name).mkdir()
    notebook = work / "run" / "submission.ipynb"
    nbformat.write(graded, str(notebook))
    (work / "run" / "pytest.ini").write_text("[pytest]\n")
    results = work / "results.jsonl"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLOWLAB_", "PYTEST_", "JUPYTER_", "IPYTHON", "PYTHONPATH", "MPL"))}
    (work / "verdict").mkdir()
    env.update(PYTHONPATH=str(grader), IPYTHONDIR=str(work / "ipython"), HOME=str(work / "home"),
               FLOWLAB_VERDICT_FILE=str(work / "verdict" / "training.npz"),
               TMPDIR=str(work / "tmp"), PYTHONDONTWRITEBYTECODE="1", **{_seal.KEY_VARIABLE: key},

               FLOWLAB_NBVAL_RESULTS=str(results), JUPYTER_PLATFORM_DIRS="1")
    if job.threads:  # N notebooks at once on N cores: one each, not N fighting over all of them
        env.update(TF_NUM_INTRAOP_THREADS=str(job.threads), TF_NUM_INTEROP_THREADS="1",
                   OMP_NUM_THREADS=str(job.threads))
    leftovers_file = work / "leftovers"
    command = [sys.executable, "-I", str(package / "_launcher.py"), str(job.memory_mb), str(leftovers_file),
               str(notebook), "--nbval-lax",
               "--nbval-current-env", "-p", PLUGIN, "-p", "no:cacheprovider", "-q",
               f"--nbval-cell-timeout={max(1, int(job.timeout))}", "-c", str(work / "run" / "pytest.ini"),
               f"--rootdir={work / 'run'}"]
    log_path = work / "pytest.log"
    timed_out = False
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=work / "run", env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            process.wait(timeout=job.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            process.terminate()  # the launcher ends pytest and everything under it, detached ones too
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        finally:
            if process.poll() is None:
                _kill_tree(process)
    leftovers = int(leftovers_file.read_text()) if leftovers_file.is_file() else 0
    if leftovers:
        grade.notes.append(f"the notebook left {leftovers} process{'es' if leftovers != 1 else ''} running "
                           "after its run; the grader ended them")
    records = []
    if results.exists():
        for line in results.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut short by the kill
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    stderr = [f"--- stderr of cell {r['id']} ---\n" + "".join(o.get("text", "") for o in r["outputs"]
              if o.get("output_type") == "stream" and o.get("name") == "stderr") for r in records
              if any(o.get("name") == "stderr" for o in r["outputs"])]
    grade.log = log_text + ("\n" + "\n".join(stderr) if stderr else "")
    grade.executed = _executed(graded, records)

    died = any("kernel died" in (r.get("message") or "") or "Kernel dead" in (r.get("message") or "")
               for r in records)
    cell_timeout = any(r.get("timed_out") for r in records)
    if timed_out or cell_timeout:
        grade.status, why = "timeout", f"not run: the notebook ran out of time ({job.timeout:g} s)"
    elif died:
        grade.status, why = "crashed", "not run: the kernel died (killed, out of memory, or os._exit)"
    elif process.returncode not in (0, 1):
        grade.status, why = "crashed", f"not run: pytest stopped with exit status {process.returncode} (see the log)"
    elif not records:  # pytest ran no cell at all: never a silent zero
        grade.status, why = "crashed", f"not run: the grader's runner ran no cell ({_last_line(log_text)})"
    else:
        grade.status, why = "graded", "the check did not run"
    grade.results = _verdicts(records, reference, grade.status, why, grade.notes)
    _judge_outside(grade, work, env, reference)
    changed = sorted(name for name, digest in _digest(job.sources).items()
                     if _file_digest(package / name) != digest)
    if changed:
        reason = "the submission changed the grader's files while it ran: " + ", ".join(changed)
        grade.notes.append(reason)
        grade.results = _all_failed(reference, reason)
    return grade


def _judge_outside(grade: Grade, work: Path, env: dict[str, str], reference: Reference) -> None:
    """Recompute the training check's verdict outside the kernel (:mod:`flowlab.verdict`), on
    points from a seed the kernel never saw; a pass in the kernel that this does not confirm fails."""
    if JUDGED_CHECK not in reference.cells or grade.results.get(JUDGED_CHECK) is not None:
        return
    seed = secrets.randbelow(2**31)
    command = [sys.executable, "-m", "flowlab.verdict", str(work / "verdict" / "training.npz"), str(seed)]
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


def _last_line(log: str) -> str:
    """The last non-blank line of a log, cut to 200 characters: what went wrong, usually."""
    lines = [_ANSI.sub("", line).strip() for line in log.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "it printed nothing"


def _verdicts(records: Sequence[dict], reference: Reference, status: str, why: str,
              notes: Sequence[str]) -> dict[str, str | None]:
    """Each official check's verdict from the plugin's records, matched by check name: None
    (passed) only for a check whose cell ran and passed; skipped, expected-failure and missing
    ones fail with ``why`` or the reason."""
    by_check: dict[str, dict] = {}
    for record in records:
        name = record.get("check")
        if name in reference.cells and record.get("when") in ("setup", "call"):
            by_check.setdefault(name, record)  # the first record of its (only) official cell
    verdicts: dict[str, str | None] = {}
    for name in reference.cells:
        record = by_check.get(name)
        if record is None:
            deleted = f"check cell '{name}' was deleted" in notes
            verdicts[name] = "the check cell is missing from the submission" if deleted else why
        elif record.get("outcome") == "passed":
            verdicts[name] = None
        elif record.get("outcome") == "failed":
            message = record.get("message") or ""
            died = "kernel died" in message or "Kernel dead" in message
            verdicts[name] = why if died and status != "graded" else _failure_message(message)
        else:  # skipped, xfailed, xpassed: it did not run to a verdict
            verdicts[name] = (f"{why} ({record.get('outcome')})" if status != "graded"
                              else f"the check did not run to a verdict ({record.get('outcome')})")
    return verdicts


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def grade_notebook(path: str | Path, reference: str | Path, timeout: float = DEFAULT_TIMEOUT,
                   memory_mb: int = DEFAULT_MEMORY_MB) -> Grade:
    """Grade one submission file against a reference notebook file."""
    path = Path(path)
    job = Job(submission=path.name, content=path.read_bytes(), reference=Path(reference).read_text(),
              sources=flowlab_sources(), timeout=timeout, memory_mb=memory_mb)
    return grade_job(job)


def _relative_names(paths: Sequence[Path]) -> list[str]:
    """Each path relative to the submissions' common folder (unique when the paths are)."""
    resolved = [p.resolve() for p in paths]
    if len(resolved) == 1:
        return [resolved[0].name]
    root = Path(os.path.commonpath([p.parent for p in resolved]))
    return [p.relative_to(root).as_posix() for p in resolved]


def make_jobs(paths: Sequence[Path], reference_text: str, timeout: float = DEFAULT_TIMEOUT,
              memory_mb: int = DEFAULT_MEMORY_MB, threads: int | None = None,
              names: Sequence[str] | None = None) -> list[Job]:
    """One job per submission file (duplicates of the same file dropped), named by ``names``
    (default: each path below the submissions' common folder)."""
    unique = list(dict.fromkeys(Path(p).resolve() for p in paths))
    if names is not None and len(names) != len(unique):
        raise ValueError(f"names must name each of the {len(unique)} distinct paths, got {len(names)}")
    sources = flowlab_sources()
    jobs = []
    for path, name in zip(unique, names if names is not None else _relative_names(unique)):
        try:
            content = path.read_bytes()
        except OSError as error:
            content = f"could not read the file: {error}".encode()
        jobs.append(Job(name, content, reference_text, sources, timeout, memory_mb, threads))
    return jobs


_TABLE_HEAD = ["submission", "student_id", "status", "raw_points", "late_penalty", "points", "max_points",
               "checks_passed", "days_late", "notes"]


def _csv_row(grade: Grade, names: Sequence[str]) -> list[str]:
    return [grade.submission, grade.student_id, grade.status, f"{grade.score:g}", f"{grade.late_penalty:g}",
            f"{grade.final:g}", f"{grade.max_points:g}", f"{grade.passed}/{len(grade.results)}", str(grade.days_late),
            "; ".join([grade.late_note] * bool(grade.late_note) + grade.notes),
            *("pass" if grade.results[n] is None else f"FAIL: {grade.results[n]}" for n in names)]


def _split_hint(message: str) -> tuple[str, str]:
    text, _, hint = message.partition("Hint:")
    return text.strip(), hint.strip()


def write_feedback(grade: Grade, path: str | Path) -> Path:
    """The student's feedback: each check, its points, pass/fail, what is wrong and the hint."""
    path = Path(path)
    lines = [f"# Feedback: {grade.submission}", "",
             f"Status: **{grade.status}**. Points: **{grade.final:g} / {grade.max_points:g}** "
             f"({grade.passed} of {len(grade.results)} checks passed)."
             + (f" Late: {grade.late_note}." if grade.late_note else ""), "",
             "| check | points | result |", "| --- | --- | --- |"]
    for name, message in grade.results.items():
        earned = grade.points[name] if message is None else 0
        lines.append(f"| {name} | {earned:g} / {grade.points[name]:g} | {'pass' if message is None else 'FAIL'} |")
    failed = [(n, m) for n, m in grade.results.items() if m is not None]
    if failed:
        lines += ["", "## What to fix", ""]
        for name, message in failed:
            text, hint = _split_hint(message)
            lines.append(f"- **{name}**: {text}" + (f"  \n  *Hint:* {hint}" if hint else ""))
    if grade.notes:
        lines += ["", "## Notes from the grader", ""] + [f"- {note}" for note in grade.notes]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _keep(grade: Grade, out_dir: Path) -> None:
    """Feedback, executed notebook and log under ``out_dir/submissions/<submission>/``."""
    relative = Path(grade.submission)
    folder = out_dir / "submissions" / relative.parent / relative.name.replace(".ipynb", "")
    folder.mkdir(parents=True, exist_ok=True)
    write_feedback(grade, folder / "feedback.md")
    (folder / "log.txt").write_text(grade.log)
    if grade.executed:
        (folder / "executed.ipynb").write_text(grade.executed)


def grade_all(paths: Sequence[str | Path], reference: str | Path, out_dir: str | Path, *,
              executor: concurrent.futures.Executor | None = None, workers: int | None = None,
              timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
              progress: Callable[[Grade], None] | None = None, force: bool = False,
              root: str | Path | None = None, handins: Mapping[str, Handin] | None = None,
              late_policy: LatePolicy = NO_POLICY) -> list[Grade]:
    """Grade every submission, ``workers`` at a time (default: the number of cores), or on
    ``executor`` (any :class:`concurrent.futures.Executor`, e.g. a Dask client's
    ``get_executor()``), adding to ``out_dir``'s gradebook (:mod:`flowlab.gradebook`).

    Rows are keyed by each path below ``root`` (default: the folder the gradebook remembers, or
    the submissions' common folder). A submission whose row was made from the same file content
    is skipped unless ``force``; a regraded one replaces its row; other rows stay. Rows are
    appended to ``out_dir/grades.csv`` as results arrive; at the end the CSV is rewritten with
    every row of the gradebook, sorted, and ``grades.md`` written. ``handins`` (row key -> who
    handed it in and when, from a roster or the LMS) fills the ``student_id`` column and, with
    ``late_policy`` (:mod:`flowlab.late`), each row's lateness and penalty, old rows' too.
    Returns this run's grades, sorted (skipped submissions are not among them)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    reference = Path(reference)
    reference_text = reference.read_text()
    names = list(Reference.from_text(reference_text).cells)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    unique = list(dict.fromkeys(Path(p).resolve() for p in paths))
    book = Gradebook.open(out_dir, names, unique, None if root is None else Path(root))
    handins = dict(handins or {})
    for key, row in book.rows.items():  # a roster or policy given on a later run reaches earlier rows
        if key in handins:
            _apply_handin(row, handins[key], late_policy, sum(row.points.values()))
    threads = None if executor else max(1, (os.cpu_count() or 1) // (workers or os.cpu_count() or 1))
    jobs = [job for job in make_jobs(unique, reference_text, timeout, memory_mb, threads,
                                     names=[book.key(p) for p in unique])
            if force or not book.finished(job.submission, content_digest(job.content))]
    own = executor is None
    pool = executor or concurrent.futures.ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
    grades: list[Grade] = []
    try:
        _grade_jobs(jobs, pool, reference, book, out_dir, grades, progress, handins, late_policy)
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
    grades.sort(key=lambda g: g.submission)
    book.save()  # student ids given on this run reach the rows of earlier runs too
    write_tables([_from_row(row) for row in book.rows.values()], out_dir, names)
    return grades


def _grade_jobs(jobs: Sequence[Job], pool: concurrent.futures.Executor, reference: Path, book: Gradebook,
                out_dir: Path, grades: list[Grade], progress: Callable[[Grade], None] | None,
                handins: Mapping[str, Handin], late_policy: LatePolicy) -> None:
    """Run ``jobs`` on ``pool``; each result is appended to ``grades.csv``, recorded in the
    gradebook, kept (feedback, executed notebook, log) and reported as it arrives."""
    reference_text = reference.read_text()
    names = book.checks
    trusted = _digest([(reference.name, reference.read_bytes()), *flowlab_sources()])
    regraded = {job.submission for job in jobs}
    with (out_dir / "grades.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*_TABLE_HEAD, *names])
        for key in sorted(set(book.rows) - regraded):  # rows of earlier runs stay in the file
            writer.writerow(_csv_row(_from_row(book.rows[key]), names))
        handle.flush()
        futures = {pool.submit(grade_job, job): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            job = futures[future]
            try:
                grade = future.result()
            except Exception as error:  # noqa: BLE001 - the grader's own failure: still a row
                reason = f"not graded: the grader failed ({type(error).__name__}: {error})"
                grade = Grade(job.submission, "crashed", {n: reason for n in names},
                              dict(Reference.from_text(reference_text).points))
            _apply_handin(grade, handins.get(grade.submission, Handin()), late_policy, grade.max_points)
            _note_changed_grader_files(grade, reference, trusted)
            writer.writerow(_csv_row(grade, names))
            handle.flush()
            book.record(Row(grade.submission, grade.status, grade.results, grade.points, grade.notes,
                            grade.seconds, content_digest(job.content), grade.student_id, grade.days_late,
                            grade.late_penalty, grade.late_note))
            _keep(grade, out_dir)
            grades.append(grade)
            if progress:
                progress(grade)


def _note_changed_grader_files(grade: Grade, reference: Path, trusted: dict[str, str]) -> None:
    """Note on ``grade`` any grader file (reference, flowlab's sources) changed on disk since the start."""
    now = _digest([(reference.name, _read(reference)),
                   *((n, _read(_PACKAGE / n)) for n, _ in flowlab_sources())])
    changed = sorted(n for n in trusted if now.get(n) != trusted[n])
    if changed:
        grade.notes.append("the grader's files changed on disk during this run: "
                           + ", ".join(changed) + " (grading used the copies read at start)")


def graded_rows(out_dir: str | Path) -> dict[str, Grade]:
    """Every row of ``out_dir``'s gradebook (all runs), by submission key, as grades without
    their executed notebooks and logs."""
    return {key: _from_row(row) for key, row in Gradebook.read(out_dir).rows.items()}


def _from_row(row: Row) -> Grade:
    return Grade(row.submission, row.status, dict(row.results), dict(row.points), list(row.notes), row.seconds,
                 student_id=row.student_id, days_late=row.days_late, late_penalty=row.late_penalty,
                 late_note=row.late_note)


def _apply_handin(target: Grade | Row, handin: Handin, policy: LatePolicy, max_points: float) -> None:
    """Set a grade's or a row's student id and lateness from its hand-in under ``policy``."""
    target.student_id = handin.student_id or target.student_id
    lateness = policy.lateness(handin.submitted_at, max_points, target.student_id, handin.flagged_late)
    target.days_late, target.late_penalty, target.late_note = lateness.days, lateness.penalty, lateness.note


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def write_tables(grades: Sequence[Grade], out_dir: str | Path,
                 names: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write ``grades.csv`` and ``grades.md``: one row per submission, one column per check."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(names if names is not None else (grades[0].results if grades else []))
    csv_path, md_path = out_dir / "grades.csv", out_dir / "grades.md"
    partial = csv_path.with_suffix(".csv.tmp")
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*_TABLE_HEAD, *names])
        for grade in grades:
            writer.writerow(_csv_row(grade, names))
    partial.replace(csv_path)
    rows = ["| submission | status | points | " + " | ".join(names) + " |",
            "| --- | --- | --- | " + " | ".join("---" for _ in names) + " |"]
    for g in grades:
        marks = ("✓" if g.results[n] is None else "✗" for n in names)
        rows.append(f"| {g.submission} | {g.status} | {g.final:g}/{g.max_points:g} | " + " | ".join(marks) + " |")
    failures = [f"- **{g.submission}**, {n}: {g.results[n]}" for g in grades for n in names
                if g.results[n] is not None]
    notes = [f"- **{g.submission}**: {note}" for g in grades for note in g.notes]
    text = "\n".join(rows) + "\n"
    if notes:
        text += "\n### Notes (possible tampering, review these)\n\n" + "\n".join(notes) + "\n"
    if failures:
        text += "\n### Failures\n\n" + "\n".join(failures) + "\n"
    md_path.write_text(text)
    return csv_path, md_path

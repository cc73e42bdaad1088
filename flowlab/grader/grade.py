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
   official checks' OK lines (:mod:`flowlab.grader._seal`). A small pytest plugin
   (:mod:`flowlab.grader._nbval_plugin`) records each cell's result as it finishes, keeps stderr
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
import contextlib
import csv
import os
import secrets
import tempfile
import time
from datetime import datetime, timezone
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import nbformat

from flowlab.grader._limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
from flowlab._validate import LIMITS
from flowlab.grader.prepare import prepare, scan
from flowlab.grader.records import STATUSES, Grade, Job, Reference
from flowlab.grader.reports import TABLE_HEAD, csv_row, keep, write_feedback, write_tables
from flowlab.grader.run import digest, remove, run_in_sandbox, stop_running
from flowlab.grader.verdicts import all_failed, failure_message, verdicts
from flowlab.grader.gradebook import Gradebook, Handin, Row, content_digest
from flowlab.grader.late import NO_POLICY, LatePolicy
from flowlab.grader.student import check_name

__all__ = ["Grade", "Job", "Reference", "STATUSES", "grade_job", "grade_notebook", "grade_all",
           "make_jobs", "write_tables", "write_feedback", "flowlab_sources", "check_name", "graded_rows"]

_PACKAGE = Path(__file__).resolve().parents[1]  # flowlab itself, subpackages included
# the names the tests and older callers use
_prepare, _verdicts, _failure_message = prepare, verdicts, failure_message

def flowlab_sources(package: Path = _PACKAGE) -> tuple[tuple[str, bytes], ...]:
    """flowlab's Python sources, path below the package (subpackages included, POSIX
    separators) -> bytes: what each submission gets a private copy of.

    Example:
        >>> names = [name for name, _ in flowlab_sources()]
        >>> "grader/checks.py" in names and "__init__.py" in names
        True
    """
    return tuple((p.relative_to(package).as_posix(), p.read_bytes()) for p in sorted(package.rglob("*.py"))
                 if "__pycache__" not in p.parts)


def grade_job(job: Job, progress: Callable[[str], None] | None = None) -> Grade:
    """Grade one submission (see the module docstring); never raises for a bad submission. ``progress``,
    if given, gets a line as each check cell finishes and every 15 s without one."""
    start = time.monotonic()
    reference = Reference.from_text(job.reference_text)
    grade = Grade(job.submission, "unreadable", {}, dict(reference.points_possible))
    try:
        submission = nbformat.reads(job.content.decode("utf-8"), as_version=4)
        if not isinstance(submission.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as error:  # noqa: BLE001 - any unreadable file is a row, not a crash
        kind = type(error).__name__
        reason = f"unreadable: not a Jupyter notebook ({kind}: {str(error).splitlines()[0][:120] if str(error) else ''})"
        grade.results, grade.seconds = all_failed(reference, reason), time.monotonic() - start
        return grade
    if not any(isinstance(c, dict) and c.get("cell_type") == "code" for c in submission.cells):
        grade.results = all_failed(reference, "unreadable: the notebook has no code cells")
        grade.seconds = time.monotonic() - start
        return grade
    key = secrets.token_hex(16)
    try:
        graded, notes = prepare(submission, reference, key)
    except Exception as error:  # noqa: BLE001
        grade.results = all_failed(reference, f"unreadable: malformed notebook ({type(error).__name__}: {error})")
        return grade
    grade.notes = notes + scan(submission, reference)
    work = Path(tempfile.mkdtemp(prefix="flowlab-grade-"))
    try:
        grade = run_in_sandbox(job, reference, graded, key, work, grade, progress)
    finally:
        remove(work)
    grade.seconds = time.monotonic() - start
    return grade


def grade_notebook(path: str | Path, reference: str | Path, timeout: float = DEFAULT_TIMEOUT,
                   memory_mb: int = DEFAULT_MEMORY_MB, progress: Callable[[str], None] | None = None) -> Grade:
    """Grade one submission file against a reference notebook file; ``progress`` as for :func:`grade_job`."""
    path = Path(path)
    job = Job(submission=path.name, content=path.read_bytes(), reference_text=Path(reference).read_text(),
              sources=flowlab_sources(), timeout=timeout, memory_mb=memory_mb)
    return grade_job(job, progress)


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


def grade_all(paths: Sequence[str | Path], reference: str | Path, out_dir: str | Path, *,
              executor: concurrent.futures.Executor | None = None, workers: int | None = None,
              timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB,
              progress: Callable[[Grade], None] | None = None, force: bool = False,
              root: str | Path | None = None, handins: Mapping[str, Handin] | None = None,
              late_policy: LatePolicy = NO_POLICY, keys: Sequence[str] | None = None,
              replaced: list[str] | None = None, running: Callable[[str, str], None] | None = None) -> list[Grade]:
    """Grade every submission, ``workers`` at a time (default: the number of cores), or on
    ``executor`` (any :class:`concurrent.futures.Executor`, e.g. a Dask client's
    ``get_executor()``), adding to ``out_dir``'s gradebook (:mod:`flowlab.grader.gradebook`).

    Rows are keyed by each path below ``root`` (default: the folder the gradebook remembers, or
    the submissions' common folder). A submission whose row was made from the same file content
    is skipped unless ``force``; a regraded one replaces its row; other rows stay. Rows are
    appended to ``out_dir/grades.csv`` as results arrive; at the end the CSV is rewritten with
    every row of the gradebook, sorted, and ``grades.md`` written. ``handins`` (row key -> who
    handed it in and when, from a roster or the LMS) fills the ``student_id`` column and, with
    ``late_policy`` (:mod:`flowlab.grader.late`), each row's lateness and penalty, old rows' too.
    ``keys`` names the rows of ``paths`` (in order) instead of their paths below ``root``: an LMS
    download's student keys. A student handing in under a new key replaces their earlier rows
    (see :meth:`Gradebook.supersede`); what was replaced is appended to ``replaced``.
    ``progress`` gets each finished grade; ``running`` (row key, line), on this function's own
    threads only (not on ``executor``), each notebook's start and :mod:`flowlab.grader.progress`'s
    lines. Returns this run's grades, sorted (skipped submissions are not among them)."""
    if workers is not None:
        LIMITS["workers"].check("workers", workers)
    LIMITS["timeout"].check("timeout", timeout)
    reference, out_dir, handins = Path(reference), Path(out_dir), dict(handins or {})
    reference_text = reference.read_text()
    names = list(Reference.from_text(reference_text).cells)
    unique = list(dict.fromkeys(Path(p).resolve() for p in paths))
    book, row_keys = _open_book(out_dir, names, unique, root, keys, handins, late_policy, replaced)
    threads = None if executor else max(1, (os.cpu_count() or 1) // (workers or os.cpu_count() or 1))
    jobs = [job for job in make_jobs(unique, reference_text, timeout, memory_mb, threads, names=row_keys)
            if force or not book.finished(job.submission, content_digest(job.content))]
    grades: list[Grade] = []
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with _pool(executor, workers) as pool:
        _grade_jobs(jobs, pool, reference, book, out_dir, grades, progress, handins, late_policy, started,
                    None if executor else running)
    grades.sort(key=lambda g: g.submission)
    book.save()  # student ids given on this run reach the rows of earlier runs too
    write_tables([_from_row(book.rows[key]) for key in sorted(book.rows)], out_dir, names)
    return grades


def _open_book(out_dir: Path, names: list[str], unique: list[Path], root: str | Path | None,
               keys: Sequence[str] | None, handins: Mapping[str, Handin], late_policy: LatePolicy,
               replaced: list[str] | None) -> tuple[Gradebook, list[str]]:
    """``out_dir``'s gradebook, made ready for this run (as :func:`grade_all` says), and the row
    key of each of ``unique``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if keys is not None and len(keys) != len(unique):
        raise ValueError(f"keys must name each of the {len(unique)} distinct paths, got {len(keys)}")
    book = Gradebook.open(out_dir, names, unique, None if root is None else Path(root))
    row_keys = list(keys) if keys is not None else [book.key(p) for p in unique]
    dropped = book.supersede({key: handins.get(key, Handin()) for key in row_keys})
    if replaced is not None:
        replaced += dropped
    _update_earlier_rows(book, handins, late_policy)
    return book, row_keys


@contextlib.contextmanager
def _pool(executor: concurrent.futures.Executor | None, workers: int | None) -> Iterator[concurrent.futures.Executor]:
    """``executor``, or a thread pool of ``workers`` that is shut down afterwards; an interrupted
    run (Ctrl-C, SIGTERM) ends the notebooks still running, and the rows graded stay."""
    pool = executor or concurrent.futures.ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
    try:
        yield pool
    except BaseException:
        stop_running()
        raise
    finally:
        if executor is None:
            pool.shutdown(wait=True, cancel_futures=True)


def _update_earlier_rows(book: Gradebook, handins: Mapping[str, Handin], late_policy: LatePolicy) -> None:
    """A roster or a late policy given on a later run reaches the rows graded before; a run
    without a policy keeps the lateness those rows were given."""
    for key, row in book.rows.items():
        if key in handins:
            row.student_id = handins[key].student_id or row.student_id
            row.lms_id, row.name = handins[key].lms_id or row.lms_id, handins[key].name or row.name
            row.email = handins[key].email or row.email
            if late_policy != NO_POLICY:
                _apply_handin(row, handins[key], late_policy, sum(row.points_possible.values()))


def _grade_jobs(jobs: Sequence[Job], pool: concurrent.futures.Executor, reference: Path, book: Gradebook,
                out_dir: Path, grades: list[Grade], progress: Callable[[Grade], None] | None,
                handins: Mapping[str, Handin], late_policy: LatePolicy, started: str,
                running: Callable[[str, str], None] | None = None) -> None:
    """Run ``jobs`` on ``pool``; each result is appended to ``grades.csv``, recorded in the
    gradebook, kept (feedback, executed notebook, log) and reported as it arrives; ``running`` as
    for :func:`grade_all`."""
    reference_text = reference.read_text()
    names = book.checks
    trusted = digest([(reference.name, reference.read_bytes()), *flowlab_sources()])
    regraded = {job.submission for job in jobs}
    with (out_dir / "grades.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*TABLE_HEAD, *names])
        for key in sorted(set(book.rows) - regraded):  # rows of earlier runs stay in the file
            writer.writerow(csv_row(_from_row(book.rows[key]), names))
        handle.flush()
        futures = {(pool.submit(grade_job, job) if running is None else pool.submit(_followed, job, running)): job
                   for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            job = futures[future]
            try:
                grade = future.result()
            except Exception as error:  # noqa: BLE001 - the grader's own failure: still a row
                reason = f"not graded: the grader failed ({type(error).__name__}: {error})"
                grade = Grade(job.submission, "crashed", {n: reason for n in names},
                              dict(Reference.from_text(reference_text).points_possible))
            _apply_handin(grade, handins.get(grade.submission, Handin()), late_policy, grade.max_points)
            _note_changed_grader_files(grade, reference, trusted)
            writer.writerow(csv_row(grade, names))
            handle.flush()
            handin = handins.get(grade.submission, Handin())
            book.record(Row(grade.submission, grade.status, grade.results, grade.points_possible, grade.notes,
                            grade.seconds, content_digest(job.content), grade.student_id, grade.days_late,
                            grade.late_penalty, grade.late_note, handin.lms_id, handin.name, handin.email, started))
            keep(grade, out_dir)
            grades.append(grade)
            if progress:
                progress(grade)


def _followed(job: Job, running: Callable[[str, str], None]) -> Grade:
    """:func:`grade_job` telling ``running`` (row key, line) that ``job`` starts, then how its cells go."""
    running(job.submission, "started")
    return grade_job(job, lambda line: running(job.submission, line.strip()))


def _note_changed_grader_files(grade: Grade, reference: Path, trusted: dict[str, str]) -> None:
    """Note on ``grade`` any grader file (reference, flowlab's sources) changed on disk since the start."""
    now = digest([(reference.name, _read(reference)),
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
    return Grade(row.submission, row.status, dict(row.results), dict(row.points_possible), list(row.notes), row.seconds,
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

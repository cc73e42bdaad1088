"""The instructor's sub-commands of ``flowlab``: ``student`` (make the hand-out), ``grade`` (a
class, from folders or LMS downloads, into grades.csv and LMS gradebooks), ``check`` (one
notebook, as the grader would) and ``gradescope`` (an autograder zip): their options, and the runs
of all but ``grade``, whose run is :mod:`flowlab.cli.grade_class`'s. Nothing heavy is imported
until a command runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flowlab.cli._common import grading_runner_missing, reference_error
from flowlab.cli.grade_class import run_grade
from flowlab.grader._setup import REFERENCE  # light: the packaged student notebook's path
from flowlab._validate import LIMITS

__all__ = ["add_commands", "SOLUTION", "STUDENT"]

SOLUTION = "notebooks/normalizing_flows.ipynb"
STUDENT = "notebooks/normalizing_flows_student.ipynb"


def _grading_options(parser: argparse.ArgumentParser) -> None:
    """The per-notebook limits ``grade`` and ``check`` share."""
    from flowlab.grader._limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT

    parser.add_argument("--timeout", type=LIMITS["timeout"].parse, default=DEFAULT_TIMEOUT,
                        help=f"wall-clock seconds per notebook (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--memory-mb", type=LIMITS["memory_mb"].parse, default=DEFAULT_MEMORY_MB,
                        help=f"memory limit per notebook in MiB (default: {DEFAULT_MEMORY_MB})")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``student``, ``grade``, ``check`` and ``gradescope`` to ``flowlab``'s sub-commands."""
    _add_student(commands)
    _add_grade(commands)
    _add_check(commands)
    _add_gradescope(commands)


def _add_student(commands: argparse._SubParsersAction) -> None:
    student = commands.add_parser(
        "student", help="write the student version of the solution notebook",
        description="Replace each solution region (### BEGIN/END SOLUTION) of the solution notebook "
                    "by a NotImplementedError placeholder, keep the check cells' expected outputs, "
                    "clear the other outputs.")
    student.add_argument("--solution", type=Path, default=Path(SOLUTION),
                         help=f"solution notebook (default: {SOLUTION})")
    student.add_argument("--out", type=Path, default=None,
                         help=f"student notebook to write (default: {STUDENT} and the copy inside "
                              "the package that check and grade compare against)")
    student.set_defaults(handler=_student)


def _add_grade(commands: argparse._SubParsersAction) -> None:
    grade = commands.add_parser(
        "grade", help="grade submitted notebooks and write a table of passed checks",
        description="Run each submission under pytest --nbval-lax with the official check cells, "
                    "isolated, in parallel, each within a time and memory limit; write grades.csv "
                    "(row by row as results arrive), grades.md, and per submission a feedback file, "
                    "the executed notebook and its log under OUT/submissions/. While notebooks run, stderr "
                    "shows each one's start, each check cell as it finishes and, every 15 s without one, "
                    "the cell running and the seconds so far.")
    grade.add_argument("submissions", type=Path, nargs="+",
                       help="submitted .ipynb files, folders searched for them, or one LMS download "
                            "(.zip: Canvas, Moodle or folders)")
    grade.add_argument("--reference", type=Path, default=REFERENCE,
                       help="notebook holding the official check cells (default: the student "
                            "notebook installed with flowlab)")
    grade.add_argument("--out", type=Path, default=Path("grades"),
                       help="output folder (default: grades)")
    _grading_options(grade)
    grade.add_argument("--workers", type=LIMITS["workers"].parse, default=os.cpu_count() or 1,
                       help="submissions graded at once (default: the number of cores, "
                            f"{os.cpu_count() or 1} here)")
    grade.add_argument("--force", action="store_true",
                       help="regrade submissions already graded in OUT from the same file (by default "
                            "a rerun grades only new and changed files and keeps every other row)")
    _add_class_options(grade)
    _add_late_options(grade)
    grade.set_defaults(handler=run_grade)


def _add_class_options(grade: argparse.ArgumentParser) -> None:
    """The roster and the LMS gradebook of ``grade``."""
    grade.add_argument("--roster", type=Path, default=None,
                       help="class list CSV (student_id, name, optional email and pattern): fills the "
                            "student_id column and lists unmatched files and students without a submission")
    grade.add_argument("--format", choices=("csv", "canvas", "moodle"), default="csv",
                       help="also fill in an LMS gradebook given by --gradebook: a Canvas gradebook export "
                            "or Moodle's offline grading worksheet (default: grades.csv only)")
    grade.add_argument("--gradebook", type=Path, default=None,
                       help="the LMS gradebook CSV to fill in, exported from Canvas or Moodle (with --format)")
    grade.add_argument("--assignment", default=None,
                       help="the Canvas export's assignment column to fill (part of its name), if it has several")
    grade.add_argument("--student", default=None,
                       help="with one notebook file: the student it belongs to (roster id or LMS id), so a "
                            "regrade from a file of any name replaces that student's row")


def _add_late_options(grade: argparse.ArgumentParser) -> None:
    """The late policy of ``grade``."""
    grade.add_argument("--due", default=None,
                       help="due date, ISO 8601 (2026-12-01T23:59, UTC unless a zone is given): lateness is "
                            "counted from it, in started days, for submissions whose LMS download has times")
    grade.add_argument("--extensions", type=Path, default=None,
                       help="CSV student_id,due: later due dates for some students (needs --roster or LMS ids)")
    grade.add_argument("--times", type=Path, default=None,
                       help="CSV submission,submitted_at (row key, student id or LMS id; ISO time): submission "
                            "times for --due (Moodle's worksheet given with --format moodle is read too)")
    grade.add_argument("--late-penalty", type=LIMITS["percent"].parse, default=0.0,
                       help="percent of the maximum points deducted per started day late (default: 0, none)")
    grade.add_argument("--late-cap", type=LIMITS["percent"].parse, default=100.0,
                       help="the late deduction's maximum, in percent of the maximum points (default: 100)")
    grade.add_argument("--timezone", default="UTC",
                       help="time zone of times written without one (--due, --extensions, --times, Moodle's "
                            "worksheet, which Moodle writes in your own zone): an IANA name such as "
                            "Europe/Berlin (default: UTC)")


def _add_check(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check", help="check one notebook exactly as the instructor's grading would",
        description="Grade one notebook as `flowlab grade` does and print each check's result. "
                    "Exit status 0 when every check passes, 1 otherwise.")
    check.add_argument("notebook", type=Path, help="your notebook (.ipynb)")
    check.add_argument("--reference", type=Path, default=REFERENCE,
                       help="notebook holding the official check cells (default: the student "
                            "notebook installed with flowlab)")
    _grading_options(check)
    check.set_defaults(handler=_check)


def _add_gradescope(commands: argparse._SubParsersAction) -> None:
    gradescope = commands.add_parser(
        "gradescope", help="write a Gradescope autograder zip that grades the lab with flowlab",
        description="Write Gradescope's autograder zip: setup.sh installs flowlab from the wheel, "
                    "run_autograder grades /autograder/submission/*.ipynb as `flowlab grade` does and "
                    "always writes /autograder/results/results.json, one test per check. Set "
                    "Gradescope's autograder timeout above --timeout.")
    gradescope.add_argument("--wheel", type=Path, default=None,
                            help="flowlab's wheel (default: the newest dist/flowlab-*.whl; build it with "
                                 "`python -m build --wheel`)")
    gradescope.add_argument("--out", type=Path, default=Path("autograder.zip"),
                            help="zip to write (default: autograder.zip)")
    gradescope.add_argument("--reference", type=Path, default=None,
                            help="notebook holding the official check cells (default: the one in the wheel)")
    gradescope.add_argument("--visibility", choices=("visible", "hidden", "after_due_date", "after_published"),
                            default="visible", help="when students see the results (default: visible)")
    gradescope.add_argument("--late-penalty", type=LIMITS["percent"].parse, default=0.0,
                            help="percent of the points deducted per started day after Gradescope's due date "
                                 "(default: 0, none)")
    gradescope.add_argument("--late-cap", type=LIMITS["percent"].parse, default=100.0,
                            help="the late deduction's maximum, in percent (default: 100)")
    _grading_options(gradescope)
    gradescope.set_defaults(handler=_gradescope)


def _student(args: argparse.Namespace) -> int:
    from flowlab.grader.student import write_student_notebook

    if not args.solution.is_file():
        print(f"flowlab student: error: argument --solution: no such file: {str(args.solution)!r}",
              file=sys.stderr)
        return 2
    targets = [args.out] if args.out is not None else [Path(STUDENT), REFERENCE]
    try:
        written = [write_student_notebook(args.solution, target) for target in targets]
    except ValueError as error:  # not a notebook, or no solution regions to strip
        print(f"flowlab student: error: argument --solution: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    print("wrote " + " and ".join(map(str, written)))
    return 0


def _gradescope(args: argparse.Namespace) -> int:
    from flowlab.grader.gradescope import build_autograder_zip

    wheel = args.wheel
    if wheel is None:
        built = sorted(Path("dist").glob("flowlab-*-py3-none-any.whl"), key=lambda p: p.stat().st_mtime)
        if not built:
            print("flowlab gradescope: error: argument --wheel: no dist/flowlab-*.whl here; build it with "
                  "`python -m pip install build && python -m build --wheel` or name it with --wheel",
                  file=sys.stderr)
            return 2
        wheel = built[-1]
    problem = None
    if not (wheel.is_file() and wheel.name.startswith("flowlab-") and wheel.suffix == ".whl"):
        problem = f"argument --wheel: not a flowlab wheel file: {str(wheel)!r}"
    elif args.reference is not None:
        problem = reference_error(args.reference)
    if problem:
        print(f"flowlab gradescope: error: {problem}", file=sys.stderr)
        return 2
    out = build_autograder_zip(wheel, args.out, reference=args.reference, timeout=args.timeout,
                               memory_mb=args.memory_mb, visibility=args.visibility,
                               late_penalty=args.late_penalty, late_cap=args.late_cap)
    print(f"wrote {out} (flowlab from {wheel.name}); upload it as the assignment's autograder and set "
          f"Gradescope's timeout above {args.timeout:g} s")
    return 0


def _check(args: argparse.Namespace) -> int:
    if grading_runner_missing("check"):
        return 2
    from flowlab.grader.grade import grade_notebook

    problem = reference_error(args.reference)
    if not problem and (not args.notebook.is_file() or args.notebook.suffix != ".ipynb"):
        problem = f"argument notebook: not a notebook file: {str(args.notebook)!r}"
    if problem:
        print(f"flowlab check: error: {problem}", file=sys.stderr)
        return 2
    print(f"checking {args.notebook} as the grader would (at most {args.timeout:g} s) ...", flush=True)
    grade = grade_notebook(args.notebook, args.reference, timeout=args.timeout, memory_mb=args.memory_mb,
                           progress=lambda line: print(line, file=sys.stderr, flush=True))
    width = max(len(name) for name in grade.results)
    for name, message in grade.results.items():
        earned = grade.points_possible[name] if message is None else 0
        print(f"{name:<{width}}  {earned:g}/{grade.points_possible[name]:g}  "
              f"{'pass' if message is None else 'FAIL: ' + message}")
    for note in grade.notes:
        print(f"note: {note}")
    print(f"{grade.status}: {grade.score:g}/{grade.max_points:g} points, "
          f"{grade.passed} of {len(grade.results)} checks passed")
    return 0 if grade.status == "graded" and grade.passed == len(grade.results) else 1



"""The instructor's sub-commands of ``flowlab``: ``student`` (make the hand-out), ``grade`` (a
class, from folders or LMS downloads, into grades.csv and LMS gradebooks), ``check`` (one
notebook, as the grader would) and ``gradescope`` (an autograder zip). Nothing heavy is imported
until a command runs."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flowlab.cli._common import fail
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
    grade.set_defaults(handler=_grade)


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


def _notebooks(paths: list[Path]) -> list[Path] | str:
    """Expand folders into the notebooks under them (a zip stands for itself); an error message
    for a bad path."""
    found: list[Path] = []
    for path in paths:
        if path.is_file() and path.suffix.lower() == ".zip":
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb")
                            if ".ipynb_checkpoints" not in p.parts and p.is_file())
        elif path.is_file() and path.suffix == ".ipynb":
            found.append(path)
        else:
            return f"argument submissions: not a notebook file or folder: {str(path)!r}"
    return found or "argument submissions: no .ipynb files found in " + ", ".join(map(str, paths))


def _reference_error(path: Path) -> str | None:
    if not path.is_file() or path.suffix != ".ipynb":
        return f"argument --reference: not a notebook file: {str(path)!r}"
    try:
        from flowlab.grader.grade import Reference

        Reference.from_text(path.read_text())
    except Exception as error:  # noqa: BLE001 - any problem is the instructor's to fix
        return f"argument --reference: cannot use {str(path)!r}: {error}"
    return None


def _grading_runner_missing(command: str) -> bool:
    """Print one line and return True when this Python lacks what grading runs notebooks with."""
    from flowlab.grader._setup import missing_grading_requirement

    problem = missing_grading_requirement(command)
    if problem:
        print(problem, file=sys.stderr)
    return problem is not None


def _grade_inputs_error(args: argparse.Namespace) -> str | None:
    """What is wrong with ``grade``'s arguments before anything is read, or None."""
    problem = _reference_error(args.reference)
    found = _notebooks(args.submissions)
    if problem or isinstance(found, str):
        return problem or found
    if args.format != "csv" and (args.gradebook is None or not args.gradebook.is_file()):
        return (f"argument --gradebook: --format {args.format} fills in the gradebook you exported from "
                f"{args.format.title()}; name that CSV file (got {str(args.gradebook) if args.gradebook else 'none'})")
    if args.roster is not None and not args.roster.is_file():
        return f"argument --roster: no such file: {str(args.roster)!r}"
    if args.times is not None and not args.times.is_file():
        return f"argument --times: no such file: {str(args.times)!r}"
    if args.extensions is not None and not args.extensions.is_file():
        return f"argument --extensions: no such file: {str(args.extensions)!r}"
    return _gradebook_error(args) or _student_error(args)


def _gradebook_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the LMS gradebook to fill (read now, before any notebook runs), or None."""
    from flowlab.grader.lms import exchange as lms

    if args.format == "csv":
        return None if args.gradebook is None else \
            "argument --gradebook: name the LMS it comes from with --format canvas or --format moodle"
    try:
        lms.check_gradebook(args.format, args.gradebook, args.assignment)
    except lms.LMSFormatError as error:
        return f"argument --gradebook: {error}"
    return None


def _student_error(args: argparse.Namespace) -> str | None:
    if args.student is None:
        return None
    if len(args.submissions) != 1 or args.submissions[0].suffix.lower() != ".ipynb" or not args.student.strip():
        return ("argument --student: names the student of one notebook file being regraded; got "
                f"{args.student!r} with {', '.join(map(str, args.submissions))}")
    return None


def _late_policy(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The late policy of --due, --extensions, --late-penalty and --late-cap (ValueError names the option)."""
    from flowlab.grader.late import LatePolicy, parse_time, parse_zone, read_extensions

    args.zone = parse_zone(args.timezone, "argument --timezone")
    due = parse_time(args.due, "argument --due", args.zone) if args.due else None
    extensions = {}
    if args.extensions is not None:
        try:
            extensions = read_extensions(args.extensions, args.zone)
        except ValueError as error:
            raise ValueError(f"argument --extensions: {error}") from None
    return LatePolicy(due=due, per_day=args.late_penalty, cap=args.late_cap, extensions=extensions)


def _class_list(args: argparse.Namespace, roster):  # type: ignore[no-untyped-def]
    """The submissions (with their students, when a roster is given) and the files not graded;
    prints what did not match."""
    from flowlab.grader.lms import exchange as lms
    from flowlab.grader.gradebook import class_root

    collected = lms.collect(args.submissions)
    collected.keyed(collected.root or class_root(args.out, [item.path for item in collected.submitted]))
    if args.student is not None:
        _give_student(collected, args)
    for note in collected.notes:
        print(f"  note: {note}")
    if not collected.submitted:
        collected.cleanup()
        listed = "".join(f"\n  {s.source}: {s.reason}" for s in collected.skipped)
        raise lms.LMSFormatError("no .ipynb files found in " + ", ".join(map(str, args.submissions)) + listed)
    if roster is not None:
        unmatched, absent = lms.match_roster(collected.submitted, roster)
        for item in unmatched:
            print(f"  not on the roster: {item.key} (graded; its student_id is left empty)")
        for student in absent:
            files = lms.handed_in_by(student, collected.skipped)
            print(f"  no notebook from {student.name} ({student.student_id})"
                  + (": handed in " + "; ".join(f"{s.source} ({s.reason})" for s in files) if files else ""))
    try:
        _attach_times(args, collected)
    except (lms.LMSFormatError, _OptionError):
        collected.cleanup()
        raise
    return collected


def _give_student(collected, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """``--student``: the one notebook's student, and the key of that student's row in OUT if any."""
    from flowlab.grader.gradebook import Gradebook

    (item,) = collected.submitted or (None,)
    if item is None:
        return
    rows = Gradebook.read(args.out).rows.values()
    earlier = sorted(row.submission for row in rows if args.student in (row.student_id, row.lms_id))
    item.lms_id = item.lms_id or args.student
    item.key = earlier[0] if earlier else f"{args.student}/{item.path.name}"


def _attach_times(args: argparse.Namespace, collected) -> None:  # type: ignore[no-untyped-def]
    """Submission times from Moodle's worksheet and --times; a late policy whose times cannot be
    read stops here, before grading."""
    from flowlab.grader.lms import exchange as lms

    if args.format == "moodle":
        times, unreadable = lms.moodle_times(args.gradebook, args.zone)
        if unreadable and (args.due or args.extensions):
            raise _OptionError(f"argument --gradebook: {len(unreadable)} submission times in its 'Last modified "
                               f"(submission)' column are not in Moodle's English date format (e.g. "
                               f"{unreadable[0]!r}): download the worksheet with English as your language, or "
                               "give the times with --times")
        lms.attach_times(collected.submitted, times)
    if args.times is not None:
        try:
            lms.attach_times(collected.submitted, lms.read_times(args.times, args.zone))
        except lms.LMSFormatError as error:
            raise _OptionError(f"argument --times: {error}") from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class _OptionError(Exception):
    """A bad option found while reading the class list; its message names the option."""


def _export(args: argparse.Namespace) -> list[str]:
    """Fill in the LMS gradebook named by --format/--gradebook from every row of OUT's gradebook
    (each student's newest); returns the graded students it could not place."""
    from flowlab.grader.lms import exchange as lms
    from flowlab.grader.gradebook import Gradebook

    if args.format == "csv":
        return []
    results = lms.results_from_rows(Gradebook.read(args.out).rows.values())
    fill = lms.fill_canvas if args.format == "canvas" else lms.fill_moodle
    target = args.out / f"{args.format}_grades.csv"
    options = {"assignment": args.assignment} if args.format == "canvas" else {}
    written, not_found = fill(args.gradebook, results, target, **options)
    print(f"filled in {written}: {len(results) - len(not_found)} of {len(results)} graded students, "
          f"for {args.format.title()}'s import")
    return not_found


def _grade(args: argparse.Namespace) -> int:
    if _grading_runner_missing("grade"):
        return 2
    from flowlab.grader.lms import exchange as lms
    from flowlab.grader.grade import grade_all

    problem = _grade_inputs_error(args)
    if problem:
        print(f"flowlab grade: error: {problem}", file=sys.stderr)
        return 2
    try:
        roster = lms.read_roster(args.roster) if args.roster is not None else None
    except lms.LMSFormatError as error:
        print(f"flowlab grade: error: argument --roster: {error}", file=sys.stderr)
        return 2
    try:
        args.late_policy = _late_policy(args)
    except ValueError as error:
        print(f"flowlab grade: error: {error}", file=sys.stderr)
        return 2
    try:
        collected = _class_list(args, roster)
    except (lms.LMSFormatError, FileNotFoundError) as error:
        print(f"flowlab grade: error: argument submissions: {error}", file=sys.stderr)
        return 2
    except _OptionError as error:
        print(f"flowlab grade: error: {error}", file=sys.stderr)
        return 2
    try:
        return _grade_collected(args, collected, grade_all)
    finally:
        collected.cleanup()


def _handins(collected) -> dict:  # type: ignore[no-untyped-def]
    """Row key -> who handed it in and when, for grade_all."""
    from flowlab.grader.gradebook import Handin

    def handin(item) -> Handin:  # type: ignore[no-untyped-def]
        student = item.student
        return Handin(student.student_id if student else item.lms_id, item.submitted_at, item.late, item.lms_id,
                      student.name if student and student.name else item.name, student.email if student else "")
    return {item.key: handin(item) for item in collected.submitted}


def _grade_collected(args: argparse.Namespace, collected, grade_all) -> int:  # type: ignore[no-untyped-def]
    which = "every one" if args.force else f"those not yet graded in {args.out} from the same file"
    print(f"{len(collected.submitted)} notebooks found; grading {which}, {args.workers} at a time, "
          f"{args.timeout:g} s each at most; rows go to {args.out / 'grades.csv'} as they finish", flush=True)
    _note_download(args)
    start, replaced = time.perf_counter(), []

    def report(grade) -> None:  # type: ignore[no-untyped-def]
        late = f", {grade.late_note}" if grade.late_note else ""
        print(f"  {grade.submission}: {grade.status}, {grade.final:g}/{grade.max_points:g} points{late} "
              f"({grade.seconds:.0f} s){'; notes: ' + '; '.join(grade.notes) if grade.notes else ''}", flush=True)

    signal.signal(signal.SIGTERM, _interrupt)  # `kill` ends the notebooks running too, like Ctrl-C
    try:
        grades = grade_all([item.path for item in collected.submitted], args.reference, args.out,
                           workers=args.workers, timeout=args.timeout, memory_mb=args.memory_mb,
                           progress=report, force=args.force, root=collected.root, handins=_handins(collected),
                           late_policy=args.late_policy, keys=[item.key for item in collected.submitted],
                           replaced=replaced, running=_running_lines())
    except ValueError as error:  # OUT holds another class's gradebook
        print(f"flowlab grade: error: argument --out: {error}", file=sys.stderr)
        return 2
    _record_download(args)
    for line in replaced:
        print(f"  regraded: {line}")
    _account(args, collected, grades)
    not_placed = _export(args)
    print(f"graded {len(grades)} notebook{'s' if len(grades) != 1 else ''} in {time.perf_counter() - start:.0f} s; "
          f"wrote {args.out / 'grades.csv'}, {args.out / 'grades.md'} and {args.out / 'submissions'}/")
    if not_placed:
        print(f"flowlab grade: error: {len(not_placed)} graded student{'s are' if len(not_placed) != 1 else ' is'} "
              f"not in {args.gradebook}, so {args.out / (args.format + '_grades.csv')} lacks their grade: "
              + "; ".join(not_placed) + ". Match them with --roster (student_id as the LMS knows them) or "
              "export the gradebook again", file=sys.stderr)
        return 1
    return 0


def _running_lines() -> Callable[[str, str], None]:
    """What ``flowlab grade`` shows on stderr while notebooks run: each line (from the grading
    threads) whole, after the notebook's key, e.g. ``  ann/lab.ipynb: 9 s  moons_data: cell passed; ...``."""
    lock = threading.Lock()

    def show(key: str, line: str) -> None:
        with lock:
            print(f"  {key}: {line}", file=sys.stderr, flush=True)
    return show


def _account(args: argparse.Namespace, collected, grades) -> None:  # type: ignore[no-untyped-def]
    """Say what became of every file of the input, on screen and at the end of grades.md."""
    from flowlab.grader.reports import append_section

    regraded = {grade.submission for grade in grades}
    unchanged = [item.key for item in collected.submitted if item.key not in regraded]
    lines = [f"{item.source or item.key}: graded as {item.key}" for item in collected.submitted
             if item.key in regraded]
    lines += [f"{key}: graded before from the same file (--force regrades it)" for key in unchanged]
    lines += [f"{item.source}: {item.reason}" for item in collected.skipped]
    total = len(collected.submitted) + len(collected.skipped)
    print(f"{total} file{'s' if total != 1 else ''} in the input: {len(grades)} graded now, {len(unchanged)} "
          f"graded before, {len(collected.skipped)} not graded" + "".join(
              f"\n  {s.source}: {s.reason}" for s in collected.skipped))
    append_section(args.out / "grades.md", "Every file of the last run's input", lines)
    if unchanged:
        print(f"skipped {len(unchanged)} notebook{'s' if len(unchanged) != 1 else ''} graded before from the same "
              "file (--force regrades them)")


def _download(args: argparse.Namespace) -> Path | None:
    """The LMS download (.zip) given, or None."""
    return next((p for p in args.submissions if p.suffix.lower() == ".zip"), None)


def _download_name(path: Path) -> str:
    """A download's name without the browser's ' (1)' and the extension: 'course-lab submissions'."""
    import re

    return re.sub(r"\s*\(\d+\)$", "", path.stem).strip()


def _note_download(args: argparse.Namespace) -> None:
    """Warn when a zip from another download (another assignment?) is graded into the same OUT."""
    from flowlab.grader.gradebook import Gradebook

    download, earlier = _download(args), Gradebook.read(args.out).downloads
    if download is not None and earlier and _download_name(download) not in earlier:
        print(f"  warning: {download.name} is not the download {args.out} was graded from "
              f"({', '.join(earlier)}): if it is another assignment, grade it into another --out; its rows "
              "are added to this class's", flush=True)


def _record_download(args: argparse.Namespace) -> None:
    from flowlab.grader.gradebook import Gradebook

    download, book = _download(args), Gradebook.read(args.out)
    if download is not None and _download_name(download) not in book.downloads:
        book.downloads.append(_download_name(download))
        book.save()


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
        problem = _reference_error(args.reference)
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
    if _grading_runner_missing("check"):
        return 2
    from flowlab.grader.grade import grade_notebook

    problem = _reference_error(args.reference)
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



"""The ``flowlab`` command: run the lab headless, make the student notebook, grade submissions.

    flowlab train [--flow maf] [--layers 3] [--hidden-units 128,128] [--bins 16] [--epochs 80] ... [--json]
    flowlab student [--solution NB] [--out NB]
    flowlab grade SUBMISSIONS... [--out DIR] [--timeout SECONDS] [--workers N] [--force]
    flowlab check NOTEBOOK [--timeout SECONDS]
    flowlab gradescope [--wheel WHEEL] [--out ZIP] [--visibility visible]
    flowlab compare [--seeds 0 1 2 3 4] [--epochs 80] [--out DIR] [--json]

``check`` and ``grade`` compare against the student notebook that ships inside the package
(``--reference`` overrides it), so they work from any folder once flowlab is installed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from flowlab._grade_setup import REFERENCE  # light: the packaged student notebook's path

__all__ = ["main", "build_parser"]

SOLUTION = "notebooks/normalizing_flows.ipynb"
STUDENT = "notebooks/normalizing_flows_student.ipynb"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


class _LazyParser(_Parser):
    """A sub-command parser whose arguments are added on first use: ``flowlab --help`` and the
    other sub-commands then never import what ``train``'s options need (TensorFlow)."""

    def __init__(self, *args, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._add_arguments = add_arguments

    def _complete(self) -> None:
        if self._add_arguments is not None:
            add, self._add_arguments = self._add_arguments, None
            add(self)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()


#: Sizes ``flowlab train`` accepts. Beyond them a run cannot be meant: it would exhaust memory
#: (networks, data, the exact density's quadrature at tiny noise) or run for days.
LIMITS = {
    "layers": (1, 32),
    "hidden_units": (1, 1024),  # each hidden layer's width
    "hidden_layers": (1, 4),  # how many hidden layers
    "epochs": (1, 10_000),
    "batch_size": (1, 1_000_000),
    "samples": (1, 1_000_000),
    "seed": (0, 2**31 - 1),
    "noise": (0.01, 1.0),
    "learning_rate": (0.0, 1.0),  # exclusive of 0
    "bins": (2, 64),  # spline bins
    "bound": (0.5, 100.0),  # half-width of the splines' interval
}


def _int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low:,} to {high:,}, got {text!r}")
        return value
    return parse


def _float_in(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` to ``high`` (``low`` excluded if ``low_open``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above_low = value > low if low_open else value >= low
        if not (math.isfinite(value) and above_low and value <= high):
            bound = f"> {low:g} and <= {high:g}" if low_open else f"from {low:g} to {high:g}"
            raise argparse.ArgumentTypeError(f"must be a number {bound}, got {text!r}")
        return value
    return parse


def _hidden_units(text: str) -> tuple[int, ...]:
    """An argparse type: comma-separated hidden layer widths within :data:`LIMITS`."""
    (low, high), (fewest, most) = LIMITS["hidden_units"], LIMITS["hidden_layers"]
    try:
        units = tuple(int(part) for part in text.split(","))
    except ValueError:
        units = ()
    if not fewest <= len(units) <= most or any(not low <= unit <= high for unit in units):
        raise argparse.ArgumentTypeError(
            f"must be {fewest} to {most} comma-separated integers from {low} to {high} such as 128,128, "
            f"got {text!r}")
    return units


def _grading_options(parser: argparse.ArgumentParser) -> None:
    """The per-notebook limits ``grade`` and ``check`` share."""
    from flowlab._grade_limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT

    parser.add_argument("--timeout", type=_float_in(0, 86_400, low_open=True), default=DEFAULT_TIMEOUT,
                        help=f"wall-clock seconds per notebook (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--memory-mb", type=_int_in(256, 1_048_576), default=DEFAULT_MEMORY_MB,
                        help=f"memory limit per notebook in MiB (default: {DEFAULT_MEMORY_MB})")


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    """``flowlab train``'s options; their defaults come from flowlab.flows and flowlab.train."""
    from flowlab.flows import ACTIVATIONS, FLOWS, SPLINE_BINS, SPLINE_BOUND
    from flowlab.train import TrainSettings

    defaults = TrainSettings()
    train.add_argument("--flow", choices=FLOWS, default="maf", help="flow family (default: maf)")
    train.add_argument("--layers", type=_int_in(*LIMITS["layers"]), default=3,
                       help="number of [flow layer + Permute] blocks (default: 3)")
    train.add_argument("--hidden-units", type=_hidden_units, default=(128, 128),
                       help="hidden layer sizes of each network, comma-separated (default: 128,128)")
    train.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                       help="hidden activation (default: relu)")
    train.add_argument("--bins", type=_int_in(*LIMITS["bins"]), default=SPLINE_BINS,
                       help=f"bins of each spline, --flow spline only (default: {SPLINE_BINS})")
    train.add_argument("--bound", type=_float_in(*LIMITS["bound"]), default=SPLINE_BOUND,
                       help="the splines cover [-bound, bound], the identity outside; --flow spline only "
                            f"(default: {SPLINE_BOUND:g})")
    train.add_argument("--epochs", type=_int_in(*LIMITS["epochs"]), default=defaults.epochs,
                       help=f"training epochs (default: {defaults.epochs})")
    train.add_argument("--batch-size", type=_int_in(*LIMITS["batch_size"]), default=defaults.batch_size,
                       help=f"mini-batch size, at most --samples (default: {defaults.batch_size})")
    train.add_argument("--learning-rate", type=_float_in(*LIMITS["learning_rate"], low_open=True),
                       default=defaults.learning_rate,
                       help=f"peak Adam learning rate (default: {defaults.learning_rate:g})")
    train.add_argument("--samples", type=_int_in(*LIMITS["samples"]), default=10_000,
                       help="training points (default: 10000)")
    train.add_argument("--noise", type=_float_in(*LIMITS["noise"]), default=0.05,
                       help="moons noise std (default: 0.05)")
    train.add_argument("--seed", type=_int_in(*LIMITS["seed"]), default=0, help="random seed (default: 0)")
    train.add_argument("--out", type=Path, default=Path("flowlab-run"),
                       help="output folder, created if missing (default: flowlab-run)")
    train.add_argument("--json", action="store_true",
                       help="print the metrics as one JSON object on the last line of stdout")


def _add_compare_arguments(compare: argparse.ArgumentParser) -> None:
    """``flowlab compare``'s options; the models come from flowlab.compare's registry."""
    from flowlab.compare import MODELS

    compare.add_argument("--seeds", type=_int_in(*LIMITS["seed"]), nargs="+", default=[0],
                         help="seeds to train every model with (default: 0); 5 seeds take about 8 minutes")
    compare.add_argument("--epochs", type=_int_in(*LIMITS["epochs"]), default=80,
                         help="training epochs of every model (default: 80)")
    compare.add_argument("--samples", type=_int_in(1_000, LIMITS["samples"][1]), default=10_000,
                         help="training points (default: 10000)")
    compare.add_argument("--noise", type=_float_in(*LIMITS["noise"]), default=0.05,
                         help="moons noise std (default: 0.05)")
    compare.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                         help="models to compare (default: all)")
    compare.add_argument("--out", type=Path, default=Path("flowlab-compare"),
                         help="output folder, created if missing (default: flowlab-compare)")
    compare.add_argument("--json", action="store_true",
                         help="print the summary as one JSON object on the last line of stdout")


def build_parser() -> argparse.ArgumentParser:
    """The ``flowlab`` argument parser (sub-commands: ``train``, ``student``, ``grade``, ``check``).

    Building it imports nothing heavy: ``train``'s options are added when ``train`` is parsed.
    """
    parser = _Parser(prog="flowlab", description="The normalizing-flows lab, headless.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_LazyParser)
    commands.add_parser(
        "train", help="train a flow on the two moons, evaluate it and save figures",
        description="Train a flow on two-moons data, evaluate it on 100,000 fresh points "
                    "against the exact density, and write metrics, figures and the flow to --out.",
        add_arguments=_add_train_arguments)
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
    grade = commands.add_parser(
        "grade", help="grade submitted notebooks and write a table of passed checks",
        description="Run each submission under pytest --nbval-lax with the official check cells, "
                    "isolated, in parallel, each within a time and memory limit; write grades.csv "
                    "(row by row as results arrive), grades.md, and per submission a feedback file, "
                    "the executed notebook and its log under OUT/submissions/.")
    grade.add_argument("submissions", type=Path, nargs="+",
                       help="submitted .ipynb files, folders searched for them, or one LMS download "
                            "(.zip: Canvas, Moodle or folders)")
    grade.add_argument("--reference", type=Path, default=REFERENCE,
                       help="notebook holding the official check cells (default: the student "
                            "notebook installed with flowlab)")
    grade.add_argument("--out", type=Path, default=Path("grades"),
                       help="output folder (default: grades)")
    _grading_options(grade)
    grade.add_argument("--workers", type=_int_in(1, 1024), default=os.cpu_count() or 1,
                       help="submissions graded at once (default: the number of cores, "
                            f"{os.cpu_count() or 1} here)")
    grade.add_argument("--force", action="store_true",
                       help="regrade submissions already graded in OUT from the same file (by default "
                            "a rerun grades only new and changed files and keeps every other row)")
    grade.add_argument("--roster", type=Path, default=None,
                       help="class list CSV (student_id, name, optional email and pattern): fills the "
                            "student_id column and lists unmatched files and students without a submission")
    grade.add_argument("--format", choices=("csv", "canvas", "moodle"), default="csv",
                       help="also fill in an LMS gradebook given by --gradebook: a Canvas gradebook export "
                            "or Moodle's offline grading worksheet (default: grades.csv only)")
    grade.add_argument("--gradebook", type=Path, default=None,
                       help="the LMS gradebook CSV to fill in, exported from Canvas or Moodle (with --format)")
    grade.add_argument("--due", default=None,
                       help="due date, ISO 8601 (2026-12-01T23:59, UTC unless a zone is given): lateness is "
                            "counted from it, in started days, for submissions whose LMS download has times")
    grade.add_argument("--extensions", type=Path, default=None,
                       help="CSV student_id,due: later due dates for some students (needs --roster or LMS ids)")
    grade.add_argument("--times", type=Path, default=None,
                       help="CSV submission,submitted_at (row key, student id or LMS id; ISO time): submission "
                            "times for --due (Moodle's worksheet given with --format moodle is read too)")
    grade.add_argument("--late-penalty", type=_float_in(0, 100), default=0.0,
                       help="percent of the maximum points deducted per started day late (default: 0, none)")
    grade.add_argument("--late-cap", type=_float_in(0, 100), default=100.0,
                       help="the late deduction's maximum, in percent of the maximum points (default: 100)")
    grade.add_argument("--assignment", default=None,
                       help="the Canvas export's assignment column to fill (part of its name), if it has several")
    check = commands.add_parser(
        "check", help="check one notebook exactly as the instructor's grading would",
        description="Grade one notebook as `flowlab grade` does and print each check's result. "
                    "Exit status 0 when every check passes, 1 otherwise.")
    check.add_argument("notebook", type=Path, help="your notebook (.ipynb)")
    check.add_argument("--reference", type=Path, default=REFERENCE,
                       help="notebook holding the official check cells (default: the student "
                            "notebook installed with flowlab)")
    _grading_options(check)
    commands.add_parser(
        "compare", help="train a VAE, a GAN and flows on the same moons and score them against the truth",
        description="Train every model of flowlab.compare (VAE, VAE with a flow prior, GAN, flow by maximum "
                    "likelihood, flow by reverse KL) on the same data for each seed, score each on its "
                    "samples and, where it has one, its likelihood; write compare.json and figures to --out.",
        add_arguments=_add_compare_arguments)
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
    gradescope.add_argument("--late-penalty", type=_float_in(0, 100), default=0.0,
                            help="percent of the points deducted per started day after Gradescope's due date "
                                 "(default: 0, none)")
    gradescope.add_argument("--late-cap", type=_float_in(0, 100), default=100.0,
                            help="the late deduction's maximum, in percent (default: 100)")
    _grading_options(gradescope)
    return parser


def _student(args: argparse.Namespace) -> int:
    from flowlab.student import write_student_notebook

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
        from flowlab.grade import Reference

        Reference.from_text(path.read_text())
    except Exception as error:  # noqa: BLE001 - any problem is the instructor's to fix
        return f"argument --reference: cannot use {str(path)!r}: {error}"
    return None


def _grading_runner_missing(command: str) -> bool:
    """Print one line and return True when this Python lacks what grading runs notebooks with."""
    from flowlab._grade_setup import missing_grading_requirement

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
    return None


def _late_policy(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The late policy of --due, --extensions, --late-penalty and --late-cap (ValueError names the option)."""
    from flowlab.late import LatePolicy, parse_time, read_extensions

    due = parse_time(args.due, "argument --due") if args.due else None
    extensions = {}
    if args.extensions is not None:
        try:
            extensions = read_extensions(args.extensions)
        except ValueError as error:
            raise ValueError(f"argument --extensions: {error}") from None
    return LatePolicy(due=due, per_day=args.late_penalty, cap=args.late_cap, extensions=extensions)


def _class_list(args: argparse.Namespace, roster):  # type: ignore[no-untyped-def]
    """The submissions (with their students, when a roster is given); prints what did not match."""
    from flowlab import lms
    from flowlab.gradebook import class_root

    collected = lms.collect(args.submissions)
    collected.keyed(collected.root or class_root(args.out, [item.path for item in collected.submitted]))
    for note in collected.notes:
        print(f"  note: {note}")
    if not collected.submitted:
        collected.cleanup()
        raise lms.LMSFormatError("no .ipynb files found in " + ", ".join(map(str, args.submissions)))
    if roster is not None:
        unmatched, absent = lms.match_roster(collected.submitted, roster)
        for item in unmatched:
            print(f"  not on the roster: {item.key} (graded; its student_id is left empty)")
        for student in absent:
            print(f"  no submission from {student.name} ({student.student_id})")
    if args.format == "moodle":
        lms.attach_times(collected.submitted, lms.moodle_times(args.gradebook))
    if args.times is not None:
        try:
            lms.attach_times(collected.submitted, lms.read_times(args.times))
        except lms.LMSFormatError as error:
            collected.cleanup()
            raise _OptionError(f"argument --times: {error}") from None
    return collected


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class _OptionError(Exception):
    """A bad option found while reading the class list; its message names the option."""


def _export(args: argparse.Namespace, collected) -> None:  # type: ignore[no-untyped-def]
    """Fill in the LMS gradebook named by --format/--gradebook with every graded row of OUT."""
    from flowlab import lms
    from flowlab.grade import graded_rows

    if args.format == "csv":
        return
    results = lms.results_by_student(collected.submitted, graded_rows(args.out))
    fill = lms.fill_canvas if args.format == "canvas" else lms.fill_moodle
    target = args.out / f"{args.format}_grades.csv"
    options = {"assignment": args.assignment} if args.format == "canvas" else {}
    written, not_found = fill(args.gradebook, results, target, **options)
    for name in not_found:
        print(f"  {name}: graded, but not found in {args.gradebook}")
    print(f"filled in {written} ({len(results) - len(not_found)} students) for {args.format.title()}'s import")


def _grade(args: argparse.Namespace) -> int:
    if _grading_runner_missing("grade"):
        return 2
    from flowlab import lms
    from flowlab.grade import grade_all

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


def _grade_collected(args: argparse.Namespace, collected, grade_all) -> int:  # type: ignore[no-untyped-def]
    which = "every one" if args.force else f"those not yet graded in {args.out} from the same file"
    print(f"{len(collected.submitted)} notebooks found; grading {which}, {args.workers} at a time, "
          f"{args.timeout:g} s each at most; rows go to {args.out / 'grades.csv'} as they finish", flush=True)
    start = time.perf_counter()

    def report(grade) -> None:  # type: ignore[no-untyped-def]
        late = f", {grade.late_note}" if grade.late_note else ""
        print(f"  {grade.submission}: {grade.status}, {grade.final:g}/{grade.max_points:g} points{late} "
              f"({grade.seconds:.0f} s){'; notes: ' + '; '.join(grade.notes) if grade.notes else ''}", flush=True)

    from flowlab.gradebook import Handin

    handins = {item.key: Handin(item.student.student_id if item.student else item.lms_id, item.submitted_at,
                                item.late) for item in collected.submitted}
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` ends the notebooks running too, like Ctrl-C
    try:
        grades = grade_all([item.path for item in collected.submitted], args.reference, args.out,
                           workers=args.workers, timeout=args.timeout, memory_mb=args.memory_mb,
                           progress=report, force=args.force, root=collected.root, handins=handins,
                           late_policy=args.late_policy)
    except ValueError as error:  # OUT holds another class's gradebook
        print(f"flowlab grade: error: argument --out: {error}", file=sys.stderr)
        return 2
    try:
        _export(args, collected)
    except ValueError as error:  # an export that is not Canvas's or Moodle's
        print(f"flowlab grade: error: argument --gradebook: {error}", file=sys.stderr)
        return 2
    skipped = len(collected.submitted) - len(grades)
    if skipped:
        print(f"skipped {skipped} notebook{'s' if skipped != 1 else ''} graded before from the same file "
              "(--force regrades them)")
    print(f"graded {len(grades)} notebook{'s' if len(grades) != 1 else ''} in {time.perf_counter() - start:.0f} s; wrote "
          f"{args.out / 'grades.csv'}, {args.out / 'grades.md'} and {args.out / 'submissions'}/")
    return 0


def _gradescope(args: argparse.Namespace) -> int:
    from flowlab.gradescope import build_autograder_zip

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


def _compare(args: argparse.Namespace) -> int:
    problem = _usable_folder(args.out)
    if problem is not None:
        print(f"flowlab compare: error: argument --out: cannot write to the folder {str(args.out)!r}: {problem}",
              file=sys.stderr)
        return 2
    from flowlab.compare import compare_seed, summarize

    per_seed, first = {}, {}
    for seed in dict.fromkeys(args.seeds):
        start = time.perf_counter()
        per_seed[seed], trained = compare_seed(seed, args.epochs, args.samples, args.noise, args.models,
                                               progress=not args.json, keep=not first)
        first = first or trained
        if not args.json:
            print(f"seed {seed} done in {time.perf_counter() - start:.0f} s", flush=True)
    summary = summarize(per_seed, args.noise)
    (args.out / "compare.json").write_text(json.dumps(summary, indent=1) + "\n")
    _compare_figures(first, args.out, args.noise, args.seeds[0])
    if args.json:
        print(json.dumps(summary))
    else:
        _print_compare_table(summary)
        print(f"wrote {args.out / 'compare.json'} and figures to {args.out}/")
    return 0


def _print_compare_table(summary: dict) -> None:
    print(f"entropy of the truth: {summary['entropy']:.3f} nats; means over seeds {summary['seeds']}")
    print(f"{'model':<16} {'E_q[log p]':>10} {'energy':>8} {'gap':>7} {'NLL':>7} {'NLL <=':>7} "
          f"{'seconds':>7} failures")
    for name, model in summary["models"].items():
        cells = [model["sample_log_p_true"], model["energy_distance"], model["gap_disc_fraction"],
                 model["heldout_nll"], model["nll_upper_bound"], model["train_seconds"]]
        shown = ["-" if value is None else f"{value:.3f}" for value in cells]
        print(f"{name:<16} {shown[0]:>10} {shown[1]:>8} {shown[2]:>7} {shown[3]:>7} {shown[4]:>7} "
              f"{shown[5]:>7} {model['diverged']} NaN, {model['mode_collapse']} collapsed")


def _compare_figures(trained: dict, out: Path, noise: float, seed: int) -> None:
    """samples.png, densities.png, vae_mean.png, gan.png and kl_directions.png from one seed's models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flowlab import plots
    from flowlab.compare import MODELS
    from flowlab.data import make_moons, moons_log_prob

    exact = lambda x: moons_log_prob(x, noise=noise)  # noqa: E731
    ok = {name: t for name, t in trained.items() if t.model is not None}
    samples = {name: t.sample(5000, seed) for name, t in ok.items()}
    figures = {"samples.png": lambda: plots.plot_point_panels(
        {"truth": make_moons(5000, noise=noise, seed=seed + 1), **{MODELS[n].label: s for n, s in samples.items()}},
        suptitle="5,000 samples of each model, on one scale")}
    densities = {MODELS[name].label: (t.model if name.startswith("flow") else
                                      (lambda x, m=t.model: -m.iwae_bound(x, k=100)))
                 for name, t in ok.items() if name != "gan"}
    if densities:
        figures["densities.png"] = lambda: plots.plot_densities(
            {**densities, "exact": exact}, log=True, n=120,
            suptitle="log10 density (a VAE's: exp of minus its k=100 bound, a lower bound); a GAN has none")
    if "vae" in ok:
        figures["vae_mean.png"] = lambda: plots.plot_point_panels(
            {"VAE samples": samples["vae"], "VAE decoder means": ok["vae"].model.decoder_mean(5000, seed)},
            suptitle="A VAE's samples and its decoder's means for the same latents")
    if "gan" in ok:
        figures["gan.png"] = lambda: plots.plot_points_over_density(
            samples["gan"], exact, "GAN samples over the exact density")
    if "flow" in ok and "flow_reverse_kl" in ok:
        figures["kl_directions.png"] = lambda: plots.plot_densities(
            {"forward KL (maximum likelihood)": ok["flow"].model, "reverse KL": ok["flow_reverse_kl"].model},
            log=True, n=120, suptitle="Mass-covering vs mode-seeking: log10 density")
    for name, draw in figures.items():
        draw()
        plt.savefig(out / name, dpi=90, bbox_inches="tight")
        plt.close("all")


def _train_error(message: str) -> int:
    print(f"flowlab train: error: {message}", file=sys.stderr)
    return 2


def _usable_folder(out: Path) -> str | None:
    """Create ``out`` if needed and try writing in it: None if that works, else why not."""
    if out.exists() and not out.is_dir():
        return "it is a file, not a folder"
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        return error.strerror or type(error).__name__
    return None


def _check(args: argparse.Namespace) -> int:
    if _grading_runner_missing("check"):
        return 2
    from flowlab.grade import grade_notebook

    problem = _reference_error(args.reference)
    if not problem and (not args.notebook.is_file() or args.notebook.suffix != ".ipynb"):
        problem = f"argument notebook: not a notebook file: {str(args.notebook)!r}"
    if problem:
        print(f"flowlab check: error: {problem}", file=sys.stderr)
        return 2
    print(f"checking {args.notebook} as the grader would (at most {args.timeout:g} s) ...", flush=True)
    grade = grade_notebook(args.notebook, args.reference, timeout=args.timeout, memory_mb=args.memory_mb)
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


def _train(args: argparse.Namespace) -> int:
    if args.batch_size > args.samples:
        return _train_error(f"argument --batch-size: must be at most --samples ({args.samples}), "
                            f"got {args.batch_size}")
    problem = _usable_folder(args.out)
    if problem is not None:
        return _train_error(f"argument --out: cannot write to the folder {str(args.out)!r}: {problem}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flowlab import plots
    from flowlab.anatomy import DensitySnapshots, snapshot_epochs
    from flowlab.data import make_moons, moons_log_prob
    from flowlab.flows import FlowConfig, make_flow
    from flowlab.io import save_flow
    from flowlab.measure import evaluate
    from flowlab.train import TrainingDiverged, TrainSettings, fit

    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size,
                             learning_rate=args.learning_rate, seed=args.seed)
    data = make_moons(args.samples, noise=args.noise, seed=args.seed)
    config = FlowConfig(flow=args.flow, num_layers=args.layers, hidden_units=args.hidden_units,
                        activation=args.activation, seed=args.seed, bins=args.bins, bound=args.bound)
    flow = make_flow(config)
    quiet = args.json
    snapshots = DensitySnapshots(flow, snapshot_epochs(args.epochs), noise=args.noise)
    start = time.perf_counter()
    try:
        history = fit(flow, data, settings, progress=not quiet, callbacks=[snapshots])
    except TrainingDiverged as error:
        print(f"flowlab train: {error}", file=sys.stderr)
        return 1
    train_seconds = time.perf_counter() - start
    metrics = {
        "flow": args.flow,
        "epochs": args.epochs,
        "train_seconds": round(train_seconds, 3),
        **evaluate(flow, noise=args.noise),
        "final_train_loss": float(history.history["loss"][-1]),
        "settings": {**vars(args), "out": str(args.out), "hidden_units": list(args.hidden_units),
                     "batch_size": settings.batch_size, "learning_rate": settings.learning_rate},
    }
    out = args.out
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    save_flow(flow, out / "flow")

    figures = {
        "data.png": lambda: plots.plot_points(data, "Training data: two moons", lim=2.5),
        "density.png": lambda: plots.plot_densities(
            {"learned density": flow,
             "exact density": lambda x: moons_log_prob(x, noise=args.noise)},
            lim=2.5, suptitle=f"{args.flow.upper()} after {args.epochs} epochs"),
        "samples.png": lambda: plots.plot_points(flow.sample(len(data), seed=args.seed).numpy(),
                                                 "Samples from the trained flow", lim=2.5),
        "loss.png": lambda: plots.plot_loss(history.history["loss"], floor=metrics["entropy"]),
        "layers.png": lambda: plots.plot_chain_stages(
            flow, flow.distribution.sample(2000, seed=(args.seed, 1)).numpy()),
        "training.png": lambda: plots.plot_density_snapshots(snapshots.snapshots, entropy=metrics["entropy"],
                                                             log=True, columns=3),
    }
    for name, draw in figures.items():
        draw()
        plt.savefig(out / name, dpi=100, bbox_inches="tight")
        plt.close("all")

    if quiet:
        print(json.dumps(metrics))
    else:
        print(f"trained in {train_seconds:.1f} s; held-out NLL {metrics['heldout_nll']:.4f} nats, "
              f"KL to the exact density {metrics['kl_to_exact']:.4f} nats; wrote {out}/")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowlab`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    commands = {"train": _train, "student": _student, "grade": _grade, "check": _check,
                "gradescope": _gradescope, "compare": _compare}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

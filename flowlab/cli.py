"""The ``flowlab`` command: run the lab headless, make the student notebook, grade submissions.

    flowlab train [--flow maf] [--layers 3] [--hidden-units 128,128] [--epochs 80] ... [--json]
    flowlab student [--solution NB] [--out NB]
    flowlab grade SUBMISSIONS... [--out DIR] [--timeout SECONDS] [--workers N]
    flowlab check NOTEBOOK [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser"]

SOLUTION = "notebooks/normalizing_flows.ipynb"
STUDENT = "notebooks/normalizing_flows_student.ipynb"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _float(text: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        allowed = "a finite number > 0" if positive else "a finite number >= 0"
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    return _float(text, positive=True)


def _non_negative_float(text: str) -> float:
    return _float(text, positive=False)


def _hidden_units(text: str) -> tuple[int, ...]:
    try:
        units = tuple(int(part) for part in text.split(","))
    except ValueError:
        units = ()
    if not units or any(unit < 1 for unit in units):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive integers such as 128,128, got {text!r}")
    return units


def _grading_options(parser: argparse.ArgumentParser) -> None:
    from flowlab.grade import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT

    parser.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT,
                        help=f"wall-clock seconds per notebook (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--memory-mb", type=_positive_int, default=DEFAULT_MEMORY_MB,
                        help=f"memory limit per notebook in MiB (default: {DEFAULT_MEMORY_MB})")


def build_parser() -> argparse.ArgumentParser:
    """The ``flowlab`` argument parser (sub-commands: ``train``)."""
    from flowlab.flows import ACTIVATIONS, FLOWS  # light: no training state
    from flowlab.train import TrainSettings

    defaults = TrainSettings()
    parser = _Parser(prog="flowlab", description="The normalizing-flows lab, headless.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser(
        "train", help="train a flow on the two moons, evaluate it and save figures",
        description="Train a flow on two-moons data, evaluate it on 100,000 fresh points "
                    "against the exact density, and write metrics, figures and the flow to --out.")
    train.add_argument("--flow", choices=FLOWS, default="maf", help="flow family (default: maf)")
    train.add_argument("--layers", type=_positive_int, default=3,
                       help="number of [flow layer + Permute] blocks (default: 3)")
    train.add_argument("--hidden-units", type=_hidden_units, default=(128, 128),
                       help="hidden layer sizes of each network, comma-separated (default: 128,128)")
    train.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                       help="hidden activation (default: relu)")
    train.add_argument("--epochs", type=_positive_int, default=defaults.epochs,
                       help=f"training epochs (default: {defaults.epochs})")
    train.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size,
                       help=f"mini-batch size (default: {defaults.batch_size})")
    train.add_argument("--learning-rate", type=_positive_float, default=defaults.learning_rate,
                       help=f"peak Adam learning rate (default: {defaults.learning_rate:g})")
    train.add_argument("--samples", type=_positive_int, default=10_000,
                       help="training points (default: 10000)")
    train.add_argument("--noise", type=_non_negative_float, default=0.05,
                       help="moons noise std (default: 0.05)")
    train.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    train.add_argument("--out", type=Path, default=Path("flowlab-run"),
                       help="output folder (default: flowlab-run)")
    train.add_argument("--json", action="store_true",
                       help="print the metrics as one JSON object on the last line of stdout")
    student = commands.add_parser(
        "student", help="write the student version of the solution notebook",
        description="Replace each solution region (### BEGIN/END SOLUTION) of the solution notebook "
                    "by a NotImplementedError placeholder, keep the check cells' expected outputs, "
                    "clear the other outputs.")
    student.add_argument("--solution", type=Path, default=Path(SOLUTION),
                         help=f"solution notebook (default: {SOLUTION})")
    student.add_argument("--out", type=Path, default=Path(STUDENT),
                         help=f"student notebook to write (default: {STUDENT})")
    grade = commands.add_parser(
        "grade", help="grade submitted notebooks and write a table of passed checks",
        description="Run each submission under pytest --nbval-lax with the official check cells, "
                    "isolated, in parallel, each within a time and memory limit; write grades.csv "
                    "(row by row as results arrive), grades.md, and per submission a feedback file, "
                    "the executed notebook and its log under OUT/submissions/.")
    grade.add_argument("submissions", type=Path, nargs="+",
                       help="submitted .ipynb files, or folders searched for them")
    grade.add_argument("--reference", type=Path, default=Path(STUDENT),
                       help=f"notebook holding the official check cells (default: {STUDENT})")
    grade.add_argument("--out", type=Path, default=Path("grades"),
                       help="output folder (default: grades)")
    _grading_options(grade)
    grade.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1,
                       help="submissions graded at once (default: the number of cores, "
                            f"{os.cpu_count() or 1} here)")
    check = commands.add_parser(
        "check", help="check one notebook exactly as the instructor's grading would",
        description="Grade one notebook as `flowlab grade` does and print each check's result. "
                    "Exit status 0 when every check passes, 1 otherwise.")
    check.add_argument("notebook", type=Path, help="your notebook (.ipynb)")
    check.add_argument("--reference", type=Path, default=Path(STUDENT),
                       help=f"notebook holding the official check cells (default: {STUDENT})")
    _grading_options(check)
    return parser


def _student(args: argparse.Namespace) -> int:
    from flowlab.student import write_student_notebook

    if not args.solution.is_file():
        print(f"flowlab student: error: argument --solution: no such file: {str(args.solution)!r}",
              file=sys.stderr)
        return 2
    print(f"wrote {write_student_notebook(args.solution, args.out)}")
    return 0


def _notebooks(paths: list[Path]) -> list[Path] | str:
    """Expand folders into the notebooks under them; an error message for a bad path."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
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


def _grade(args: argparse.Namespace) -> int:
    from flowlab.grade import grade_all

    problem = _reference_error(args.reference)
    submissions = _notebooks(args.submissions)
    if problem or isinstance(submissions, str):
        print(f"flowlab grade: error: {problem or submissions}", file=sys.stderr)
        return 2
    print(f"grading {len(submissions)} notebooks, {args.workers} at a time, "
          f"{args.timeout:g} s each at most; rows go to {args.out / 'grades.csv'} as they finish",
          flush=True)
    start = time.perf_counter()

    def report(grade) -> None:  # type: ignore[no-untyped-def]
        print(f"  {grade.submission}: {grade.status}, {grade.score:g}/{grade.max_points:g} points "
              f"({grade.seconds:.0f} s){'; notes: ' + '; '.join(grade.notes) if grade.notes else ''}",
              flush=True)

    grades = grade_all(submissions, args.reference, args.out, workers=args.workers,
                       timeout=args.timeout, memory_mb=args.memory_mb, progress=report)
    print(f"graded {len(grades)} notebooks in {time.perf_counter() - start:.0f} s; wrote "
          f"{args.out / 'grades.csv'}, {args.out / 'grades.md'} and {args.out / 'submissions'}/")
    return 0


def _check(args: argparse.Namespace) -> int:
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
        earned = grade.points[name] if message is None else 0
        print(f"{name:<{width}}  {earned:g}/{grade.points[name]:g}  "
              f"{'pass' if message is None else 'FAIL: ' + message}")
    for note in grade.notes:
        print(f"note: {note}")
    print(f"{grade.status}: {grade.score:g}/{grade.max_points:g} points, "
          f"{grade.passed} of {len(grade.results)} checks passed")
    return 0 if grade.status == "graded" and grade.passed == len(grade.results) else 1


def _train(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flowlab import plots
    from flowlab.data import make_moons, moons_log_prob
    from flowlab.flows import FlowConfig, make_flow
    from flowlab.io import save_flow
    from flowlab.train import TrainingDiverged, TrainSettings, evaluate, fit

    if args.noise == 0:
        print("flowlab train: error: argument --noise: must be > 0 to evaluate against the "
              "exact density, got '0'", file=sys.stderr)
        return 2
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size,
                             learning_rate=args.learning_rate, seed=args.seed,
                             warmup_epochs=min(TrainSettings().warmup_epochs, args.epochs - 1))
    data = make_moons(args.samples, noise=args.noise, seed=args.seed)
    config = FlowConfig(flow=args.flow, num_layers=args.layers, hidden_units=args.hidden_units,
                        activation=args.activation, seed=args.seed)
    flow = make_flow(config)
    quiet = args.json
    start = time.perf_counter()
    try:
        history = fit(flow, data, settings, progress=not quiet)
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
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    save_flow(flow, config, out / "flow")

    figures = {
        "data.png": lambda: plots.plot_points(data, "Training data: two moons", lim=2.5),
        "density.png": lambda: plots.plot_densities(
            {"learned density": flow,
             "exact density": lambda x: moons_log_prob(x, noise=args.noise)},
            lim=2.5, suptitle=f"{args.flow.upper()} after {args.epochs} epochs"),
        "samples.png": lambda: plots.plot_points(flow.sample(len(data), seed=args.seed).numpy(),
                                                 "Samples from the trained flow", lim=2.5),
        "loss.png": lambda: plots.plot_loss(history.history["loss"], floor=metrics["entropy"]),
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
    commands = {"train": _train, "student": _student, "grade": _grade, "check": _check}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

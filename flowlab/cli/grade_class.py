"""``flowlab grade``, run: a class, from folders, notebooks or LMS downloads, checked and collected
(with its roster, submission times and late policy), graded into OUT's gradebook, accounted for
file by file, and filled into the LMS gradebook given. The options are
:mod:`flowlab.cli.grading`'s; nothing heavy is imported until the command runs."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flowlab.cli._common import grading_runner_missing, reference_error

__all__ = ["run_grade"]


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


def _grade_inputs_error(args: argparse.Namespace) -> str | None:
    """What is wrong with ``grade``'s arguments before anything is read, or None."""
    problem = reference_error(args.reference)
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


def run_grade(args: argparse.Namespace) -> int:
    """``flowlab grade``: check the options, collect the class, grade it, fill in the LMS gradebook."""
    if grading_runner_missing("grade"):
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

"""Interpreting a run: each official check's verdict from the nbval plugin's records, and the
most telling line of a failure."""

from __future__ import annotations

import re
from collections.abc import Sequence

from flowlab.grader._check_guard import STAND_IN_NOTE
from flowlab.grader.records import Reference
from flowlab.lab_runs import STANDING_NOTE

__all__ = ["verdicts", "failure_message", "all_failed", "last_line", "check_notes"]

_ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")


_ERROR_LINE = re.compile(r"^(\w*(?:Error|Failed|Exception)\w*): (.+)$")


def failure_message(text: str) -> str:
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


def all_failed(reference: Reference, reason: str) -> dict[str, str | None]:
    return {name: reason for name in reference.cells}


def last_line(log: str) -> str:
    """The last non-blank line of a log, cut to 200 characters: what went wrong, usually."""
    lines = [_ANSI.sub("", line).strip() for line in log.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "it printed nothing"


def verdicts(records: Sequence[dict], reference: Reference, status: str, why: str,
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
            verdicts[name] = why if died and status != "graded" else failure_message(message)
        else:  # skipped, xfailed, xpassed: it did not run to a verdict
            verdicts[name] = (f"{why} ({record.get('outcome')})" if status != "graded"
                              else f"the check did not run to a verdict ({record.get('outcome')})")
    return verdicts


def check_notes(records: Sequence[dict], reference: Reference) -> list[str]:
    """The notes passing official checks wrote on stderr: that a reference's stand-in was judged for an
    answer that failed its own check, and where the trained flow stands among the lab's measured runs."""
    notes = []
    for record in records:
        name = record.get("check")
        if name not in reference.cells or record.get("when") != "call" or record.get("outcome") != "passed":
            continue
        text = "".join(o.get("text", "") for o in record.get("outputs", [])
                       if o.get("output_type") == "stream" and o.get("name") == "stderr")
        notes += [f"{name}: {line.strip().removeprefix('flowlab: ')}" for line in text.splitlines()
                  if line.strip().startswith((STAND_IN_NOTE, STANDING_NOTE))]
    return notes

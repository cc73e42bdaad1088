"""Preparing a submission for grading, and spotting tampering: its check cells are found by name
(``metadata.flowlab.check``, else the official source) and replaced by the official ones with
sealed expected outputs; edited, deleted, duplicated, moved check cells and suspicious code are
noted; a stand-in cell follows every check (:func:`flowlab.grader.checks.stand_in`: the reference's answer
for the later checks when that one failed), and the grader's own hand-over cell
(:mod:`flowlab.grader.verdict`) the training check."""

from __future__ import annotations

import json
import re

import nbformat

from flowlab.grader import _seal
from flowlab.grader.records import Reference
from flowlab.grader.student import check_name

__all__ = ["prepare", "scan", "JUDGED_CHECK"]

_CHECK_CALL = re.compile(r"""flowlab\.checks\.run\(\s*["'](\w+)["']""")


_SUSPICIOUS = [  # code an honest answer to this lab never needs; reported, not penalised
    (re.compile(r"flowlab\.checks|\bchecks\s*\.\s*\w+\s*=|from\s+flowlab\.checks\s+import"), "the checker"),
    (re.compile(r"\bLEDGER\b|_SNAPSHOT|_REGISTRY|_STAND_INS|_check_guard|_KEY\b|FLOWLAB_GRADING|_seal"), "the checker's internals"),
    (re.compile(r"\bsetattr\s*\(|__builtins__|\bimport\s+builtins|sys\.modules"), "patching modules"),
    (re.compile(r"^\s*(np|numpy|tf|tfp|tfd|tfb|flowlab|plots)\.[\w.]+\s*=(?!=)", re.M),
     "assigning to a library's attribute"),
    (re.compile(r"/proc/|\bos\.environ|\bctypes\b|__closure__|__code__|gc\.get_objects"),
     "process internals"),
    (re.compile(r"flowlab-grade-|tempfile\.gettempdir|/tmp\b"), "the grader's temporary folders"),
]


def _normalized(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def prepare(submission: nbformat.NotebookNode, reference: Reference,
            key: str) -> tuple[nbformat.NotebookNode, list[str]]:
    """The copy that runs (official check cells with expected outputs sealed by ``key``, the
    grader's hand-over cell after the training check) and the notes on tampering."""
    official_source = {name: _normalized(cell.source) for name, cell in reference.cells.items()}
    by_source = {source: name for name, source in official_source.items()}
    notes: list[str] = []
    names = [_identify(cell, reference, by_source, notes) for cell in submission.cells]
    chosen = _chosen_copies(names, [c.get("id") if isinstance(c, dict) else None for c in submission.cells],
                            reference)
    cells = []
    for index, (cell, name) in enumerate(zip(submission.cells, names)):
        if name is None:
            cells.append(cell)
        elif chosen[name] == index:
            if _normalized(_source(cell)) != official_source[name]:
                notes.append(f"check cell '{name}' was edited (the official one was run)")
            cells.append(_official(reference, name, key))
    notes += _placement_notes(names, chosen, cells, reference)
    cells = _with_verdict_cell(_with_stand_in_cells(cells))
    for number, cell in enumerate(cells):  # nbformat wants unique ids; ours are only for matching
        if isinstance(cell, dict):
            cell["id"] = f"cell-{number}"
    return nbformat.v4.new_notebook(cells=cells, metadata=submission.get("metadata", {})), notes


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _official(reference: Reference, name: str, key: str) -> nbformat.NotebookNode:
    """A copy of the official check cell ``name`` whose expected OK lines carry the seal."""
    official = nbformat.from_dict(json.loads(json.dumps(reference.cells[name])))
    for output in official.get("outputs", []):
        if output.get("output_type") == "stream":
            output["text"] = _seal.seal_text(output.get("text", ""), key, name)
    return official


def _chosen_copies(names: list[str | None], ids: list, reference: Reference) -> dict[str, int]:
    """For each check found, the index of the copy that is graded: the first one below its answer."""
    chosen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name is None:
            continue
        answer = reference.before.get(name)
        below = not (answer and answer in ids) or ids.index(answer) < index
        if name not in chosen or (below and not _below(chosen[name], answer, ids)):
            chosen[name] = index
    return chosen


def _placement_notes(names: list[str | None], chosen: dict[str, int], cells: list,
                     reference: Reference) -> list[str]:
    """Notes on check cells that appear more than once, are missing, out of order, or above their answer."""
    notes = [f"check cell '{name}' appears {names.count(name)} times (graded once: the first copy below its answer)"
             for name in chosen if names.count(name) > 1]
    notes += [f"check cell '{name}' was deleted" for name in reference.cells if name not in chosen]
    order = [name for index, name in enumerate(names) if name is not None and chosen[name] == index]
    if order != [name for name in reference.cells if name in chosen]:
        notes.append("check cells are out of order: " + ", ".join(order))
    ids = [c.get("id") for c in cells if isinstance(c, dict)]
    for name in order:
        answer = reference.before.get(name)
        if answer and answer in ids and ids.index(answer) > _index_of(cells, name):
            notes.append(f"check cell '{name}' was moved above the answer it checks")
    return notes


#: The check whose verdict the grader also computes outside the kernel (flowlab.grader.verdict).
JUDGED_CHECK = "training"


_VERDICT_SOURCE = "import flowlab.grader.verdict\nflowlab.grader.verdict.save(globals())"


def _with_verdict_cell(cells: list) -> list:
    """``cells`` with the grader's own cell right after the official training check, which hands
    the trained flow over for :func:`flowlab.grader.verdict.judge` (no cell is added without that check)."""
    index = next((i for i, c in enumerate(cells) if isinstance(c, dict) and check_name(c) == JUDGED_CHECK), None)
    if index is None:
        return cells
    cell = nbformat.v4.new_code_cell(_VERDICT_SOURCE)
    cell.metadata["flowlab_grader"] = "verdict"
    return [*cells[:index + 1], cell, *cells[index + 1:]]


def _with_stand_in_cells(cells: list) -> list:
    """``cells`` with a stand-in cell after every official check cell."""
    out = []
    for cell in cells:
        out.append(cell)
        name = check_name(cell) if isinstance(cell, dict) else None
        if name is not None:
            stand_in = nbformat.v4.new_code_cell(
                f"import flowlab.grader.checks\nflowlab.grader.checks.stand_in({name!r}, globals())")
            stand_in.metadata["flowlab_grader"] = "stand-in"
            out.append(stand_in)
    return out


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


def scan(submission: nbformat.NotebookNode, reference: Reference) -> list[str]:
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

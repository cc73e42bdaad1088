"""Make the student version of a solution notebook.

Solution regions in code cells are marked nbgrader-style::

    # TODO: ...the sheet's prompt, kept for the student...
    ### BEGIN SOLUTION
    answer = ...
    ### END SOLUTION

Each region becomes ``raise NotImplementedError(...)`` at the same indentation.
Check cells (``metadata.flowlab.check``) keep their expected outputs, which
``pytest --nbval-lax`` compares; every other output is cleared.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

__all__ = ["BEGIN", "END", "strip_solutions", "make_student_notebook", "write_student_notebook",
           "check_name"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
PLACEHOLDER = 'raise NotImplementedError("answer the TODO above, then run this cell")'
_REGION = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[ \t]*\n.*?^[ \t]*{re.escape(END)}[ \t]*$",
                     re.DOTALL | re.MULTILINE)
STUDENT_NOTE = (
    "> **Student version.** Answer each `TODO`: replace the `raise NotImplementedError(...)` line "
    "below it with your code, run the cell, then run the check cell that follows. A check prints "
    "`OK: ...` when your answer does what the lab asks, and otherwise says what is wrong. Before you run "
    "anything, each check cell already shows an `OK: ...` line: that is the *expected* output, kept so "
    "that you can see what a right answer prints; running the cell replaces it with your own result."
)


def check_name(cell: nbformat.NotebookNode) -> str | None:
    """The check a cell runs (from ``metadata.flowlab.check``), or None for an ordinary cell
    or malformed metadata (a submission's metadata can be anything)."""
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    flowlab = metadata.get("flowlab") if isinstance(metadata, dict) else None
    name = flowlab.get("check") if isinstance(flowlab, dict) else None
    return name if isinstance(name, str) else None


def strip_solutions(source: str) -> str:
    """Replace every solution region of a cell's source by the placeholder.

    Example:
        >>> print(strip_solutions("x = 1\\n    ### BEGIN SOLUTION\\n    y = 2\\n    ### END SOLUTION"))
        x = 1
            raise NotImplementedError("answer the TODO above, then run this cell")
    """
    if source.count(BEGIN) != source.count(END):
        raise ValueError(f"source has {source.count(BEGIN)} '{BEGIN}' but {source.count(END)} "
                         f"'{END}' markers:\n{source}")
    return _REGION.sub(lambda match: f"{match.group(1)}{PLACEHOLDER}", source)


def make_student_notebook(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of ``solution`` (which is left unchanged)."""
    student = copy.deepcopy(solution)
    regions = 0
    for cell in student.cells:
        if cell.cell_type != "code":
            continue
        regions += cell.source.count(BEGIN)
        cell.source = strip_solutions(cell.source)
        if check_name(cell) is None:
            cell.outputs = []
            cell.execution_count = None
        else:  # the expected OK line only: the training check's stderr note is about the reference's own run
            cell.outputs = [out for out in cell.outputs if not (out.output_type == "stream" and out.name == "stderr")]
    if regions == 0:
        raise ValueError(f"the solution notebook has no '{BEGIN}' regions to strip")
    note = nbformat.v4.new_markdown_cell(STUDENT_NOTE)
    note.id = "student-note"
    student.cells.insert(1, note)
    return student


def write_student_notebook(solution_path: str | Path, student_path: str | Path) -> Path:
    """Read the solution, write its student version; returns the path written."""
    solution = nbformat.read(str(solution_path), as_version=4)
    student_path = Path(student_path)
    nbformat.write(make_student_notebook(solution), str(student_path))
    return student_path

"""The notebooks' prose cannot drift from their numbers (issue 35).

Reads the .ipynb files as JSON (nothing is executed) and checks every registered number in
``tests/prose_claims.py`` against the stored output, results file or text it comes from.
"""
from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from tests import prose_claims as registry
from tests.prose_claims import Claim, Difference, Output, Source, Stored, Text

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = (registry.VGF, registry.IMG, registry.FAM, registry.LAB, registry.CNF)
# numbers outside math, code and links; scientific notation first, then 1,234.5 and 12.5
NUMBER = re.compile(r"(?<![\w.,])(?:\d+(?:\.\d+)?e[-+]?\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\w])")


def cells(root: Path, notebook: str) -> dict[str, dict]:
    """The notebook's cells by id."""
    book = json.loads((root / "notebooks" / notebook).read_text())
    return {cell["id"]: cell for cell in book["cells"]}


def output_text(cell: dict) -> str:
    """A code cell's stored text: its streams and the text/plain of its results."""
    parts = [out.get("text") or out.get("data", {}).get("text/plain", "") for out in cell.get("outputs", [])]
    return "".join("".join(part) for part in parts)


def first_group(pattern: str, text: str, where: str) -> str:
    match = re.search(pattern, text, flags=re.S)
    if match is None:
        raise LookupError(f"{where}: no match for {pattern!r}")
    return match.group(1)


def value(source: Source, root: Path, notebook: str) -> float:
    """The number ``source`` points at."""
    if isinstance(source, Difference):
        return value(source.a, root, notebook) - value(source.b, root, notebook)
    if isinstance(source, Output):
        text = output_text(cells(root, notebook)[source.cell])
        return float(first_group(source.pattern, text, f"{notebook} cell {source.cell}").replace(",", ""))
    if isinstance(source, Text):
        return float(first_group(source.pattern, (root / source.path).read_text(), source.path))
    return float(dotted(json.loads((root / source.path).read_text()), source.key))


def dotted(node, key: str):
    """``node[a][b]...`` for ``key`` "a.b...", where a key may itself contain dots ("above_0.07"):
    at each level the longest dotted prefix that is a key wins.

    Example:
        >>> dotted({"r": {"above_0.07": 3}, "l": [5, 6]}, "r.above_0.07"), dotted({"l": [5, 6]}, "l.1")
        (3, 6)
    """
    parts = key.split(".")
    while parts:
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[:end])
            if isinstance(node, list) and end == 1:
                node = node[int(name)]
                break
            if isinstance(node, dict) and name in node:
                node = node[name]
                break
        else:
            raise KeyError(f"{key!r}: no key {parts[0]!r} here")
        parts = parts[end:]
    return node


def matches(written: str, actual: float, digits: int | None) -> bool:
    """Whether the prose's ``written`` is ``actual`` rounded as the prose rounds."""
    stated = float(written.replace(",", ""))
    if "e" in written:
        return math.isclose(stated, actual, rel_tol=1e-9)
    if digits is None:
        digits = len(written.split(".")[1]) if "." in written else 0
    return abs(stated - actual) <= 0.5 * 10.0 ** -digits + 1e-9


def claim_problem(claim: Claim, root: Path) -> str | None:
    """None when the claim's prose matches its source, else a message naming both numbers."""
    prose = "".join(cells(root, claim.notebook)[claim.cell]["source"])
    written = first_group(claim.prose, prose, f"{claim.notebook} cell {claim.cell}")
    actual = value(claim.source, root, claim.notebook)
    if matches(written, actual, claim.digits):
        return None
    return (f"{claim.notebook} cell {claim.cell}: the prose says {written}, "
            f"its source {claim.source} gives {actual:.6g}")


def prose_numbers(markdown: str) -> list[str]:
    """The numbers a reader sees as text: not in math, code or link targets; single digits left out."""
    text = re.sub(r"```.*?```|\$\$.*?\$\$|\$[^$]*\$|`[^`]*`|\]\([^)]*\)", " ", markdown, flags=re.S)
    return [number for number in NUMBER.findall(text) if not re.fullmatch(r"\d", number)]


def registered(notebook: str, cell: str, root: Path) -> set[str]:
    """The numbers of one cell that the registry accounts for."""
    prose = "".join(cells(root, notebook)[cell]["source"])
    known = {first_group(c.prose, prose, cell) for c in registry.CLAIMS if (c.notebook, c.cell) == (notebook, cell)}
    for entry in (*registry.CITATIONS, *registry.SETTINGS):
        if (entry.notebook, entry.cell) == (notebook, cell):
            known |= set(entry.numbers)
    return known


@pytest.mark.parametrize("claim", registry.CLAIMS, ids=lambda c: f"{c.notebook}:{c.cell}:{c.prose}")
def test_each_prose_number_matches_its_source(claim):
    assert claim_problem(claim, ROOT) is None, claim_problem(claim, ROOT)


@pytest.mark.parametrize("citation", registry.CITATIONS, ids=lambda c: f"{c.notebook}:{c.cell}:{c.source}")
def test_each_cited_figure_names_its_source_and_version(citation):
    prose = "".join(cells(ROOT, citation.notebook)[citation.cell]["source"])
    assert citation.source in prose and citation.version in prose, citation
    assert all(number in prose_numbers(prose) for number in citation.numbers), citation


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_number_in_prose_is_registered(notebook):
    missing = [f"{cid}: {number}" for cid, cell in cells(ROOT, notebook).items() if cell["cell_type"] == "markdown"
               for number in prose_numbers("".join(cell["source"])) if number not in registered(notebook, cid, ROOT)]
    assert not missing, f"{notebook}: numbers in prose that tests/prose_claims.py does not register: {missing}"


def test_a_planted_mismatch_is_caught_and_named(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    for path in ("benchmarks/README.md", "flowlab/studies/gan.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    claim = next(c for c in registry.CLAIMS if c.notebook == registry.IMG and "needs" in c.prose)
    book_path = tmp_path / "notebooks" / claim.notebook
    book = json.loads(book_path.read_text())
    cell = next(c for c in book["cells"] if c.get("id") == claim.cell)
    written = first_group(claim.prose, "".join(cell["source"]), claim.cell)
    planted = f"{float(written) + 0.5:.2f}"
    cell["source"] = ["".join(cell["source"]).replace(f"needs {written} bits", f"needs {planted} bits")]
    book_path.write_text(json.dumps(book))
    assert claim_problem(claim, ROOT) is None
    problem = claim_problem(claim, tmp_path)
    assert problem is not None
    assert all(part in problem for part in (claim.notebook, claim.cell, planted, f"{value(claim.source, ROOT, claim.notebook):.6g}"))


def test_the_rounding_follows_the_prose():
    assert matches("0.06", 0.055, None) and not matches("0.07", 0.055, None)
    assert matches("212,000", 211_972, -3) and not matches("211,000", 211_972, -3)
    assert matches("1e-3", 0.001, None)

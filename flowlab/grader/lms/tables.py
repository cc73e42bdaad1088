"""CSV files as the LMSs and spreadsheets write them: one reader and one writer for rosters,
extensions, submission times and gradebook exports.

Canvas exports its gradebook with the separator and byte-order mark the instructor chose in their
settings (comma, semicolon or tab; ``CSVWithI18n`` in instructure/canvas-lms), and a spreadsheet
saved in a European locale writes semicolons. :func:`read_table` detects the separator from the
header line and :func:`write_table` writes the file back in the same dialect, so the LMS imports
what it exported.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Table", "read_table", "read_csv_records", "write_table", "LMSFormatError"]

_SEPARATORS = ",;\t"
_BOM = "\ufeff"


class LMSFormatError(ValueError):
    """An input (zip, roster, gradebook export) that cannot be used; the message says why."""


@dataclass
class Table:
    """A CSV file's header, rows (lists of strings) and the dialect to write it back in."""

    header: list[str]
    rows: list[list[str]]
    delimiter: str = ","
    bom: bool = False

    def records(self) -> list[dict[str, str]]:
        """Each row as a dict of the header's names (lower case, stripped) -> stripped value."""
        keys = [name.strip().lower() for name in self.header]
        return [{key: value.strip() for key, value in zip(keys, row) if key} for row in self.rows]


def _delimiter(first_line: str) -> str:
    """The separator of a CSV header line: the one of ``,;<tab>`` that splits it into most fields.

    Example:
        >>> _delimiter('Student;ID;"Lab, part 1 (7)"'), _delimiter("a,b;c,d")
        (';', ',')
    """
    counts = {sep: len(next(csv.reader([first_line], delimiter=sep), [])) for sep in _SEPARATORS}
    best = max(counts.values())
    return next(sep for sep in _SEPARATORS if counts[sep] == best)


def read_table(path: str | Path, what: str) -> Table:
    """Read ``path`` (UTF-8, with or without a byte-order mark; comma, semicolon or tab separated).

    Raises LMSFormatError naming ``what`` and the file when it cannot be read or is empty.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        bom = text.startswith(_BOM)
        text = text.removeprefix(_BOM)
        delimiter = _delimiter(text.splitlines()[0] if text.strip() else "")
        table = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LMSFormatError(f"{what} {str(path)!r} cannot be read ({error})") from None
    if not table or not any(table[0]):
        raise LMSFormatError(f"{what} {str(path)!r} is empty")
    return Table(table[0], [row for row in table[1:] if row], delimiter, bom)


def read_csv_records(path: str | Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV file's header (lower case, stripped) and its rows as such dicts of stripped values,
    comma, semicolon or tab separated; LMSFormatError says which file (``what``) could not be read.

    Example (a roster saved by a European spreadsheet):
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "roster.csv"
        >>> _ = path.write_text("Student_ID; Name\\n12345; Ann Lee\\n")
        >>> read_csv_records(path, "roster")
        (['student_id', 'name'], [{'student_id': '12345', 'name': 'Ann Lee'}])
    """
    table = read_table(path, what)
    return [h.strip().lower() for h in table.header], table.records()


def write_table(table: Table, path: str | Path) -> Path:
    """Write ``table`` to ``path`` in its own dialect (separator, byte-order mark)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8-sig" if table.bom else "utf-8") as handle:
        csv.writer(handle, delimiter=table.delimiter).writerows([table.header, *table.rows])
    return path

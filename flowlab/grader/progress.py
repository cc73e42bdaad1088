"""What ``flowlab check`` and ``flowlab grade`` show while a notebook runs: a line as each check
cell finishes, and every 15 s without one, which cell is running and the time so far (``grade``
puts each line after the notebook's key: :func:`flowlab.grader.grade.grade_all`'s ``running``).

The grader's pytest plugin (:mod:`flowlab.grader._nbval_plugin`) appends one JSON record per cell to the
sandbox's ``results.jsonl`` as the cell finishes; :class:`CellProgress` follows that file from a
thread of the grading process. It only reads: the grade is made from the same file afterwards, as
before, so the final report does not change.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["HEARTBEAT", "CellProgress"]

#: Seconds without a finished check after which the running cell is shown again.
HEARTBEAT = 15.0


class CellProgress:
    """Follows ``results`` (the plugin's records) for a notebook whose code cells are ``cells``, in
    order, as (cell id, check name or None); ``write`` gets each progress line."""

    def __init__(self, results: Path, cells: Sequence[tuple[str | None, str | None]],
                 write: Callable[[str], None], heartbeat: float = HEARTBEAT,
                 clock: Callable[[], float] = time.monotonic):
        if heartbeat <= 0:
            raise ValueError(f"heartbeat must be > 0 seconds, got {heartbeat!r}")
        self.results, self.cells, self.write, self.heartbeat, self.clock = results, list(cells), write, heartbeat, clock
        self._index = {cell_id: i for i, (cell_id, _) in enumerate(self.cells) if cell_id is not None}
        self._read, self._done = 0, -1  # bytes of the file read so far; the last finished code cell
        self._start = self._shown = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _running(self) -> str:
        """The code cell after the last one finished, and the next check at or after it."""
        running = self._done + 1
        if running >= len(self.cells):
            return "finishing"
        upcoming = next((name for _, name in self.cells[running:] if name), None)
        where = f"running code cell {running + 1} of {len(self.cells)}"
        if self.cells[running][1]:
            return f"{where}: the {self.cells[running][1]} check"
        return f"{where}, before the {upcoming} check" if upcoming else where

    def _records(self) -> list[dict]:
        """The complete records added to the file since the last call."""
        try:
            with self.results.open("rb") as handle:
                handle.seek(self._read)
                data = handle.read()
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next poll
        self._read += len(complete)
        records = []
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def poll(self) -> None:
        """Write a line per check cell finished since the last poll, or the running cell when none
        finished for ``heartbeat`` seconds."""
        now = self.clock()
        for record in self._records():
            position = self._index.get(record.get("id"))
            if position is None:
                continue
            self._done = max(self._done, position)
            if record.get("check") and record.get("when") in ("call", "setup"):
                self.write(f"  {now - self._start:5.0f} s  {record['check']}: cell {record.get('outcome')}; "
                           f"{self._running()}")
                self._shown = now
        if now - self._shown >= self.heartbeat:
            self.write(f"  {now - self._start:5.0f} s  {self._running()}")
            self._shown = now

    def _follow(self) -> None:
        while not self._stop.wait(1.0):
            self.poll()

    def __enter__(self) -> CellProgress:
        self._thread = threading.Thread(target=self._follow, name="flowlab-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()  # the checks that finished in the last second

"""A pytest plugin that ``flowlab grade`` adds to ``pytest --nbval-lax``; it changes no verdict
of an honest notebook that prints nothing on stderr.

- It records every cell's outcome, check name (``metadata.flowlab.check``), message and
  outputs as one JSON line in the file named by ``FLOWLAB_NBVAL_RESULTS``, as each cell
  finishes, so a run that is killed still leaves what it did.
- It keeps stderr out of the output comparison: a TensorFlow warning or a student's
  background thread writing to stderr during a check cell does not fail the check (the
  stderr text stays in the recorded outputs, hence in the log).
- It notices a dead kernel within a second instead of waiting out the cell timeout.

The grader loads it by file (``-p _flowlab_nbval_plugin``) so that importing it does not
import flowlab (and TensorFlow) into the pytest process.
"""

from __future__ import annotations

import json
import os
import time
from queue import Empty
from typing import Any

import pytest

RESULTS_VARIABLE = "FLOWLAB_NBVAL_RESULTS"


def _check_name(cell: Any) -> str | None:
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    flowlab = metadata.get("flowlab") if isinstance(metadata, dict) else None
    name = flowlab.get("check") if isinstance(flowlab, dict) else None
    return name if isinstance(name, str) else None


def _without_stderr(outputs: list[Any]) -> list[Any]:
    return [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]


def pytest_configure(config: pytest.Config) -> None:
    from nbval.kernel import RunningKernel
    from nbval.plugin import IPyNbCell

    compare = IPyNbCell.compare_outputs

    def compare_outputs(self: Any, test: list[Any], ref: list[Any], skip_compare: Any = None) -> bool:
        return compare(self, _without_stderr(test), _without_stderr(ref), skip_compare)

    def await_reply(self: Any, msg_id: str, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        while True:
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            try:
                msg = self.get_message(stream="shell", timeout=wait)
            except Empty:
                if not self.is_alive():
                    raise RuntimeError("the kernel died while running this cell (killed, out of "
                                       "memory, or os._exit)") from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                if msg["content"]["status"] == "aborted":
                    raise RuntimeError("Kernel aborted execution request")
                return

    IPyNbCell.compare_outputs = compare_outputs
    RunningKernel.await_reply = await_reply


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    cell = getattr(item, "cell", None)
    path = os.environ.get(RESULTS_VARIABLE)
    if cell is None or not path:
        return
    if report.when == "setup" and report.passed:
        return
    if report.when == "teardown" and report.passed:
        return
    result = "xfailed" if hasattr(report, "wasxfail") else report.outcome
    record = {
        "id": cell.get("id"),
        "check": _check_name(cell),
        "when": report.when,
        "outcome": result,
        "message": report.longreprtext if report.failed else getattr(report, "wasxfail", "") or "",
        "outputs": [dict(o) for o in getattr(item, "test_outputs", None) or []],
        "timed_out": bool(getattr(item.parent, "timed_out", False)),
    }
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, default=str) + "\n")

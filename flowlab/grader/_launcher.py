"""Runs one submission's pytest for ``flowlab grade`` and ends everything it leaves behind.

    python -I _launcher.py MEMORY_MB LEFTOVERS_FILE PYTEST_ARGS...

It limits its own and its children's data memory to MEMORY_MB, makes itself a *child subreaper*
(Linux): a process the notebook starts that detaches (``setsid``, its parent gone) is re-parented
to this launcher instead of to init, so it stays a descendant. When pytest ends, descendants
still running after a short grace (the kernel shutting down) are killed and counted into
LEFTOVERS_FILE; on SIGTERM (the grader's timeout) everything is killed at once. The exit status
is pytest's.

Run with ``-I`` and by path: it must not import flowlab (or anything next to it).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
GRACE_SECONDS = 3.0


def _become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False elsewhere."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _descendants() -> list:
    import psutil

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _reap() -> None:
    """Collect the exit status of every dead child (re-parented orphans included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_descendants(grace: float = 0.0) -> int:
    """Kill every descendant still running after ``grace`` seconds; how many were killed."""
    import psutil

    deadline = time.monotonic() + grace
    while _descendants() and time.monotonic() < deadline:
        _reap()
        time.sleep(0.1)
    killed: set[int] = set()
    for _ in range(50):  # orphans of killed processes come back to us: repeat until none is left
        victims = [p for p in _descendants() if p.status() != psutil.STATUS_ZOMBIE]
        if not victims:
            break
        for victim in victims:
            try:
                victim.kill()
                killed.add(victim.pid)
            except psutil.Error:
                pass
        psutil.wait_procs(victims, timeout=1)
        _reap()
    _reap()
    return len(killed)


def main(argv: list[str]) -> int:
    memory_mb, leftovers_file, *pytest_args = argv
    limit = int(memory_mb) * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _become_subreaper()
    child = subprocess.Popen([sys.executable, "-m", "pytest", *pytest_args])

    def on_timeout(signum: int, frame: object) -> None:
        child.kill()
        end_descendants()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_timeout)
    code = child.wait()
    Path(leftovers_file).write_text(str(end_descendants(GRACE_SECONDS)))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

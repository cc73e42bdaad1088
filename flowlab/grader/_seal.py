"""The grading seal: a short keyed tag the official checker adds to each OK line while
``flowlab grade`` runs, so that a check cell whose output was faked fails the comparison.

The grader passes a fresh random key to the kernel in ``FLOWLAB_GRADING_KEY``; the checker
takes it out of the environment when it is first imported (before any cell runs, from a
kernel start-up file the grader writes), and the grader writes the sealed lines into the
expected outputs of its own copy of the notebook. Without a key (a student's Jupyter, plain
``pytest --nbval-lax``) nothing is added. This module imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["KEY_VARIABLE", "seal", "seal_text"]

KEY_VARIABLE = "FLOWLAB_GRADING_KEY"


def seal(key: str | None, check: str) -> str:
    """The tag for ``check`` under ``key``: ``""`` without a key.

    Example:
        >>> seal(None, "training")
        ''
        >>> seal("k", "training") == seal("k", "training") != seal("k", "flow_chain")
        True
    """
    if not key:
        return ""
    digest = hmac.new(key.encode(), check.encode(), hashlib.sha256).hexdigest()[:16]
    return f"  [sealed {digest}]"


def seal_text(text: str, key: str | None, check: str) -> str:
    """``text`` with the seal appended to every line that starts with ``OK: ``.

    Example:
        >>> seal_text("OK: fine\\n", None, "x")
        'OK: fine\\n'
    """
    tag = seal(key, check)
    return "".join(line.rstrip("\n") + tag + "\n" if line.startswith("OK: ") else line
                   for line in text.splitlines(keepends=True))

"""The checkpoint beside a saved flow's configuration, shared by :mod:`flowlab.io` (the moons'
flows) and :mod:`flowlab.studies.digits.io` (the digits flows): where the weights go, the check that they
are there, and a read that accounts for every variable or says what does not fit."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

__all__ = ["WEIGHTS", "require_weights", "restore"]

#: The checkpoint's prefix inside a saved flow's folder (``weights.index``, ``weights.data-*``).
WEIGHTS = "weights"


def require_weights(directory: Path) -> None:
    """Fail clearly when ``directory`` has a configuration but no checkpoint beside it.

    Example:
        >>> import tempfile
        >>> require_weights(Path(tempfile.mkdtemp()))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: directory '...' holds a flow configuration but no weights (weights.index is missing); save the flow again
    """
    if not (directory / f"{WEIGHTS}.index").is_file():
        raise FileNotFoundError(f"directory {str(directory)!r} holds a flow configuration but no weights "
                                f"({WEIGHTS}.index is missing); save the flow again")


def restore(directory: Path, config_name: str, **objects: tf.Module) -> None:
    """Read the checkpoint of ``directory`` into ``objects``, every variable accounted for; a
    ValueError names the folder and the configuration file (``config_name``) it does not fit."""
    try:
        tf.train.Checkpoint(**objects).read(str(directory / WEIGHTS)).assert_consumed()
    except (AssertionError, ValueError, IndexError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"the weights in {str(directory)!r} are damaged or do not fit the flow its "
                         f"{config_name} describes: {first_line}") from None

"""Save a trained flow to a folder and load it back with identical ``log_prob``."""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from flowlab.flows import Flow, FlowConfig, make_flow

__all__ = ["save_flow", "load_flow"]

_CONFIG = "flow_config.json"
_WEIGHTS = "weights"


def save_flow(flow: Flow, directory: str | Path) -> Path:
    """Write the flow's configuration (``flow.config``) as JSON and its weights as a TensorFlow
    checkpoint, into ``directory`` (created if missing).

    Returns:
        The folder written.

    Raises:
        TypeError: if ``flow`` was not made by :func:`flowlab.flows.make_flow` (it has no config).
    """
    if not isinstance(flow, Flow):
        raise TypeError(f"flow must be a flow made by flowlab.make_flow, which carries its FlowConfig, "
                        f"got {type(flow).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / _CONFIG).write_text(json.dumps(flow.config.to_dict(), indent=2) + "\n")
    tf.train.Checkpoint(flow=flow).write(str(directory / _WEIGHTS))
    return directory


def load_flow(directory: str | Path) -> tuple[Flow, FlowConfig]:
    """Rebuild a flow saved by :func:`save_flow` and restore its weights.

    Raises:
        FileNotFoundError: if ``directory`` holds no saved flow, or its weights are missing.
        ValueError: if the saved configuration is unreadable, or the weights are damaged or
            belong to another configuration.
    """
    directory = Path(directory)
    config_path = directory / _CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"directory {str(directory)!r} holds no saved flow "
                                f"({_CONFIG} is missing); save one with flowlab.save_flow")
    if not (directory / f"{_WEIGHTS}.index").is_file():
        raise FileNotFoundError(f"directory {str(directory)!r} holds a flow configuration but no weights "
                                f"({_WEIGHTS}.index is missing); save the flow again with flowlab.save_flow")
    try:
        # flows saved before log-scales were bounded were trained unbounded
        config = FlowConfig.from_dict({"log_scale_bound": None, **json.loads(config_path.read_text())})
    except (ValueError, TypeError, AttributeError) as error:  # bad JSON, unknown or missing keys
        raise ValueError(f"{str(config_path)!r} is not a configuration written by flowlab.save_flow: "
                         f"{error}") from None
    flow = make_flow(config)
    try:
        tf.train.Checkpoint(flow=flow).read(str(directory / _WEIGHTS)).assert_consumed()
    except (AssertionError, ValueError, IndexError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"the weights in {str(directory)!r} are damaged or do not fit the flow its "
                         f"{_CONFIG} describes: {first_line}") from None
    return flow, config

"""Save a trained flow to a folder and load it back with identical ``log_prob``: the moons'
flows (:func:`save_flow`) and the digits flows with their dequantizer (:func:`save_image_flow`).

The digits flows are a study beyond the lab: their save and load live in :mod:`flowlab.studies.digits.io`
and are looked up from here on first use, so the lab's core imports no study.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import tensorflow as tf

from flowlab._checkpoint import WEIGHTS, require_weights, restore
from flowlab.flows import Flow, FlowConfig, make_flow

__all__ = ["save_flow", "load_flow", "save_image_flow", "load_image_flow"]

_CONFIG = "flow_config.json"

#: Names of this module that a study defines -> that study's module, imported on first use.
_STUDY_NAMES = {"save_image_flow": "flowlab.studies.digits.io", "load_image_flow": "flowlab.studies.digits.io"}


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
    tf.train.Checkpoint(flow=flow).write(str(directory / WEIGHTS))
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
    require_weights(directory)
    try:
        config = FlowConfig.from_dict(json.loads(config_path.read_text()))  # older layouts too
    except (ValueError, TypeError, AttributeError) as error:  # bad JSON, unknown or missing keys
        raise ValueError(f"{str(config_path)!r} is not a configuration written by flowlab.save_flow: "
                         f"{error}") from None
    flow = make_flow(config)
    restore(directory, _CONFIG, flow=flow)
    return flow, config


def __getattr__(name: str) -> Any:
    """The study's save and load (:data:`_STUDY_NAMES`), imported the first time they are used."""
    if name in _STUDY_NAMES:
        value = getattr(importlib.import_module(_STUDY_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'flowlab.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_STUDY_NAMES))

"""Save a trained flow to a folder and load it back with identical ``log_prob``: the moons'
flows (:func:`save_flow`) and the digits flows with their dequantizer (:func:`save_image_flow`)."""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from flowlab.flows import Flow, FlowConfig, make_flow

__all__ = ["save_flow", "load_flow", "save_image_flow", "load_image_flow"]

_CONFIG = "flow_config.json"
_IMAGE_CONFIG = "image_flow_config.json"
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
    _weights_present(directory)
    try:
        config = FlowConfig.from_dict(json.loads(config_path.read_text()))  # older layouts too
    except (ValueError, TypeError, AttributeError) as error:  # bad JSON, unknown or missing keys
        raise ValueError(f"{str(config_path)!r} is not a configuration written by flowlab.save_flow: "
                         f"{error}") from None
    flow = make_flow(config)
    _restore(directory, _CONFIG, flow=flow)
    return flow, config


def _weights_present(directory: Path) -> None:
    """Fail clearly when ``directory`` has a configuration but no checkpoint beside it."""
    if not (directory / f"{_WEIGHTS}.index").is_file():
        raise FileNotFoundError(f"directory {str(directory)!r} holds a flow configuration but no weights "
                                f"({_WEIGHTS}.index is missing); save the flow again")


def _restore(directory: Path, config_name: str, **objects) -> None:
    """Read the checkpoint of ``directory`` into ``objects``, every variable accounted for."""
    try:
        tf.train.Checkpoint(**objects).read(str(directory / _WEIGHTS)).assert_consumed()
    except (AssertionError, ValueError, IndexError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"the weights in {str(directory)!r} are damaged or do not fit the flow its "
                         f"{config_name} describes: {first_line}") from None


def save_image_flow(flow, directory: str | Path, dequantizer=None) -> Path:
    """Write a digits flow's configuration, its dequantizer's (if it was trained with one) and
    their weights into ``directory`` (created if missing); returns the folder.

    Raises:
        TypeError: if ``flow`` is not a :class:`flowlab.image_flows.ImageFlow`.
    """
    from flowlab.image_flows import ImageFlow

    if not isinstance(flow, ImageFlow):
        raise TypeError(f"flow must be a digits flow made by flowlab.image_flows.make_image_flow, "
                        f"got {type(flow).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    saved = {"flow": flow.config.to_dict(), "dequantizer": dequantizer.config if dequantizer else None}
    (directory / _IMAGE_CONFIG).write_text(json.dumps(saved, indent=2) + "\n")
    objects = {"flow": flow, **({"dequantizer": dequantizer} if dequantizer else {})}
    tf.train.Checkpoint(**objects).write(str(directory / _WEIGHTS))
    return directory


def load_image_flow(directory: str | Path):
    """Rebuild a digits flow saved by :func:`save_image_flow`: ``(flow, dequantizer or None)``.

    Raises:
        FileNotFoundError: if ``directory`` holds no saved digits flow, or its weights are missing.
        ValueError: if the configuration is unreadable, or the weights do not fit it.
    """
    from flowlab.image_flows import ImageFlowConfig, VariationalDequantizer, make_image_flow

    directory = Path(directory)
    config_path = directory / _IMAGE_CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"directory {str(directory)!r} holds no saved digits flow ({_IMAGE_CONFIG} is "
                                "missing); save one with flowlab.io.save_image_flow")
    _weights_present(directory)
    try:
        saved = json.loads(config_path.read_text())
        flow = make_image_flow(ImageFlowConfig.from_dict(saved["flow"]))
        dequantizer = (VariationalDequantizer(**{**saved["dequantizer"], "shape": tuple(saved["dequantizer"]["shape"])})
                       if saved.get("dequantizer") else None)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ValueError(f"{str(config_path)!r} is not a configuration written by flowlab.io.save_image_flow: "
                         f"{error}") from None
    if dequantizer is not None:
        dequantizer.sample(tf.zeros([1, dequantizer.shape[0] * dequantizer.shape[1]]),
                           tf.zeros([1, dequantizer.shape[0] * dequantizer.shape[1]]))  # create its weights
    _restore(directory, _IMAGE_CONFIG, flow=flow, **({"dequantizer": dequantizer} if dequantizer else {}))
    return flow, dequantizer

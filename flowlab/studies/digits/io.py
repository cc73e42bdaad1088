"""Save a digits flow (:mod:`flowlab.studies.digits.flows`) with its dequantizer to a folder and load
it back with identical ``log_prob``. Also reachable as ``flowlab.io.save_image_flow`` and
``flowlab.io.load_image_flow``, the names the headless run and the notebooks use."""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from flowlab._checkpoint import WEIGHTS, require_weights, restore
from flowlab.studies.digits.flows import ImageFlow, ImageFlowConfig, VariationalDequantizer, make_image_flow

__all__ = ["save_image_flow", "load_image_flow"]

_IMAGE_CONFIG = "image_flow_config.json"


def save_image_flow(flow: ImageFlow, directory: str | Path,
                    dequantizer: VariationalDequantizer | None = None) -> Path:
    """Write a digits flow's configuration, its dequantizer's (if it was trained with one) and
    their weights into ``directory`` (created if missing); returns the folder.

    Raises:
        TypeError: if ``flow`` is not a :class:`flowlab.studies.digits.flows.ImageFlow`.
    """
    if not isinstance(flow, ImageFlow):
        raise TypeError(f"flow must be a digits flow made by flowlab.image_flows.make_image_flow, "
                        f"got {type(flow).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    saved = {"flow": flow.config.to_dict(), "dequantizer": dequantizer.config if dequantizer else None}
    (directory / _IMAGE_CONFIG).write_text(json.dumps(saved, indent=2) + "\n")
    objects = {"flow": flow, **({"dequantizer": dequantizer} if dequantizer else {})}
    tf.train.Checkpoint(**objects).write(str(directory / WEIGHTS))
    return directory


def load_image_flow(directory: str | Path) -> tuple[ImageFlow, VariationalDequantizer | None]:
    """Rebuild a digits flow saved by :func:`save_image_flow`: ``(flow, dequantizer or None)``.

    Raises:
        FileNotFoundError: if ``directory`` holds no saved digits flow, or its weights are missing.
        ValueError: if the configuration is unreadable, or the weights do not fit it.
    """
    directory = Path(directory)
    config_path = directory / _IMAGE_CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"directory {str(directory)!r} holds no saved digits flow ({_IMAGE_CONFIG} is "
                                "missing); save one with flowlab.io.save_image_flow")
    require_weights(directory)
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
    restore(directory, _IMAGE_CONFIG, flow=flow, **({"dequantizer": dequantizer} if dequantizer else {}))
    return flow, dequantizer

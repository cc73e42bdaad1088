"""flowlab: the normalizing-flows lab, completed and made to run.

Import flowlab before TensorFlow: it routes ``tf.keras`` to Keras 2 (tf-keras),
which the lab's code and TFP's AutoregressiveNetwork need.

``import flowlab`` itself is light: it checks the installed versions and sets
``TF_USE_LEGACY_KERAS``, but imports neither TensorFlow nor pyplot. The names below
load their module on first use (``flowlab.plots``, ``flowlab.make_moons``, ...).

The package holds three products: the lab's core at the top (data, flows, train, measure, plots,
anatomy, io, bijectivity, lab_runs), the studies beside it (:mod:`flowlab.studies`: VAE, GAN,
reverse KL, the model comparison, continuous flows' training, the digits), and the grader
(:mod:`flowlab.grader`: the notebook's checks, the hand-out, grading, gradebooks, Gradescope,
LMS files), driven by the ``flowlab`` command (:mod:`flowlab.cli`). The modules' old flat names
(``flowlab.checks``, ``flowlab.vae``, ``python -m flowlab.verdict``, ...) still import the same
modules: :mod:`flowlab._moved` holds the table.
"""

from __future__ import annotations

import importlib
from typing import Any

from flowlab import _moved

_moved.install()  # first: the old flat names (flowlab.checks, ...) import their moved modules

from flowlab._keras import KerasSetupError, select_keras2  # noqa: E402

select_keras2()

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported on first use.
_NAMES = {
    "TrainingDiverged": "flowlab.train",
    "FlowConfig": "flowlab.flows",
    "TrainSettings": "flowlab.train",
    "make_moons": "flowlab.data",
    "moons_log_prob": "flowlab.data",
    "moons_entropy": "flowlab.data",
    "make_flow": "flowlab.flows",
    "fit": "flowlab.train",
    "evaluate": "flowlab.measure",
    "save_flow": "flowlab.io",
    "load_flow": "flowlab.io",
}
#: Submodules reachable as attributes of the package, imported on first use (a moved module by
#: its old name too, e.g. ``flowlab.checks``: the same module as ``flowlab.grader.checks``).
_SUBMODULES = ("data", "flows", "plots", "train", "io", "measure", "checks", "student", "grade",
               "spline", "anatomy", "cli", "vae", "gan", "reverse_kl", "bijectivity", "lab_runs",
               "studies", "grader")

__all__ = ["KerasSetupError", "TrainingDiverged", "FlowConfig", "TrainSettings", "data", "flows",
           "plots", "train", "bijectivity", "make_moons", "moons_log_prob", "moons_entropy", "make_flow", "fit",
           "evaluate", "save_flow", "load_flow"]


def __getattr__(name: str) -> Any:
    """Import the module behind a public name the first time it is used."""
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"flowlab.{name}")
    else:
        raise AttributeError(f"module 'flowlab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES) | set(_SUBMODULES))

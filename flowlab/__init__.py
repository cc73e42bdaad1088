"""flowlab: the normalizing-flows lab, completed and made to run.

Import flowlab before TensorFlow: it routes ``tf.keras`` to Keras 2 (tf-keras),
which the lab's code and TFP's AutoregressiveNetwork need.
"""

from flowlab._keras import KerasSetupError, select_keras2

select_keras2()

from flowlab import data, flows, plots, train  # noqa: E402
from flowlab.data import make_moons, moons_entropy, moons_log_prob  # noqa: E402
from flowlab.flows import FlowConfig, make_flow  # noqa: E402
from flowlab.io import load_flow, save_flow  # noqa: E402
from flowlab.train import TrainingDiverged, TrainSettings, evaluate, fit  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "KerasSetupError",
    "TrainingDiverged",
    "FlowConfig",
    "TrainSettings",
    "data",
    "flows",
    "plots",
    "train",
    "make_moons",
    "moons_log_prob",
    "moons_entropy",
    "make_flow",
    "fit",
    "evaluate",
    "save_flow",
    "load_flow",
]

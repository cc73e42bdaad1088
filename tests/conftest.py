"""Shared fixtures, and the ``slow`` marker on the notebooks nbval collects.

flowlab is imported first: it selects Keras 2 for TensorFlow. Test modules take what they
share from fixtures here; none imports this file.
"""

import os
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import flowlab  # noqa: E402,F401  (before TensorFlow)
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from flowlab.flows import FlowConfig, make_flow  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Notebook cells (nbval) re-execute whole notebooks: mark them slow."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def small_config() -> FlowConfig:
    """A small MAF chain: the lab's structure with narrow networks, fast to train."""
    return FlowConfig(num_layers=2, hidden_units=(16, 16), seed=3)


@pytest.fixture
def small_flow(small_config):
    return make_flow(small_config)


def _autodiff_log_det(bijector, x) -> tf.Tensor:
    """log|det J| of ``bijector.forward`` at each row of ``x``, from TensorFlow's Jacobian."""
    x = tf.convert_to_tensor(x, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bijector.forward(x)
    jacobian = tape.batch_jacobian(y, x)
    return tf.math.log(tf.abs(tf.linalg.det(jacobian)))


@pytest.fixture
def autodiff_log_det() -> Callable[..., tf.Tensor]:
    """``autodiff_log_det(bijector, x)``: log|det J| of the forward map from TensorFlow's Jacobian."""
    return _autodiff_log_det


@pytest.fixture
def clean_env() -> dict[str, str]:
    """This process's environment without what ``import flowlab`` (in this process) set:
    a subprocess started with it sees TensorFlow as a fresh Python would."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("TF_", "FLOWLAB_"))}


@pytest.fixture(scope="session")
def mini_reference(tmp_path_factory) -> Path:
    """The reference (student) notebook of the small lab of tests/data, written once per session;
    tests that write to their reference build their own."""
    import nbformat

    from flowlab.grader.student import make_student_notebook

    mini = Path(__file__).resolve().parent / "data" / "mini_lab.ipynb"
    path = tmp_path_factory.mktemp("mini_reference") / "reference.ipynb"
    nbformat.write(make_student_notebook(nbformat.read(str(mini), as_version=4)), str(path))
    return path

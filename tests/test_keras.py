"""Keras 2 is selected once, on import, with clear errors when it cannot be."""

import subprocess
import sys

import pytest
import tensorflow as tf

from flowlab import _keras


def test_tf_keras_is_keras2_after_import():
    """In this process conftest ran `import flowlab`, then `import tensorflow`: Keras 2."""
    assert tf.keras.Model.__module__.startswith("tf_keras")


def test_lab_pattern_input_log_prob_model_works():
    """The sheet's code: tf.keras.Input -> td.log_prob(x) -> tf.keras.Model (fails under Keras 3);
    the same source the clean-subprocess test runs."""
    exec(LAB_PATTERN, {"tf": tf})


def test_check_versions_reports_installed_stack():
    versions = _keras.check_versions()
    assert set(versions) == {"tensorflow", "tf-keras", "tensorflow-probability"}
    assert versions["tensorflow"].split(".")[:2] == versions["tf-keras"].split(".")[:2]


@pytest.mark.parametrize("installed, needles", [
    ({"tensorflow": "2.21.0", "tf-keras": "", "tensorflow-probability": "0.25.0"},
     ["tf-keras", "found none", "pip install 'tf-keras==2.21.*'"]),
    ({"tensorflow": "2.21.0", "tf-keras": "2.19.0", "tensorflow-probability": "0.25.0"},
     ["tf-keras 2.19.0 does not match tensorflow 2.21.0", "pip install 'tf-keras==2.21.*'"]),
    ({"tensorflow": "2.17.1", "tf-keras": "2.17.0", "tensorflow-probability": "0.25.0"},
     ["found tensorflow 2.17.1", "too old", "pip install 'tensorflow==2.21.*' 'tf-keras==2.21.*'"]),
    ({"tensorflow": "2.22.0", "tf-keras": "2.22.0", "tensorflow-probability": "0.25.0"},
     ["found tensorflow 2.22.0", "newer than", "pip install 'tensorflow==2.21.*' 'tf-keras==2.21.*'"]),
    ({"tensorflow": "", "tf-keras": "", "tensorflow-probability": ""},
     ["TensorFlow 2.18 to 2.21, found none", "pip install 'tensorflow==2.21.*' 'tf-keras==2.21.*'"]),
    ({"tensorflow": "2.20.0", "tf-keras": "2.20.1", "tensorflow-probability": "0.24.0"},
     ["found tensorflow-probability 0.24.0", "pip install 'tensorflow-probability==0.25.*'"]),
    ({"tensorflow": "2.20.0", "tf-keras": "2.20.1", "tensorflow-probability": ""},
     ["TensorFlow Probability 0.25, found none", "pip install 'tensorflow-probability==0.25.*'"]),
])
def test_incompatible_versions_name_the_package_version_and_fix(monkeypatch, installed, needles):
    monkeypatch.setattr(_keras, "_installed", lambda name: installed.get(name, ""))
    monkeypatch.setattr(_keras, "on_colab", lambda: False)
    with pytest.raises(_keras.KerasSetupError) as error:
        _keras.check_versions()
    for needle in needles:
        assert needle in str(error.value)


@pytest.mark.parametrize("installed", [
    {"tensorflow": "2.18.0", "tf-keras": "2.18.0", "tensorflow-probability": "0.25.0"},
    {"tensorflow": "2.20.0", "tf-keras": "2.20.1", "tensorflow-probability": "0.25.0"},  # Colab's
    {"tensorflow": "2.21.0", "tf-keras": "2.21.0", "tensorflow-probability": "0.25.0"},
])
def test_supported_stacks_pass_the_guard(monkeypatch, installed):
    monkeypatch.setattr(_keras, "_installed", lambda name: installed.get(name, ""))
    assert _keras.check_versions() == installed


def test_on_colab_the_fix_is_a_magic_pip_line_and_a_restart(monkeypatch):
    installed = {"tensorflow": "2.20.0", "tf-keras": "2.19.0", "tensorflow-probability": "0.25.0"}
    monkeypatch.setattr(_keras, "_installed", lambda name: installed.get(name, ""))
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    with pytest.raises(_keras.KerasSetupError) as error:
        _keras.check_versions()
    assert "%pip install 'tf-keras==2.20.*', then Runtime -> Restart session" in str(error.value)


@pytest.fixture
def python(clean_env):
    """Run code in a fresh Python whose environment lacks what this process's flowlab set."""
    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env,
                              timeout=300)
    return run


LAB_PATTERN = """
import numpy as np, tensorflow_probability as tfp
tfd, tfb = tfp.distributions, tfp.bijectors
td = tfd.TransformedDistribution(
    tfd.MultivariateNormalDiag(loc=[0.0, 0.0]),
    bijector=tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(params=2, hidden_units=[4])))
x = tf.keras.Input(shape=(2,), dtype=tf.float32)
model = tf.keras.Model(x, td.log_prob(x))
points = np.array([[0.1, 0.2], [1.0, -1.0]], dtype=np.float32)
np.testing.assert_allclose(model(points).numpy(), td.log_prob(points).numpy(), rtol=1e-6)
print(tf.keras.Model.__module__)
"""


@pytest.mark.slow
def test_notebook_import_order_selects_keras2_quietly(python):
    """The notebooks' first cell: `import flowlab`, then `import tensorflow`, in a clean process.
    `import flowlab` no longer imports TensorFlow itself, yet tf.keras must be Keras 2, the lab's
    pattern must work, and TensorFlow's C++ start-up chatter must not reach stderr."""
    result = python("import sys, flowlab\n"
                    "assert 'tensorflow' not in sys.modules\n"
                    "import tensorflow as tf\n" + LAB_PATTERN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras")
    assert result.stderr == ""


@pytest.mark.slow
def test_flowlab_modules_import_tensorflow_quietly_with_keras2(python):
    """TensorFlow imported by flowlab itself (via a submodule), in a clean process."""
    result = python("import flowlab.train, tensorflow as tf\n" + LAB_PATTERN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras") and result.stderr == ""


@pytest.mark.slow
def test_keras3_already_loaded_gives_actionable_error(python):
    result = python("import tensorflow as tf; tf.keras.Model; import flowlab")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "KerasSetupError" in last and "import flowlab` before `import tensorflow`" in last
    assert "TF_USE_LEGACY_KERAS=1" in last


@pytest.mark.slow
def test_tensorflow_imported_first_but_keras_untouched_still_works(python):
    result = python("import tensorflow as tf; import flowlab; print(tf.keras.Model.__module__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras")


@pytest.mark.slow
def test_keras3_error_on_colab_says_restart_the_session(python):
    code = ("import os; os.environ['COLAB_RELEASE_TAG'] = 'release-colab-test'; "
            "import tensorflow as tf; tf.keras.Model; import flowlab")
    result = python(code)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "KerasSetupError" in last and "Runtime -> Restart session (Colab)" in last

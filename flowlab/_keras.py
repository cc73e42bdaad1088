"""Select Keras 2 for TensorFlow, once, before anything else imports it.

TensorFlow 2.16+ routes ``tf.keras`` to Keras 3, but the lab's
``tf.keras.Input -> td.log_prob(x) -> tf.keras.Model`` pattern and
``tfp.bijectors.AutoregressiveNetwork`` need Keras 2 (the ``tf-keras``
package). TensorFlow reads ``TF_USE_LEGACY_KERAS`` the first time ``tf.keras``
is touched, so importing :mod:`flowlab` before that is enough.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from importlib import metadata

from packaging.version import Version

__all__ = ["KerasSetupError", "check_versions", "select_keras2"]

#: The supported stack, as declared in pyproject.toml (tests/test_packaging.py keeps them equal):
#: TensorFlow minors from MIN_TF to MAX_TF, tf-keras of the same minor, TensorFlow Probability 0.25.
#: TFP 0.25 refuses TensorFlow < 2.18 at import; TensorFlow after MAX_TF is untested.
MIN_TF = (2, 18)
MAX_TF = (2, 21)
TFP_MINOR = (0, 25)

KERAS3_MESSAGE = (
    "TensorFlow was imported before flowlab and tf.keras is Keras 3 (keras {version}), "
    "which breaks the lab's tf.keras.Input -> log_prob -> tf.keras.Model pattern. "
    "Fix: {restart} and run `import flowlab` before `import tensorflow`, "
    "or set the environment variable TF_USE_LEGACY_KERAS=1 before starting Python."
)


class KerasSetupError(ImportError):
    """Installed packages or import order cannot give the lab Keras 2."""


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"2.21.0rc1"`` -> ``(2, 21, 0)``."""
    return Version(version).release


def _installed(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def on_colab() -> bool:
    """Whether this Python runs in a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def _restart_hint() -> str:
    """How to get a fresh Python where the user is: Colab's menu, else a kernel restart."""
    return "Runtime -> Restart session (Colab)" if on_colab() else "restart the kernel (or Python)"


def _fix(*requirements: str) -> str:
    """The pip line that installs ``requirements``, as the user would type it where they are."""
    quoted = " ".join(f"'{r}'" for r in requirements)
    if on_colab():
        return f"%pip install {quoted}, then Runtime -> Restart session"
    return f"pip install {quoted}"


def _supported_stack() -> tuple[str, str]:
    """The newest tested TensorFlow and its tf-keras, as requirements."""
    minor = f"{MAX_TF[0]}.{MAX_TF[1]}.*"
    return f"tensorflow=={minor}", f"tf-keras=={minor}"


def check_versions() -> dict[str, str]:
    """Check that TensorFlow, tf-keras and TensorFlow Probability can work together.

    The supported range is TensorFlow 2.18 to 2.21 with tf-keras of the same minor
    version and TensorFlow Probability 0.25, as pyproject.toml declares.

    Returns:
        The installed versions, by package name.

    Raises:
        KerasSetupError: naming the package, the version found and the pip line that fixes it.

    Example:
        >>> sorted(check_versions())
        ['tensorflow', 'tensorflow-probability', 'tf-keras']
    """
    supported = f"{MIN_TF[0]}.{MIN_TF[1]} to {MAX_TF[0]}.{MAX_TF[1]}"
    tf_version = _installed("tensorflow") or _installed("tensorflow-cpu")
    if not tf_version:
        raise KerasSetupError(f"flowlab needs TensorFlow {supported}, found none: {_fix(*_supported_stack())}")
    tf_minor = _version_tuple(tf_version)[:2]
    if not MIN_TF <= tf_minor <= MAX_TF:
        why = "too old for tensorflow-probability 0.25" if tf_minor < MIN_TF else "newer than flowlab is tested with"
        raise KerasSetupError(
            f"flowlab supports tensorflow {supported}, found tensorflow {tf_version} ({why}): "
            f"{_fix(*_supported_stack())}"
        )
    wanted = f"tf-keras=={tf_minor[0]}.{tf_minor[1]}.*"
    keras_version = _installed("tf-keras")
    if not keras_version:
        raise KerasSetupError(
            f"flowlab needs the tf-keras package (Keras 2) matching tensorflow {tf_version}, "
            f"found none: {_fix(wanted)}"
        )
    if _version_tuple(keras_version)[:2] != tf_minor:
        raise KerasSetupError(
            f"tf-keras {keras_version} does not match tensorflow {tf_version}; "
            f"their minor versions must agree: {_fix(wanted)}"
        )
    tfp_wanted = f"tensorflow-probability=={TFP_MINOR[0]}.{TFP_MINOR[1]}.*"
    tfp_version = _installed("tensorflow-probability")
    if not tfp_version:
        raise KerasSetupError(f"flowlab needs TensorFlow Probability 0.25, found none: {_fix(tfp_wanted)}")
    if _version_tuple(tfp_version)[:2] != TFP_MINOR:
        raise KerasSetupError(
            f"flowlab supports tensorflow-probability 0.25, found tensorflow-probability {tfp_version}: "
            f"{_fix(tfp_wanted)}"
        )
    return {
        "tensorflow": tf_version,
        "tf-keras": keras_version,
        "tensorflow-probability": tfp_version,
    }


@contextlib.contextmanager
def _silenced_stderr_fd() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: TensorFlow's C++ start-up chatter
    (oneDNN, "Could not find cuda drivers") bypasses every logging setting."""
    if os.environ.get("FLOWLAB_VERBOSE_TF") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _keras_flavour(tf) -> str:
    """``"tf_keras"`` (Keras 2) or ``"keras"`` (Keras 3): the package tf.keras routes to."""
    return tf.keras.Model.__module__.split(".")[0]


def select_keras2() -> None:
    """Route ``tf.keras`` to Keras 2 and import TensorFlow quietly.

    Raises:
        KerasSetupError: if TensorFlow already picked Keras 3, or the installed
            versions cannot work together.
    """
    check_versions()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow reads this when tf.keras is first touched, even after `import tensorflow`.
    if os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    with _silenced_stderr_fd():
        import tensorflow as tf
        import tensorflow_probability  # noqa: F401  (its own C++ chatter too)

        tf.config.list_physical_devices()  # device start-up logs "failed call to cuInit"
    if _keras_flavour(tf) != "tf_keras":
        import keras

        raise KerasSetupError(KERAS3_MESSAGE.format(version=keras.__version__, restart=_restart_hint()))
    tf.get_logger().setLevel("ERROR")

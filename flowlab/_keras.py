"""Select Keras 2 for TensorFlow, once, before anything else imports it.

TensorFlow 2.16+ routes ``tf.keras`` to Keras 3, but the lab's
``tf.keras.Input -> td.log_prob(x) -> tf.keras.Model`` pattern and
``tfp.bijectors.AutoregressiveNetwork`` need Keras 2 (the ``tf-keras``
package). TensorFlow reads ``TF_USE_LEGACY_KERAS`` the first time ``tf.keras``
is touched, so importing :mod:`flowlab` before that is enough.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Iterator
from importlib import metadata
from importlib.machinery import ModuleSpec
from types import ModuleType

from packaging.specifiers import SpecifierSet
from packaging.version import Version

__all__ = ["KerasSetupError", "SUPPORTED", "check_versions", "select_keras2", "install_line"]

#: The supported stack: pyproject.toml's specifiers (tests/test_packaging.py keeps them equal);
#: tf-keras must share TensorFlow's minor. TFP 0.25 refuses TensorFlow < 2.18 at import;
#: TensorFlow after the range is untested. Everything below is derived from these.
SUPPORTED = {"tensorflow": SpecifierSet(">=2.18,<2.22"), "tensorflow-probability": SpecifierSet(">=0.25,<0.26")}


def _minors(package: str) -> list[tuple[int, int]]:
    """The (major, minor) pairs whose ``.0`` release ``SUPPORTED[package]`` admits.

    Example:
        >>> _minors("tensorflow")[0], _minors("tensorflow")[-1]
        ((2, 18), (2, 21))
    """
    return [(major, minor) for major in range(3) for minor in range(100)
            if Version(f"{major}.{minor}.0") in SUPPORTED[package]]


def _range_text(package: str) -> str:
    """The supported minors of ``package`` in words: ``"2.18 to 2.21"``, or ``"0.25"``."""
    first, last = _minors(package)[0], _minors(package)[-1]
    return f"{first[0]}.{first[1]}" + (f" to {last[0]}.{last[1]}" if last != first else "")


MIN_TF, MAX_TF = _minors("tensorflow")[0], _minors("tensorflow")[-1]
TFP_MINOR = _minors("tensorflow-probability")[-1]

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


def install_line(*requirements: str) -> str:
    """The pip line that installs ``requirements``, as the user would type it where they are (a
    notebook cell's ``%pip`` on Colab); every message that names a missing package ends with it.

    Example (outside Colab):
        >>> install_line("nbval>=0.11,<0.12", "psutil")
        "pip install 'nbval>=0.11,<0.12' 'psutil'"
    """
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

    The supported range is :data:`SUPPORTED` (pyproject.toml's), with tf-keras of the same
    minor version as TensorFlow.

    Returns:
        The installed versions, by package name.

    Raises:
        KerasSetupError: naming the package, the version found and the pip line that fixes it.

    Example:
        >>> sorted(check_versions())
        ['tensorflow', 'tensorflow-probability', 'tf-keras']
    """
    tf_version = _checked_tensorflow()
    return {"tensorflow": tf_version, "tf-keras": _checked_tf_keras(tf_version),
            "tensorflow-probability": _checked_tfp()}


def _checked_tensorflow() -> str:
    supported = _range_text("tensorflow")
    tf_version = _installed("tensorflow") or _installed("tensorflow-cpu")
    if not tf_version:
        raise KerasSetupError(f"flowlab needs TensorFlow {supported}, found none: {install_line(*_supported_stack())}")
    tf_minor = _version_tuple(tf_version)[:2]
    if not MIN_TF <= tf_minor <= MAX_TF:
        why = (f"too old for tensorflow-probability {_range_text('tensorflow-probability')}" if tf_minor < MIN_TF
               else "newer than flowlab is tested with")
        raise KerasSetupError(f"flowlab supports tensorflow {supported}, found tensorflow {tf_version} ({why}): "
                              f"{install_line(*_supported_stack())}")
    return tf_version


def _checked_tf_keras(tf_version: str) -> str:
    tf_minor = _version_tuple(tf_version)[:2]
    wanted = f"tf-keras=={tf_minor[0]}.{tf_minor[1]}.*"
    keras_version = _installed("tf-keras")
    if not keras_version:
        raise KerasSetupError(f"flowlab needs the tf-keras package (Keras 2) matching tensorflow {tf_version}, "
                              f"found none: {install_line(wanted)}")
    if _version_tuple(keras_version)[:2] != tf_minor:
        raise KerasSetupError(f"tf-keras {keras_version} does not match tensorflow {tf_version}; "
                              f"their minor versions must agree: {install_line(wanted)}")
    return keras_version


def _checked_tfp() -> str:
    supported = _range_text("tensorflow-probability")
    wanted = f"tensorflow-probability=={TFP_MINOR[0]}.{TFP_MINOR[1]}.*"
    tfp_version = _installed("tensorflow-probability")
    if not tfp_version:
        raise KerasSetupError(f"flowlab needs TensorFlow Probability {supported}, found none: {install_line(wanted)}")
    if _version_tuple(tfp_version)[:2] != TFP_MINOR:
        raise KerasSetupError(f"flowlab supports tensorflow-probability {supported}, found "
                              f"tensorflow-probability {tfp_version}: {install_line(wanted)}")
    return tfp_version


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


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader with file descriptor 2 silenced, then starts its devices
    (which logs "failed call to cuInit") inside the same silence."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # TensorFlow keeps its own loader
        with _silenced_stderr_fd():
            self.loader.exec_module(module)
            module.config.list_physical_devices()
        module.get_logger().setLevel("ERROR")


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` the first time anything imports it (flowlab, the notebook, the user)
    and hands it to :class:`_QuietLoader`; then it takes itself off ``sys.meta_path``."""

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        _remove_quiet_import()
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def _remove_quiet_import() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowFinder)]


def _keras_flavour(tf) -> str:
    """``"tf_keras"`` (Keras 2) or ``"keras"`` (Keras 3): the package tf.keras routes to."""
    return tf.keras.Model.__module__.split(".")[0]


def select_keras2() -> None:
    """Route ``tf.keras`` to Keras 2 and make TensorFlow's first import quiet, without importing it.

    Checks the installed versions (package metadata only), sets ``TF_USE_LEGACY_KERAS=1``
    (TensorFlow reads it when ``tf.keras`` is first touched, even after ``import tensorflow``),
    and arranges for whatever imports TensorFlow first to do it with the C++ start-up chatter
    silenced. If TensorFlow is already imported, checks now that ``tf.keras`` is Keras 2.

    Raises:
        KerasSetupError: if TensorFlow already picked Keras 3, or the installed
            versions cannot work together.
    """
    check_versions()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    tf = sys.modules.get("tensorflow")
    if tf is None:
        if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _QuietTensorFlowFinder())
        return
    if _keras_flavour(tf) != "tf_keras":
        import keras

        raise KerasSetupError(KERAS3_MESSAGE.format(version=keras.__version__, restart=_restart_hint()))
    tf.get_logger().setLevel("ERROR")

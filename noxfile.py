"""The compatibility matrix: the stacks students open the lab on.

    pip install -e ".[matrix]"      # nox and uv
    nox -s colab                    # Colab's preinstalled stack, flowlab's wheel installed on top
    nox -s floor mid                # the oldest supported stack (NumPy 1.26); a middle one
    nox -s default                  # the README's full suite on the known-good stack
    nox                             # all four
    nox -s floor -- tests/test_data.py   # pytest arguments after -- replace the unit tests

Each session builds a fresh virtual environment with uv. The interpreters are looked up
on PATH and, where pyenv is installed, among pyenv's versions (no Python is downloaded).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["colab", "floor", "mid", "default"]

#: Google Colab's runtime (its published package list, Aug 2026), installed before flowlab.
COLAB_STACK = {
    "tensorflow": "2.20.0",
    "tf-keras": "2.20.1",
    "tensorflow-probability": "0.25.0",
    "numpy": "2.1.3",
    "protobuf": "5.29.6",
}
#: What a non-default session runs after installing: the fast tests, a short headless
#: training, and the lab notebook under nbval with full output comparison.
UNIT_TESTS = ["pytest", "flowlab", "tests", "-m", "not slow", "-q", "-n", "2"]  # xdist: the test extra
SHORT_TRAINING = ["flowlab", "train", "--epochs", "2", "--json"]
LAB_NOTEBOOK = ["pytest", "notebooks/normalizing_flows.ipynb", "--nbval", "-q"]


def _add_pyenv_pythons_to_path() -> None:
    """Put every pyenv-installed interpreter on PATH, so that nox finds python3.10 ... 3.13."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    bins = sorted(str(p / "bin") for p in root.glob("3.*") if (p / "bin").is_dir())
    if bins:
        os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])


_add_pyenv_pythons_to_path()


def _installed_versions(session: nox.Session, packages: list[str]) -> dict[str, str]:
    """The versions of ``packages`` in the session's environment."""
    code = ("import json, sys; from importlib.metadata import version; "
            "print(json.dumps({p: version(p) for p in sys.argv[1:]}))")
    out = session.run("python", "-c", code, *packages, silent=True)
    return json.loads(out.strip().splitlines()[-1])


def _smoke(session: nox.Session) -> None:
    """Unit tests (or the pytest arguments given after ``--``), a short training, the notebook."""
    session.run(*(["pytest", *session.posargs] if session.posargs else UNIT_TESTS))
    session.run(*SHORT_TRAINING)
    session.run(*LAB_NOTEBOOK)


def _build_wheel(session: nox.Session) -> Path:
    """The wheel, built as the README tells instructors (``python -m build --wheel``)."""
    out = Path(session.create_tmp()) / "dist"
    shutil.rmtree(out, ignore_errors=True)
    session.install("build")
    session.run("python", "-m", "build", "--wheel", "--outdir", str(out), silent=True)
    (wheel,) = out.glob("flowlab-*-py3-none-any.whl")
    return wheel


def _check_as_a_student(session: nox.Session) -> None:
    """The README's command after installing the wheel, run outside the repository: the solution
    gets every point from the reference that ships in the wheel."""
    folder = Path(session.create_tmp()) / "student"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    shutil.copy("notebooks/normalizing_flows.ipynb", folder / "my_lab.ipynb")
    with session.chdir(folder):
        session.run("flowlab", "check", "my_lab.ipynb")


@nox.session(python="3.13")
def colab(session: nox.Session) -> None:
    """Colab's stack first, then the wheel as students install it (no extras): the install must
    not touch TensorFlow or tf-keras, and ``flowlab check`` must work from it alone."""
    session.install(*(f"{name}=={version}" for name, version in COLAB_STACK.items()))
    wheel = _build_wheel(session)
    session.install(str(wheel))
    after = _installed_versions(session, list(COLAB_STACK))
    changed = {name: (COLAB_STACK[name], after[name]) for name in COLAB_STACK
               if after[name] != COLAB_STACK[name]}
    if changed:
        session.error(f"installing flowlab changed Colab's preinstalled packages: {changed}")
    session.log(f"Colab's stack unchanged by the install: {after}")
    _check_as_a_student(session)
    # the tests import the repository's flowlab (pytest puts the repository first on sys.path),
    # so it is installed in place of the wheel, with the tests' own packages
    session.install("-e", ".[test]")
    _smoke(session)


@nox.session(python="3.10")
def floor(session: nox.Session) -> None:
    """The oldest supported stack: Python 3.10, TensorFlow 2.18 and NumPy 1.26 (not 2.x)."""
    session.install("-e", ".[test]", "tensorflow==2.18.*", "tf-keras==2.18.*", "numpy==1.26.*")
    session.log(str(_installed_versions(session, ["tensorflow", "tf-keras", "numpy"])))
    _smoke(session)


@nox.session(python="3.12")
def mid(session: nox.Session) -> None:
    """A middle stack: Python 3.12 with TensorFlow 2.19."""
    session.install("-e", ".[test]", "tensorflow==2.19.*", "tf-keras==2.19.*")
    session.log(str(_installed_versions(session, ["tensorflow", "tf-keras", "numpy"])))
    _smoke(session)


@nox.session(python="3.11")
def default(session: nox.Session) -> None:
    """The known-good stack and the README's full test command."""
    session.install("-e", ".[test]")
    session.run("pytest", "flowlab", "tests", "notebooks/normalizing_flows.ipynb",
                "notebooks/flow_families.ipynb", "notebooks/vae_gan_flow.ipynb", "notebooks/image_flows.ipynb",
                "notebooks/continuous_flows.ipynb", "--nbval", "-n", "2", "--dist", "loadscope")

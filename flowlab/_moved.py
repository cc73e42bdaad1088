"""The old flat names of flowlab's modules, kept working after the package was split into
subpackages (issue 37): ``import flowlab.checks``, ``from flowlab import vae``,
``python -m flowlab.verdict`` and ``python -m flowlab.gradescope`` all still work.

:data:`MOVED` is the one table of old name -> new dotted path. :class:`MovedFinder`, first on
``sys.meta_path`` once ``import flowlab`` has run, imports an old name as its new module and
returns that very module object: ``flowlab.checks is flowlab.grader.checks``, so the checks'
registries and ledgers, and any monkeypatching, are shared whichever name is used. Run as a
script (``python -m``), an old name runs its new module's code as ``__main__``, as before.

flowlab's own code imports the new paths; only callers outside it (the notebooks, submitted
notebooks, scripts) go through here.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

#: Old module name (below ``flowlab``) -> the module's dotted path now.
MOVED = {
    # the flow families
    "spline": "flowlab.flows.spline",
    "continuous": "flowlab.flows.continuous",
    # the studies
    "flow_matching": "flowlab.studies.flow_matching",
    "vae": "flowlab.studies.vae",
    "gan": "flowlab.studies.gan",
    "reverse_kl": "flowlab.studies.reverse_kl",
    "compare": "flowlab.studies.compare",
    "digits": "flowlab.studies.digits.data",
    "digits_lab": "flowlab.studies.digits.lab",
    "image_flows": "flowlab.studies.digits.flows",
    "image_io": "flowlab.studies.digits.io",
    "image_plots": "flowlab.studies.digits.plots",
    "image_train": "flowlab.studies.digits.train",
    # the grader
    "checks": "flowlab.grader.checks",
    "_check_guard": "flowlab.grader._check_guard",
    "_seal": "flowlab.grader._seal",
    "student": "flowlab.grader.student",
    "grade": "flowlab.grader.grade",
    "grade_prepare": "flowlab.grader.prepare",
    "grade_progress": "flowlab.grader.progress",
    "grade_records": "flowlab.grader.records",
    "grade_reports": "flowlab.grader.reports",
    "grade_run": "flowlab.grader.run",
    "grade_verdicts": "flowlab.grader.verdicts",
    "_grade_limits": "flowlab.grader._limits",
    "_grade_setup": "flowlab.grader._setup",
    "gradebook": "flowlab.grader.gradebook",
    "late": "flowlab.grader.late",
    "gradescope": "flowlab.grader.gradescope",
    "verdict": "flowlab.grader.verdict",
    "_nbval_plugin": "flowlab.grader._nbval_plugin",
    "_launcher": "flowlab.grader._launcher",
    "lab_notebooks": "flowlab.grader.lab_notebooks",
    "lms": "flowlab.grader.lms.exchange",
    "lms_csv": "flowlab.grader.lms.tables",
    # the command line
    "cli_grading": "flowlab.cli.grading",
    "cli_lab": "flowlab.cli.lab",
    "_cli_common": "flowlab.cli._common",
}


class _Alias(importlib.abc.Loader):
    """Loads an old name as the module at its new path (imported first if need be)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # a throwaway module: exec_module puts the real one in its place

    def exec_module(self, module: types.ModuleType) -> None:
        # The import system returns whatever sys.modules holds under the name once this returns
        # (and binds it on the parent package): the new module itself, its attributes untouched.
        sys.modules[module.__name__] = importlib.import_module(self.target)

    def get_code(self, fullname: str) -> types.CodeType | None:
        """The new module's code, for ``python -m flowlab.<old name>`` (runpy runs it as ``__main__``)."""
        spec = importlib.util.find_spec(self.target)
        if spec is None or not isinstance(spec.loader, importlib.abc.InspectLoader):
            raise ImportError(f"no code for {self.target}", name=fullname)
        return spec.loader.get_code(self.target)

    def is_package(self, fullname: str) -> bool:
        return False


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the old names of :data:`MOVED` (``flowlab.checks``, ...) and only those."""

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != "flowlab" or name not in MOVED:
            return None
        new = MOVED[name]
        return importlib.util.spec_from_loader(fullname, _Alias(new), origin=_origin(new))


def _origin(name: str) -> str | None:
    """The new module's file, where it is found without importing it (what ``__file__`` shows under -m)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None


def install() -> None:
    """Put one :class:`MovedFinder` first on ``sys.meta_path`` (once, however often flowlab is imported)."""
    # by name, not isinstance: a flowlab imported afresh (its modules dropped from sys.modules)
    # has a new MovedFinder class, and one finder is enough
    if not any(type(finder).__qualname__ == "MovedFinder" and type(finder).__module__ == __name__
               for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedFinder())

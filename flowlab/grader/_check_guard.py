"""The checks' defences against a notebook that tries to fool them (:mod:`flowlab.grader.checks`):

- :class:`Ledger`: what earlier checks saw, for the later ones (the chain checked at
  ``flow_chain`` must be the one inside the trained ``td``, and so on);
- :func:`snapshot` and :func:`tampered`: where the checks' tools (numpy, builtins, flowlab,
  the TFP/Keras classes of the answers) live when the checker is imported, and which of them
  a notebook replaced since;
- :func:`require_genuine`: an answer must be an instance of the library's own classes with no
  method replaced on the instance.

Code running in the same kernel can still defeat all of this with enough effort; the README's
grading section says exactly what is and is not defended.
"""

from __future__ import annotations

import builtins
import types
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Ledger", "snapshot", "tampered", "require_genuine", "STAND_IN_NOTE"]

#: How a passing check's stderr line starts when it judged a reference's stand-in for an answer
#: that failed its own check (``flowlab.grader.checks.stand_in``); the grader turns such lines into notes.
STAND_IN_NOTE = "flowlab: judged with the reference's"


class Ledger:
    """What the checks that passed in this kernel recorded, by key (``chain``, ``td``, ``model``,
    ...), and which methods the checker itself put on an object (``own_attributes``).

    Example:
        >>> ledger = Ledger()
        >>> ledger.record(td="a flow"); ledger["td"], "model" in ledger
        ('a flow', False)
        >>> ledger.reset(); "td" in ledger
        False
    """

    def __init__(self) -> None:
        self._entries: dict[str, Any] = {}
        self._own_attributes: dict[int, tuple[str, ...]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __getitem__(self, key: str) -> Any:
        return self._entries[key]

    def record(self, **entries: Any) -> None:
        """Remember ``entries`` for the checks that come later."""
        self._entries.update(entries)

    def forget(self, *keys: str) -> None:
        """Drop ``keys`` (a check that starts a new chain of answers forgets the old one's)."""
        for key in keys:
            self._entries.pop(key, None)

    def reset(self) -> None:
        """Forget everything, as a kernel just started."""
        self._entries.clear()
        self._own_attributes.clear()

    def mark_own(self, value: Any, *methods: str) -> None:
        """The checker itself set ``methods`` on ``value`` (they are not the notebook's doing)."""
        self._own_attributes[id(value)] = tuple(methods)

    def own(self, value: Any) -> tuple[str, ...]:
        return self._own_attributes.get(id(value), ())

    def saved(self) -> tuple[dict[str, Any], dict[int, tuple[str, ...]]]:
        """A copy of the state, for :meth:`restore` (tests that share an expensive stage)."""
        return dict(self._entries), dict(self._own_attributes)

    def restore(self, state: tuple[dict[str, Any], dict[int, tuple[str, ...]]]) -> None:
        """Put back a state :meth:`saved` returned."""
        entries, own = state
        self._entries, self._own_attributes = dict(entries), dict(own)


class _Rejected(AssertionError):
    """Raised by :func:`require_genuine`; the checker turns it into its own failure."""


def require_genuine(name: str, value: Any, library: str, methods: tuple[str, ...], ledger: Ledger,
                    failure: type[AssertionError] = _Rejected) -> None:
    """``value`` must be an instance of ``library``'s own classes with none of ``methods``
    replaced on the instance (other than by the checker); raises ``failure`` saying which."""
    module = type(value).__module__ or ""
    if module.split(".")[0] != library:
        raise failure(f"`{name}` is a {type(value).__name__} defined in {module or 'the notebook'}, not one of "
                      f"{library}'s own classes. Hint: build it with the library, as the TODO says.")
    replaced = sorted(m for m in methods if m in getattr(value, "__dict__", {}) and m not in ledger.own(value))
    if replaced:
        raise failure(f"`{name}` has its own {', '.join(replaced)}: methods replaced on the object are not "
                      "the library's. Hint: rebuild it without changing it.")


def _with_bases(roots: Iterable[type]) -> list[type]:
    """``roots``, TFP's auto-composite twins of them (``tfb.Chain`` builds a ``_Chain``) and all
    their bases but ``object``."""
    roots = list(roots)
    for root in list(roots):
        module = __import__(root.__module__, fromlist=["_"])
        twin = getattr(module, "_" + root.__name__, None)
        if isinstance(twin, type):
            roots.append(twin)
    seen: dict[int, type] = {}
    for root in roots:
        for cls in root.__mro__:
            if cls is not object:
                seen.setdefault(id(cls), cls)
    return list(seen.values())


def _functions(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The callables of a module's or class's namespace (not data, not modules)."""
    return {name: value for name, value in list(namespace.items())
            if callable(value) or isinstance(value, (property, classmethod, staticmethod))
            if not isinstance(value, types.ModuleType)}


#: The builtins the checks use (the kernel itself rebinds others, such as input(), every cell).
BUILTINS_USED = frozenset({"abs", "all", "any", "callable", "dict", "enumerate", "float", "getattr",
                           "hasattr", "int", "isinstance", "len", "list", "max", "min", "print", "range",
                           "round", "sorted", "str", "sum", "tuple", "type", "vars", "zip", "id",
                           "__import__", "iter", "next", "repr", "format", "bool", "set", "object", "map"})

Snapshot = dict[str, tuple[Any, dict[str, Any]]]


def snapshot(modules: Mapping[str, types.ModuleType], classes: Iterable[type]) -> Snapshot:
    """Where the checks' tools live now: the callables of each of ``modules`` (label -> module),
    of the builtins the checks use, and of ``classes`` with their bases, by name."""
    owners: list[tuple[str, Any]] = [("builtins", builtins), *modules.items()]
    owners += [(f"{cls.__module__}.{cls.__qualname__}", cls) for cls in _with_bases(classes)]
    taken = {label: (weakref.ref(owner) if isinstance(owner, type) else owner, _functions(vars(owner)))
             for label, owner in owners}
    taken["builtins"] = (builtins, {name: value for name, value in taken["builtins"][1].items()
                                    if name in BUILTINS_USED})
    return taken


def tampered(taken: Snapshot) -> list[str]:
    """Names of the tools in ``taken`` replaced since, and methods added to its classes (a
    method added to a class overrides its base's)."""
    changed = []
    for label, (owner, functions) in taken.items():
        owner = owner() if isinstance(owner, weakref.ref) else owner
        if owner is None:
            continue
        now = vars(owner)
        changed += [f"{label}.{name}" for name, value in functions.items() if now.get(name) is not value]
        if isinstance(owner, type):
            changed += [f"{label}.{name}" for name in _functions(now) if name not in functions]
    return changed

"""Undo journal: every state mutation records its inverse, so replay can rewind a suffix.

Late concurrent events land inside the deterministic order, not at its end (D4). Rather than
rebuild the whole state, the managed DAG undoes the events after the insertion point (newest
first), applies the late event, and re-applies the suffix: the cost is the suffix, not the history.
Apply handlers mutate state only through a ``Journal``; a handler that mutated directly would make
rewinds silently wrong, which the incremental-equals-fresh property tests catch.
"""

from __future__ import annotations

from builtins import set as _builtin_set
from collections.abc import MutableSet
from typing import Any

__all__ = ["Journal", "Unrecorded", "Entry", "undo"]

Entry = tuple[Any, ...]

_MISSING: Any = object()
_SET, _ADD, _DISCARD, _APPEND, _ATTR = range(5)


class Journal:
    """Mutations with their inverses appended to ``entries`` (one list per applied event)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def set(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        self.entries.append((_SET, mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def pop(self, mapping: dict[Any, Any], key: Any) -> Any:
        old = mapping.pop(key, _MISSING)
        if old is not _MISSING:
            self.entries.append((_SET, mapping, key, old))
            return old
        return None

    def add(self, target: MutableSet[Any], item: Any) -> None:
        if item not in target:
            target.add(item)
            self.entries.append((_ADD, target, item))

    def discard(self, target: MutableSet[Any], item: Any) -> None:
        if item in target:
            target.discard(item)
            self.entries.append((_DISCARD, target, item))

    def append(self, target: list[Any], item: Any) -> None:
        target.append(item)
        self.entries.append((_APPEND, target))

    def attr(self, obj: Any, name: str, value: Any) -> None:
        self.entries.append((_ATTR, obj, name, getattr(obj, name)))
        setattr(obj, name, value)


def undo(entries: list[Entry]) -> None:
    """Revert ``entries`` (newest first)."""
    for entry in reversed(entries):
        op = entry[0]
        if op == _SET:
            _, mapping, key, old = entry
            if old is _MISSING:
                del mapping[key]
            else:
                mapping[key] = old
        elif op == _ADD:
            entry[1].discard(entry[2])
        elif op == _DISCARD:
            entry[1].add(entry[2])
        elif op == _APPEND:
            entry[1].pop()
        else:
            setattr(entry[1], entry[2], entry[3])


class Unrecorded(Journal):
    """A journal that records nothing: for folds that will never be rewound (fresh rebuilds).

    Its mutators are the builtin methods themselves, so a fresh replay pays no Python call
    per mutation (handlers only ever pass real dicts, sets and lists).
    """

    __slots__ = ()

    # The builtins' own methods: a fresh replay pays no Python frame per mutation.
    add = staticmethod(_builtin_set.add)  # type: ignore[assignment]
    discard = staticmethod(_builtin_set.discard)  # type: ignore[assignment]
    append = staticmethod(list.append)  # type: ignore[assignment]
    attr = staticmethod(setattr)  # type: ignore[assignment]
    set = staticmethod(dict.__setitem__)  # type: ignore[assignment]

    def pop(self, mapping: dict[Any, Any], key: Any) -> Any:
        return mapping.pop(key, None)

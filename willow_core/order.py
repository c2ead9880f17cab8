"""The deterministic total order of a DAG (D4).

Theory of operation. The order is Kahn's topological sort in which, among all events whose
parents are already placed, the one with the smallest id (raw bytes) goes next. It depends only
on the *set* of events, never on arrival order, and it keeps every event after all its parents.

Two facts make incremental maintenance cheap (``managed``):

1. Placing is a pure function of what is placed so far, so if the first ``r`` events of the old
   order are untouched by a change, the new order is the old prefix followed by Kahn's
   continuation over the rest (``continue_order``).
2. A newly inserted event has no children in the DAG (the DAG is closed under ancestry), so it
   cannot be placed before ``1 + max(position of its parents)``; nothing earlier changes.

So a causally-newest event is appended in O(1), and a late concurrent event costs only the
suffix after its parents.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from .event import Event

__all__ = ["topological_order", "continue_order"]


def continue_order(rest: Iterable[Event], placed: Mapping[bytes, object]) -> list[Event]:
    """Kahn's order of ``rest``, given that every event in ``placed`` is already placed.

    Every parent of an event in ``rest`` must be in ``rest`` or in ``placed``.
    """
    pending: dict[bytes, int] = {}
    children: dict[bytes, list[Event]] = {}
    by_id: dict[bytes, Event] = {}
    for ev in rest:
        by_id[ev.id] = ev
    ready: list[tuple[bytes, Event]] = []
    for ev in by_id.values():
        waiting = 0
        for parent in ev.parents:
            if parent in by_id:
                waiting += 1
                children.setdefault(parent, []).append(ev)
            elif parent not in placed:
                raise ValueError("an event's parent is neither placed nor in the batch")
        if waiting:
            pending[ev.id] = waiting
        else:
            ready.append((ev.id, ev))
    heapq.heapify(ready)
    out: list[Event] = []
    while ready:
        _, ev = heapq.heappop(ready)
        out.append(ev)
        for child in children.get(ev.id, ()):
            left = pending[child.id] - 1
            if left:
                pending[child.id] = left
            else:
                del pending[child.id]
                heapq.heappush(ready, (child.id, child))
    if pending:
        raise ValueError("cycle or dangling parent among events")
    return out


def topological_order(events: Iterable[Event]) -> list[Event]:
    """The deterministic order of a whole DAG."""
    return continue_order(events, {})

"""The deterministic total order of a DAG (D4): by effective depth, then by event id.

Theory of operation. Every event has an *effective depth* (``EventDag.depth``): 0 for
genesis, otherwise at least one more than the deepest event it names (``prev`` and ``deps``),
and, when a removal targeting its author did not see it, at least one more than that removal's
causal depth (see ``dag``: what a removed member did not show the remover comes after the
removal). Events are ordered by ``(depth, id)``, ids compared as raw bytes. This is a
topological order (a parent is always strictly shallower than its child), it depends only on
the *set* of events (never on arrival order), and depths are computed from the DAG itself, so
no peer can claim one.

Why this order: it is a sort key, so maintaining it is bisection and merging, not graph search.

* A causally-newest event (one that depends on every current tip) is deeper than every event
  in the DAG, so its key is the largest: it is appended in O(1).
* A late concurrent event has roughly the depth of the events it is concurrent with, so it
  lands among them and only the suffix after it must be re-applied (``managed``).

A long offline branch interleaves with the events that happened meanwhile, level by level;
that is a fair merge of concurrent work, and every peer computes the same one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from struct import Struct

from .event import Event

__all__ = ["OrderKey", "order_key", "topological_order"]

OrderKey = tuple[int, bytes]


def order_key(ev: Event, depth: Mapping[bytes, int]) -> OrderKey:
    return (depth[ev.id], ev.id)


def topological_order(events: Iterable[Event], depth: Mapping[bytes, int]) -> list[Event]:
    """All ``events`` in the deterministic order.

    The sort key is ``order_key`` spelled as bytes (8-byte big-endian depth, then the id), which
    orders the same way: a whole history's keys as tuples would be that many objects for the
    garbage collector to walk, and bytes are not tracked by it.
    """
    return sorted(events, key=lambda ev: _pack_depth(depth[ev.id]) + ev.id)


_pack_depth = Struct(">Q").pack

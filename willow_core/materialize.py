"""Fresh materialization: the state of a DAG, folded from genesis in the deterministic order.

This is the reference the incremental path (``managed``) must always equal; property tests
compare the two over random arrival orders.
"""

from __future__ import annotations

from collections.abc import Iterable

from .apply import apply_all
from .dag import EventDag
from .errors import LocalError
from .event import Event
from .journal import Journal, Unrecorded
from .kinds import CreateServer
from .order import topological_order
from .state import ServerState

__all__ = ["materialize", "new_state", "fold"]


def new_state(genesis: Event) -> ServerState:
    """The state just before genesis applies: its author is owner, sole admin and member."""
    payload = genesis.payload
    if not isinstance(payload, CreateServer):
        raise LocalError("a community starts from its CreateServer event")
    return ServerState(genesis.id, payload.name, genesis.author, genesis.ts)


def fold(
    state: ServerState, order: Iterable[Event], fork_seq: dict[bytes, int], j: Journal
) -> None:
    """Apply ``order`` to ``state`` in sequence."""
    apply_all(state, order, fork_seq, j)


def materialize(dag: EventDag) -> ServerState:
    """Rebuild the state of ``dag`` from scratch (no signature checks: the DAG holds only
    verified events)."""
    if not dag.has_genesis:
        raise LocalError("cannot materialize a community without its genesis event")
    order = topological_order(dag.events.values(), dag.depth)
    state = new_state(order[0])
    fold(state, order, dag.fork_seq, Unrecorded())
    return state

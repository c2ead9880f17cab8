"""The bulk insert path (``EventDag.add_run``) is only a shortcut: the DAG, the receipts, the order
and the state are exactly what ``check`` + ``add`` alone produce, for every arrival order.

``receive`` hands every run of *plain* events to ``add_run`` and everything else to the general
path; here the same deliveries go to a second ``ManagedDag`` whose ``add_run`` never takes an
event, and every field of the two is compared after each batch. Deliveries include duplicates,
events whose parents are missing (the pending buffer) and forged signatures.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import REMOVAL_HEAVY, START_MS, History, examples, histories
from test_convergence import add_fork

from willow_core.dag import EventDag
from willow_core.event import Event
from willow_core.managed import ManagedDag, Receipt
from willow_core.state import state_hash

NOW = START_MS + 10**9
SETTINGS = settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class _GeneralOnly(EventDag):
    """An ``EventDag`` whose bulk path declines every event."""

    __slots__ = ()

    def add_run(self, batch: list[Event], start: int, *_: Any) -> int:
        return start


def _general_only(server_id: bytes) -> ManagedDag:
    managed = ManagedDag(server_id)
    managed.dag = _GeneralOnly(server_id)
    return managed


def _dag_fields(dag: EventDag) -> tuple[Any, ...]:
    return (
        list(dag.events),
        {i: dag.nat[i] for i in dag.events},
        dag.depth,
        dag.floor,
        dag.raised,
        dag.chains,
        dag.tips,
        dag.fork_seq,
        dag.fork_proofs,
        dag.joins,
    )


def _receipt_fields(receipt: Receipt) -> tuple[Any, ...]:
    return (
        [ev.id for ev in receipt.inserted],
        [ev.id for ev in receipt.moved],
        receipt.duplicates,
        receipt.buffered,
        receipt.dropped,
        [(i, exc.reason) for i, exc in receipt.refused],
    )


def _forge(ev: Event) -> Event:
    return ev._replace(sig=bytes(64))


def _deliveries(events: list[Event], rng: random.Random) -> list[list[Event]]:
    arrival = list(events)
    mode = rng.randrange(3)
    if mode == 1:  # mostly causal with some events late
        for _ in range(len(arrival) // 5):
            i = rng.randrange(len(arrival))
            arrival.append(arrival.pop(i))
    elif mode == 2:
        rng.shuffle(arrival)
    arrival += rng.sample(arrival, len(arrival) // 8)  # duplicates
    batches: list[list[Event]] = []
    position = 0
    while position < len(arrival):
        size = rng.choice([1, 2, 5, len(arrival)])
        batches.append(arrival[position : position + size])
        position += size
    return batches


def _check(server_id: bytes, events: list[Event], seed: int) -> None:
    rng = random.Random(seed)
    bulk = ManagedDag(server_id)
    general = _general_only(server_id)
    # A forged copy shares its original's id, so the whole id is refused in that batch; the
    # last delivery (everything, verified) brings in whatever that left out.
    for batch in [*_deliveries(events, rng), events]:
        verified = batch is events or rng.random() < 0.7
        if not verified and len(batch) > 1 and rng.random() < 0.5:
            k = rng.randrange(1, len(batch))
            batch = [*batch[:k], _forge(batch[k]), *batch[k:]]
        a = bulk.receive(batch, NOW, verified=verified)
        b = general.receive(batch, NOW, verified=verified)
        assert _receipt_fields(a) == _receipt_fields(b)
        assert _dag_fields(bulk.dag) == _dag_fields(general.dag)
        assert [ev.id for ev in bulk.order] == [ev.id for ev in general.order]
        assert list(bulk.pending.held) == list(general.pending.held)
        if bulk.state is not None or general.state is not None:
            assert bulk.state is not None
            assert general.state is not None
            assert state_hash(bulk.state) == state_hash(general.state)
    assert len(bulk.dag) == len(events)


@SETTINGS
@given(history=histories(), seed=st.integers(0, 2**64 - 1))
def test_bulk_path_equals_general_path(history: History, seed: int) -> None:
    _check(history.server_id, history.events, seed)


@SETTINGS
@given(history=histories(actions=REMOVAL_HEAVY), seed=st.integers(0, 2**64 - 1))
def test_bulk_path_equals_general_path_with_many_removals(history: History, seed: int) -> None:
    _check(history.server_id, history.events, seed)


@SETTINGS
@given(history=histories(max_events=100), seed=st.integers(0, 2**64 - 1))
def test_bulk_path_equals_general_path_with_a_fork(history: History, seed: int) -> None:
    events, _, _ = add_fork(history, random.Random(seed))
    _check(history.server_id, events, seed)

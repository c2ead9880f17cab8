"""Cross-community replay: every event is bound to its community's id (D3).

The original lacks this binding, so one community's events could be replayed into another where
the same author also acts. Here the DAG refuses them at insert with ``wrong-server``.
"""

from __future__ import annotations

from willow_core import Community, InsertError
from willow_core.kinds import CreateChannel, Message

from .helpers import Clock, admit, channel, forge, found, history, ident, post


def test_events_of_another_community_are_refused() -> None:
    clock = Clock()
    a = found(clock, "alice", name="A")
    b = found(clock, "bob", name="B")
    a_member = admit(a, "m", clock)
    b_member = admit(b, "m", clock)  # the same person is a member of both
    chan = channel(a, clock)
    post(a, chan, "in A", clock)
    a_member.receive(history(a), clock())
    a_member.author(Message(chan, "m in A"), clock())
    a.receive(history(a_member), clock())
    b_member.receive(history(b), clock())

    before = b.state_hash()
    size = len(b.dag)
    foreign = history(a)
    receipt = b.receive(foreign, clock())
    assert not receipt.inserted
    assert receipt.buffered == 0
    assert {i for i, _ in receipt.refused} == {ev.id for ev in foreign}
    for _, error in receipt.refused:
        assert isinstance(error, InsertError)
        assert error.reason == "wrong-server"
    assert b.state_hash() == before
    assert len(b.dag) == size
    assert len(b.managed.pending) == 0

    # The same through the wire path, and into the other member's replica.
    wire_receipt, errors = b_member.receive_wire([ev.wire for ev in foreign], clock())
    assert not errors
    assert [e.reason for _, e in wire_receipt.refused] == ["wrong-server"] * len(foreign)


def test_genesis_of_another_community_is_refused() -> None:
    clock = Clock()
    a = found(clock, "alice", name="A")
    b = found(clock, "bob", name="B")
    a_genesis = a.dag.events[a.server_id]
    receipt = b.receive([a_genesis], clock())
    assert [(i, e.reason) for i, e in receipt.refused] == [(a.server_id, "wrong-server")]
    assert a.server_id not in b.dag
    # A replica still waiting for its genesis takes only its own community's.
    waiting = Community(ident("m"), a.server_id)
    receipt = waiting.receive([b.dag.events[b.server_id]], clock())
    assert [e.reason for _, e in receipt.refused] == ["wrong-server"]
    assert len(waiting.dag) == 0
    waiting.receive([a_genesis], clock())
    assert waiting.state.name == "A"


def test_same_owner_cannot_replay_their_own_events_across_communities() -> None:
    # One identity founds two communities, so its seq-2 event in A is a plausible
    # continuation of its chain in B, except that it is bound to A.
    clock = Clock()
    a = found(clock, "alice", name="A")
    b = found(clock, "alice", name="B")
    assert a.server_id != b.server_id
    in_a = a.author(CreateChannel("secret"), clock())
    assert in_a.seq == 2
    receipt = b.receive([in_a], clock())
    assert [e.reason for _, e in receipt.refused] == ["wrong-server"]
    assert b.state.channels == {}
    # Re-binding the payload to B takes a new signature: it is then B's own, distinct event.
    rebound = forge(b, ident("alice"), CreateChannel("secret"))
    assert rebound.id != in_a.id
    assert rebound.server == b.server_id
    assert b.receive([rebound], clock()).inserted == [rebound]


def test_event_claiming_this_community_but_built_on_another_never_applies() -> None:
    clock = Clock()
    a = found(clock, "alice", name="A")
    b = found(clock, "bob", name="B")
    b_member = admit(b, "m", clock)
    chan = channel(a, clock)
    # Signed for B, but its parents are A's events: it waits for parents that never come.
    ts = a.dag.events[chan].ts
    hybrid = forge(b_member, ident("m"), Message(chan, "smuggled"), deps=(chan,), ts=ts)
    assert hybrid.server == b.server_id
    before = b.state_hash()
    receipt = b.receive([hybrid], clock())
    assert receipt.buffered == 1
    assert not receipt.inserted
    assert hybrid.id not in b.dag
    assert b.state_hash() == before

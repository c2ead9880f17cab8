"""Equivocation: one author signing two different events at the same seq (D4).

Both branches enter the DAG (so they sync as the fork proof), and every replica applies the same
rule: the author's events from the lowest forked seq on have no effect. Whichever branch a
replica saw first, all converge; other authors' events built on either branch still apply.
"""

from __future__ import annotations

import pytest

from willow_core import Community, Event, NotPermitted, RejectReason
from willow_core.invite import sign_join
from willow_core.kinds import Join, Message, Payload, SetProfile

from .helpers import (
    Room,
    assert_converged,
    forge,
    history,
    make_invite,
    pk,
    replica,
    room,
)

R = RejectReason


def _sibling(c: Community, of: Event, payload: Payload) -> Event:
    """Another event by ``of``'s author at the same seq with the same prev and deps."""
    return forge(c, c.identity, payload, seq=of.seq, prev=of.prev, deps=of.deps, ts=of.ts)


def _pairs(c: Community, author: bytes) -> set[frozenset[bytes]]:
    return {frozenset(pair) for pair in c.dag.fork_proofs.get(author, [])}


def _setup() -> tuple[Room, Event, Event, Event]:
    """``m`` forks at one seq: X (then X2 on top of it) and Y."""
    r = room("m", "b")
    r.do("m", Message(r.channel, "before the fork"))
    m = r["m"]
    x = forge(m, m.identity, Message(r.channel, "branch X"))
    y = _sibling(m, x, Message(r.channel, "branch Y"))
    assert (x.seq, x.prev) == (y.seq, y.prev)
    assert x.id != y.id
    x2 = forge(
        m, m.identity, Message(r.channel, "X continues"), seq=x.seq + 1, prev=x.id, deps=(), ts=x.ts
    )
    return r, x, y, x2


def test_both_replicas_record_the_fork_and_converge() -> None:
    r, x, y, x2 = _setup()
    owner, b = r.owner, r["b"]
    pre_fork = [ev for ev in history(owner) if ev.author == pk("m")]
    # Replica 1 sees branch X (and builds on it); replica 2 sees branch Y (and builds on it).
    owner.receive([x, x2], r.clock())
    on_x = owner.author(Message(r.channel, "owner saw X"), r.clock())
    assert x2.id in on_x.deps
    b.receive([y], r.clock())
    on_y = b.author(Message(r.channel, "b saw Y"), r.clock())
    assert y.id in on_y.deps
    for c in (owner, b):
        assert pk("m") not in c.dag.fork_seq
    # Then both receive everything.
    owner.receive([y, on_y], r.clock())
    b.receive([x, x2, on_x], r.clock())
    assert_converged(owner, b)

    for c in (owner, b):
        assert c.dag.fork_seq == {pk("m"): x.seq}
        assert _pairs(c, pk("m")) == {frozenset({x.id, y.id})}
        for ev in (x, y, x2):
            assert ev.id in c.dag
            assert c.managed.rejection(ev.id) == R.EQUIVOCATION
            assert ev.id not in c.state.messages
        for ev in pre_fork:
            assert c.managed.rejection(ev.id) is None
        # Other authors' events on either branch still enter and apply.
        for ev in (on_x, on_y):
            assert c.managed.rejection(ev.id) is None
            assert ev.id in c.state.messages
        assert pk("m") in c.state.members

    # The fork travels with the events: anyone syncing later holds the same proof and state.
    late = replica("late", owner, r.clock)
    assert _pairs(late, pk("m")) == {frozenset({x.id, y.id})}
    assert late.state_hash() == owner.state_hash()
    # The equivocator's client knows it, too: nothing more it signs will count.
    r.sync()
    with pytest.raises(NotPermitted) as exc:
        r["m"].author(SetProfile("innocent"), r.clock())
    assert exc.value.reason == R.EQUIVOCATION
    r.converged()


def test_arrival_order_of_branches_does_not_matter() -> None:
    r, x, y, x2 = _setup()
    base = history(r.owner)
    hashes = set()
    for order in ([x, x2, y], [y, x, x2], [x, y, x2], [y, x2, x]):
        c = Community(r.owner.identity, r.owner.server_id)
        c.receive(base, r.clock())
        for ev in order:
            c.receive([ev], r.clock())
        assert c.dag.fork_seq == {pk("m"): x.seq}
        assert len(c.managed.pending) == 0
        hashes.add(c.state_hash())
        assert_converged(c)
    assert len(hashes) == 1


def test_a_lower_fork_found_later_reaches_back() -> None:
    r, x, y, x2 = _setup()
    m = r["m"]
    # A second fork one seq higher, on branch X.
    m.receive([x, x2], r.clock())
    x2b = _sibling(m, x2, Message(r.channel, "X forks again"))
    owner = r.owner
    owner.receive([x, x2, x2b], r.clock())
    assert owner.dag.fork_seq == {pk("m"): x2.seq}
    assert owner.managed.rejection(x.id) is None  # below the only fork seen so far
    assert x.id in owner.state.messages
    owner.receive([y], r.clock())
    assert owner.dag.fork_seq == {pk("m"): x.seq}
    assert _pairs(owner, pk("m")) == {frozenset({x.id, y.id}), frozenset({x2.id, x2b.id})}
    for ev in (x, y, x2, x2b):
        assert owner.managed.rejection(ev.id) == R.EQUIVOCATION
    assert x.id not in owner.state.messages
    assert_converged(owner)


def test_fork_at_seq_one_never_makes_a_member() -> None:
    r = room("observer")
    first, link1 = make_invite(r.owner, r.clock, label="one", max_uses=1)
    second, link2 = make_invite(r.owner, r.clock, label="two", max_uses=1)
    r.sync()
    joiner = replica("j", r.owner, r.clock)
    me = pk("j")
    join1 = forge(
        joiner, joiner.identity, Join(first.id, sign_join(link1.seed, link1.server, first.id, me))
    )
    join2 = forge(
        joiner, joiner.identity, Join(second.id, sign_join(link2.seed, link2.server, second.id, me))
    )
    assert join1.seq == join2.seq == 1
    r.owner.receive([join1], r.clock())
    r["observer"].receive([join2], r.clock())
    assert me in r.owner.state.members
    assert me in r["observer"].state.members
    r.owner.receive([join2], r.clock())
    r["observer"].receive([join1], r.clock())
    assert_converged(r.owner, r["observer"])
    for c in (r.owner, r["observer"]):
        assert me not in c.state.members
        assert c.managed.rejection(join1.id) == c.managed.rejection(join2.id) == R.EQUIVOCATION
        # Neither join counted against its invite.
        assert c.state.invites[first.id].uses == c.state.invites[second.id].uses == 0

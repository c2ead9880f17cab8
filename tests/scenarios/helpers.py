"""Shared builders for the scenario tests: communities, members, invites, forged events, sync.

Everything is deterministic: identities come from ``willow_core.testing.identity(label)``,
invite seeds from ``seed_bytes``, and wall time from an explicit ``Clock`` (one second a tick).

Two ways to put an event into a community:

* ``Community.author`` (the honest client): signs, pre-checks with the replay rules and raises
  ``NotPermitted`` without consuming a seq;
* ``forge`` + ``inject`` (an attacker bypassing the client check): a correctly chained and signed
  event fed through ``receive``; the test then reads what *replay* decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from willow_core import (
    Community,
    Event,
    Identity,
    InviteLink,
    NotPermitted,
    RejectReason,
    materialize,
    sign_event,
    state_hash,
)
from willow_core.encoding import encode
from willow_core.event import EVENT_TAG, MAX_DEPS, ZERO_ID
from willow_core.invite import invite_key
from willow_core.kinds import (
    CreateChannel,
    CreateInvite,
    Join,
    KickMember,
    Kind,
    Message,
    Payload,
    Propose,
    Vote,
)
from willow_core.managed import Receipt
from willow_core.order import topological_order
from willow_core.testing import identity, seed_bytes

__all__ = [
    "T0",
    "Clock",
    "ident",
    "pk",
    "found",
    "history",
    "deliver",
    "sync",
    "replica",
    "make_invite",
    "admit",
    "kick",
    "channel",
    "post",
    "forge",
    "inject",
    "raw_wire",
    "assert_converged",
    "assert_fresh_equals_incremental",
    "Room",
    "room",
]

#: A fixed epoch for every scenario (2023-11-14), so timestamps are readable and stable.
T0 = 1_700_000_000_000


class Clock:
    """Scenario wall time: ``clock()`` advances one second and returns the new time."""

    def __init__(self, start: int = T0) -> None:
        self.ms = start

    def __call__(self) -> int:
        self.ms += 1_000
        return self.ms


def ident(label: str) -> Identity:
    return identity(label)


def pk(label: str) -> bytes:
    return identity(label).public_key


def found(clock: Clock, owner: str = "owner", name: str = "Scenario") -> Community:
    """A new community owned by ``owner``."""
    community, _ = Community.create(identity(owner), name, clock())
    return community


def history(c: Community) -> list[Event]:
    """Every event ``c`` holds, in the deterministic order (parents first)."""
    return topological_order(c.dag.events.values(), c.dag.depth)


def deliver(
    src: Community | Iterable[Event], dst: Community, clock: Clock, *, check: bool = True
) -> Receipt:
    """Hand ``dst`` every event of ``src`` (a community or a list of events)."""
    events = history(src) if isinstance(src, Community) else list(src)
    receipt = dst.receive(events, clock())
    if check:
        assert not receipt.refused, receipt.refused
        assert len(dst.managed.pending) == 0, "events left waiting for parents"
    return receipt


def sync(clock: Clock, *cs: Community) -> None:
    """Full mesh: every community ends up holding every event any of them holds."""
    for _ in range(2):
        for src in cs:
            for dst in cs:
                if src is not dst:
                    deliver(src, dst, clock)
    ids = {frozenset(c.dag.events) for c in cs}
    assert len(ids) == 1, "sync did not converge on one event set"


def replica(label: str, source: Community, clock: Clock) -> Community:
    """A new local view of ``source``'s community for identity ``label``, with its history."""
    c = Community(identity(label), source.server_id)
    deliver(source, c, clock)
    return c


def make_invite(
    c: Community,
    clock: Clock,
    *,
    label: str = "invite",
    max_uses: int = 0,
    expires_at: int = 0,
) -> tuple[Event, InviteLink]:
    """``c``'s identity creates an invite; returns the event and the link to hand out."""
    seed = seed_bytes(f"invite/{label}")
    key, _ = invite_key(seed)
    ev = c.author(CreateInvite(key, max_uses, expires_at), clock())
    return ev, InviteLink(c.server_id, ev.id, seed)


def admit(inviter: Community, label: str, clock: Clock) -> Community:
    """``label`` joins through a fresh invite from ``inviter``; both sides hold the join."""
    _, link = make_invite(inviter, clock, label=f"for/{label}", max_uses=1)
    joiner = replica(label, inviter, clock)
    joiner.join(link, clock())
    deliver(joiner, inviter, clock)
    assert pk(label) in inviter.state.members
    return joiner


def kick(c: Community, label: str, clock: Clock, *, ban: bool = False) -> Event:
    return c.author(Propose(KickMember(pk(label), ban)), clock())


def channel(c: Community, clock: Clock, name: str = "general") -> bytes:
    """A text channel created by ``c``'s identity; returns its id."""
    return c.author(CreateChannel(name), clock()).id


def post(c: Community, channel_id: bytes, body: str, clock: Clock) -> bytes:
    """A message by ``c``'s identity; returns its id."""
    return c.author(Message(channel_id, body), clock()).id


def forge(
    c: Community,
    who: Identity,
    payload: Payload,
    *,
    ts: int | None = None,
    deps: Sequence[bytes] | None = None,
    seq: int | None = None,
    prev: bytes | None = None,
) -> Event:
    """A correctly chained, signed event by ``who`` on top of ``c``'s DAG, unchecked by replay.

    Defaults: the next seq after ``who``'s head, every other author's tips as deps (plus the
    proposal of a vote or the invite of a join, as the DAG requires), and the latest parent
    time as ``ts``.
    """
    dag = c.dag
    head = dag.head(who.public_key)
    if seq is None:
        seq = 1 if head is None else head.seq + 1
    if prev is None:
        prev = ZERO_ID if head is None else head.id
    if deps is None:
        required = []
        if isinstance(payload, Vote):
            required.append(payload.proposal)
        elif isinstance(payload, Join):
            required.append(payload.invite)
        tips = [
            tip
            for author, tips in dag.tips.items()
            if author != who.public_key
            for tip in tips
            if tip != prev and tip not in required
        ]
        deps = (required + tips)[:MAX_DEPS]
    # Parents not in ``c`` (a branch built elsewhere) need an explicit ``ts``.
    parents = [dag.events[d] for d in (*deps, prev) if d in dag.events]
    if ts is None:
        ts = max(p.ts for p in parents)
    return sign_event(
        secret_key=who.secret_key,
        author=who.public_key,
        server=c.server_id,
        seq=seq,
        prev=prev,
        deps=list(deps),
        ts=ts,
        payload=payload,
    )


def inject(c: Community, ev: Event, clock: Clock) -> RejectReason | None:
    """Feed one forged event to ``c``; it must enter the DAG. Returns replay's verdict."""
    receipt = c.receive([ev], clock())
    assert not receipt.refused, receipt.refused
    assert ev.id in c.dag.events, "event was buffered, not inserted"
    return c.managed.rejection(ev.id)


def raw_wire(
    who: Identity,
    *,
    server: bytes | None,
    seq: int,
    prev: bytes,
    deps: Sequence[bytes],
    ts: int,
    kind: Kind,
    payload_raw: list[Any],
) -> bytes:
    """Wire bytes of an event signed over an arbitrary (possibly invalid) payload array.

    ``sign_event`` refuses to build invalid events, so this is how a test gets the bytes a
    hostile peer would send, to check that ``decode_event`` refuses them.
    """
    signable = encode(
        [EVENT_TAG, server, who.public_key, seq, prev, list(deps), ts, int(kind), payload_raw]
    )
    return encode([signable, who.sign(signable)])


def assert_fresh_equals_incremental(*cs: Community) -> None:
    """Each community's incrementally maintained state equals a fresh replay of its DAG."""
    for c in cs:
        assert c.state_hash() == state_hash(materialize(c.dag))


def assert_converged(*cs: Community) -> bytes:
    """All communities hold the same events and state, and it equals a fresh replay."""
    assert len({frozenset(c.dag.events) for c in cs}) == 1
    hashes = {c.state_hash() for c in cs}
    assert len(hashes) == 1, "replicas diverged"
    assert_fresh_equals_incremental(*cs)
    return hashes.pop()


@dataclass
class Room:
    """A community with an owner, some joined members, one channel and one owner message.

    ``peers`` maps labels ("owner" and each member) to that identity's own replica.
    """

    clock: Clock
    peers: dict[str, Community]
    channel: bytes
    message: bytes

    @property
    def owner(self) -> Community:
        return self.peers["owner"]

    def __getitem__(self, label: str) -> Community:
        return self.peers[label]

    def add(self, label: str) -> Community:
        """Admit ``label`` through a fresh owner invite and sync everyone."""
        self.peers[label] = admit(self.owner, label, self.clock)
        self.sync()
        return self.peers[label]

    def outsider(self, label: str) -> Community:
        """A replica for someone who holds the history but never joined."""
        self.peers[label] = replica(label, self.owner, self.clock)
        return self.peers[label]

    def sync(self) -> None:
        sync(self.clock, *self.peers.values())

    def converged(self) -> bytes:
        self.sync()
        return assert_converged(*self.peers.values())

    def do(self, label: str, payload: Payload) -> Event:
        """``label`` authors ``payload`` honestly; every replica must apply it."""
        ev = self.peers[label].author(payload, self.clock())
        self.sync()
        for c in self.peers.values():
            assert c.managed.rejection(ev.id) is None, c.managed.rejection(ev.id)
        return ev

    def refused(self, label: str, payload: Payload, reason: RejectReason) -> Event:
        """``label`` cannot author ``payload``: the client refuses with ``reason`` without
        consuming a seq, and the same event forged past the client is rejected by replay on
        every replica with ``reason``. Returns the forged event."""
        c = self.peers[label]
        me = c.identity.public_key
        head = c.dag.head(me)
        with pytest.raises(NotPermitted) as exc:
            c.author(payload, self.clock())
        assert exc.value.reason == reason
        assert c.dag.head(me) == head, "a refused action consumed a seq"
        return self.forced(label, payload, reason)

    def forced(self, label: str, payload: Payload, reason: RejectReason | None) -> Event:
        """Forge ``payload`` by ``label`` past the client; every replica must give ``reason``."""
        c = self.peers[label]
        ev = forge(c, c.identity, payload)
        assert inject(c, ev, self.clock) == reason
        self.sync()
        for other in self.peers.values():
            assert other.managed.rejection(ev.id) == reason
        assert_converged(*self.peers.values())
        return ev


def room(*labels: str) -> Room:
    """An owner's community with ``labels`` joined, a channel "general" and a welcome message."""
    clock = Clock()
    owner = found(clock)
    channel_id = channel(owner, clock)
    message = post(owner, channel_id, "welcome", clock)
    r = Room(clock, {"owner": owner}, channel_id, message)
    for label in labels:
        r.add(label)
    return r

"""The send path of ``Community``: ``author`` = ``build_signed`` + ``apply_own``.

``build_signed`` signs our next event without touching the log or the state; ``apply_own``
judges it with the replay rules and applies it. Together they make exactly the events the
single-step ``author`` made before they were split (kept here as ``_reference_author``, over the
checked signable construction): the same scripted conversations, run once each way with the
same entropy and clock, give byte-identical histories.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable, Iterator

import pytest

from willow_core.client import Community
from willow_core.errors import LocalError, NotPermitted
from willow_core.event import Event, _checked_signable, _wire, decode_event
from willow_core.invite import InviteLink, invite_key
from willow_core.kinds import (
    CreateChannel,
    CreateInvite,
    CreateSealedChannel,
    GrantAdmin,
    Join,
    Message,
    Payload,
    Propose,
    Reaction,
    SealedMessage,
    Vote,
)
from willow_core.state import state_hash
from willow_core.testing import identity, seed_bytes

T0 = 1_760_000_000_000
PEOPLE = ("owner", "bob", "carol", "dave")


def _reference_author(c: Community, payload: Payload, wall_ms: int) -> Event:
    """``Community.author`` as one step, as it was before the split (signing included)."""
    if c.managed.state is None:
        raise LocalError("the community's history has not been received yet")
    me = c.identity.public_key
    head = c.dag.head(me)
    required: tuple[bytes, ...] = ()
    if isinstance(payload, Vote):
        required = (payload.proposal,)
    elif isinstance(payload, Join):
        required = (payload.invite,)
    else:
        required = c._key_event(payload)
    deps = c._deps(required)
    if head is not None:
        deps = [d for d in deps if d != head.id]
    parents = [c.dag.events[d] for d in deps]
    if head is not None:
        parents.append(head)
    ts = c.clock.now(wall_ms).ms
    ts = max([ts, *(p.ts for p in parents)])
    signable, _, _, _ = _checked_signable(
        c.server_id,
        me,
        1 if head is None else head.seq + 1,
        head.id if head is not None else bytes(32),
        deps,
        ts,
        payload,
    )
    ev = decode_event(_wire(signable, c.identity.sign(signable)))
    reason = c.managed.try_apply(ev)
    if reason is not None:
        raise NotPermitted(reason)
    held = len(c.dag.events)
    receipt = c.managed.receive([ev], wall_ms, verified=True)
    if receipt.refused:
        raise LocalError(f"own event refused: {receipt.refused[0][1]}")
    for dep in deps:
        c._covered[c.dag.events[dep].author] = dep
    settled = c._deps_complete and len(c.dag.events) == held + 1
    c._deps_settled = held + 1 if settled else -1
    return ev


def _entropy(label: str) -> Callable[[int], bytes]:
    counter = itertools.count()

    def draw(n: int) -> bytes:
        assert n <= 32
        return hashlib.sha256(f"{label}/{next(counter)}".encode()).digest()[:n]

    return draw


class _World:
    """Four people in one community with a plain and a sealed channel, acting by a script."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.entropy = _entropy(f"send/{seed}")
        self.ms = T0
        owner, _ = Community.create(identity("send/owner"), "send", self.tick())
        self.people = {"owner": owner}
        invite_seed = seed_bytes("send/invite")
        invite = owner.author(CreateInvite(invite_key(invite_seed)[0], 0, 0), self.tick())
        link = InviteLink(owner.server_id, invite.id, invite_seed)
        self.plain = owner.author(CreateChannel("general"), self.tick()).id
        self.sealed = owner.author(CreateSealedChannel("secret"), self.tick()).id
        for name in PEOPLE[1:]:
            joiner = Community(identity(f"send/{name}"), owner.server_id)
            self.deliver(owner, joiner)
            joiner.join(link, self.tick())
            self.people[name] = joiner
        self.proposal: bytes | None = None
        self.messages: list[bytes] = []
        self.sync_all()
        for _ in range(4):  # keys published, the first epoch shared with everyone
            for c in self.people.values():
                c.key_work(self.tick(), self.entropy)
            self.sync_all()
            self.ms += 10_000

    def tick(self) -> int:
        self.ms += 1_000
        return self.ms

    def deliver(self, src: Community, dst: Community) -> None:
        dst.receive(list(src.dag.events.values()), self.tick())

    def sync_all(self) -> None:
        for src, dst in itertools.permutations(self.people.values(), 2):
            self.deliver(src, dst)

    def act(self) -> None:
        """One scripted step: someone acts on their own replica, or two replicas sync."""
        rng = self.rng
        name = rng.choice(PEOPLE)
        c = self.people[name]
        step = rng.choice(["message", "sealed", "sealed", "react", "vote", "sync", "channel"])
        wall = self.tick()
        if step == "sync":
            self.deliver(c, self.people[rng.choice(PEOPLE)])
            return
        payload: Payload
        if step == "message":
            payload = Message(self.plain, f"{name} says {rng.random()}")
        elif step == "sealed":
            try:
                _, box = c.seal(
                    self.sealed, f"{name} seals {rng.random()}", "message", wall, self.entropy
                )
            except LocalError:
                return  # the epoch has not reached this replica yet
            payload = SealedMessage(self.sealed, box)
        elif step == "react":
            known = [m for m in self.messages if m in c.state.messages]
            if not known:
                return
            payload = Reaction(rng.choice(known), rng.choice(["👍", "🎉", "ok"]))
        elif step == "vote":
            if self.proposal is None or self.proposal not in c.dag.events:
                payload = Propose(GrantAdmin(identity("send/bob").public_key))
            else:
                payload = Vote(self.proposal, True)
        else:
            payload = CreateChannel(f"room-{rng.randrange(100)}")
        try:
            ev = c.author(payload, wall)
        except NotPermitted:
            return
        if isinstance(payload, Propose):
            self.proposal = ev.id
        if isinstance(payload, Message | SealedMessage):
            self.messages.append(ev.id)

    def history(self) -> list[bytes]:
        self.sync_all()
        return sorted(ev.wire for ev in self.people["owner"].dag.events.values())


def _run(seed: int, steps: int) -> list[bytes]:
    world = _World(seed)
    for _ in range(steps):
        world.act()
    return world.history()


@pytest.mark.parametrize("seed", range(6))
def test_author_makes_the_events_it_made_as_one_step(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    split = _run(seed, 60)
    with monkeypatch.context() as patch:
        patch.setattr(Community, "author", _reference_author)
        whole = _run(seed, 60)
    assert split == whole
    assert len(split) > 40  # the script did author things


def _sender() -> tuple[_World, Community]:
    world = _World(99)
    return world, world.people["bob"]


def _seal_one(world: _World, c: Community, text: str, wall: int) -> SealedMessage:
    key_events, box = c.seal(world.sealed, text, "message", wall, world.entropy)
    assert not key_events
    return SealedMessage(world.sealed, box)


def test_build_signed_leaves_log_and_state_alone() -> None:
    world, bob = _sender()
    events, state = dict(bob.dag.events), state_hash(bob.state)
    wall = world.tick()
    first = bob.build_signed(_seal_one(world, bob, "one", wall), wall)
    second = bob.build_signed(_seal_one(world, bob, "two", wall), wall)
    assert bob.dag.events == events
    assert state_hash(bob.state) == state
    assert first.seq == second.seq  # the log does not hold the first: the same seq again
    assert decode_event(first.wire) == first


def test_apply_own_makes_the_event_ours() -> None:
    world, bob = _sender()
    wall = world.tick()
    ev = bob.build_signed(_seal_one(world, bob, "hello", wall), wall)
    assert bob.apply_own(ev, wall) is ev
    assert bob.dag.head(bob.identity.public_key) == ev
    assert ev.id in bob.state.messages
    nxt = bob.build_signed(Message(world.plain, "next"), world.tick())
    assert (nxt.seq, nxt.prev) == (ev.seq + 1, ev.id)


def test_apply_own_refuses_what_replay_would_refuse() -> None:
    world, bob = _sender()
    before = state_hash(bob.state)
    held = len(bob.dag.events)
    ev = bob.build_signed(CreateChannel("not bob's to make"), world.tick())
    with pytest.raises(NotPermitted):
        bob.apply_own(ev, world.tick())
    assert state_hash(bob.state) == before
    assert len(bob.dag.events) == held


def test_apply_own_of_an_earlier_build_records_its_deps() -> None:
    """``apply_own`` takes the deps from the event when it is not the latest build."""
    world, bob = _sender()
    carol = world.people["carol"]
    carol.author(Message(world.plain, "from carol"), world.tick())
    world.deliver(carol, bob)
    wall = world.tick()
    ev = bob.build_signed(Message(world.plain, "first"), wall)
    bob.build_signed(Message(world.plain, "discarded"), wall)
    bob.apply_own(ev, wall)
    assert bob._covered[carol.identity.public_key] in ev.deps


def _iter_authored(world: _World) -> Iterator[Event]:
    yield from world.people["owner"].dag.events.values()


def test_every_built_event_decodes_to_itself() -> None:
    world = _World(7)
    for _ in range(40):
        world.act()
    for ev in _iter_authored(world):
        assert decode_event(ev.wire) == ev

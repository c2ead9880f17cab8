"""Hypothesis strategies for random multi-author community histories with concurrent branches.

A history is built the way real peers build one: an owner founds a community with a channel and
an open invite, 3-6 other identities join, 0-2 guests wait with empty replicas (they join
mid-history, often racing for the same limited invite), and then a random program runs in which
every step picks an author and an action and the author acts *on its own replica* (one
``Community`` per identity). Sync steps deliver a random subset of one replica's events to
another, in a random order, so authors keep acting without having seen each other's latest
events: that is what creates concurrent branches (and late events for whoever replays the
union). ``REMOVAL_HEAVY`` weights the program towards kicks, demotions and revocations, whose
unseen concurrent events the DAG orders after them.

Actions a replica's current state refuses raise ``NotPermitted`` and are skipped (nothing is
signed), exactly as a client would behave. Actions a *later* replay refuses (an author acting on
a stale view: kicked but unaware, a role revoked concurrently...) are kept: they are the
interesting part.

The result is the union of every replica's events, in creation order (a causal order, since an
author only names events its replica already holds), plus what a test needs to extend it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from hypothesis import strategies as st

from willow_core.client import Community
from willow_core.dag import EventDag
from willow_core.errors import InsertError, NotPermitted
from willow_core.event import Event
from willow_core.identity import Identity
from willow_core.invite import InviteLink, invite_key
from willow_core.kinds import (
    AssignRole,
    CreateChannel,
    CreateInvite,
    CreateRole,
    CreateThread,
    DeleteChannel,
    DeleteMessage,
    EditMessage,
    GrantAdmin,
    GrantPermission,
    KickMember,
    Leave,
    Message,
    MuteGrove,
    OverwriteTarget,
    Payload,
    PinMessage,
    Propose,
    Reaction,
    RemoveReaction,
    RenameChannel,
    RevokeAdmin,
    RevokeInvite,
    RevokePermission,
    SetChannelOverwrite,
    SetPermission,
    SetProfile,
    UnassignRole,
    UnpinMessage,
    Vote,
)
from willow_core.permissions import Permission
from willow_core.testing import identity, seed_bytes

__all__ = [
    "START_MS",
    "History",
    "histories",
    "ACTIONS",
    "REMOVAL_HEAVY",
    "cached_identity",
    "fresh_dag",
    "causal_order",
    "random_linear_extension",
    "children_of",
    "examples",
]

T = TypeVar("T")

#: Wall clock at the start of every history (any fixed value works; the core has no clock).
START_MS = 1_700_000_000_000
MIN_EVENTS = 20
MAX_EVENTS = 150
EMOJI = ("👍", "🎉", "x", ":ok:")
GRANTABLE = (
    Permission.MANAGE_MESSAGES,
    Permission.MANAGE_CHANNELS,
    Permission.MANAGE_ROLES,
    Permission.SEND_MESSAGES,
    Permission.ADD_REACTIONS,
    Permission.CREATE_THREADS,
)

#: Step kinds; repetition is weight. Hypothesis shrinks towards the front of the tuple.
ACTIONS: tuple[str, ...] = (
    *("message",) * 6,
    *("sync",) * 5,
    *("reply",) * 2,
    *("edit",) * 2,
    *("react",) * 3,
    "unreact",
    *("delete",) * 2,
    "create_channel",
    "rename_channel",
    "delete_channel",
    "role",
    "set_permission",
    "assign_role",
    "unassign_role",
    "grant_permission",
    "overwrite",
    *("pin",) * 2,
    "unpin",
    "kick",
    *("grant_admin",) * 2,
    *("admin_propose",) * 2,
    *("vote",) * 2,
    *("leave",) * 1,
    *("rejoin",) * 2,
    "invite",
    "revoke_invite",
    "revoke_permission",
    "thread",
    "profile",
    "broadcast",
)

#: Weighted towards removals (kicks, demotions, revocations, unassignments, member overwrites,
#: limited invites and the joins racing for them), which reorder the events they did not see.
REMOVAL_HEAVY: tuple[str, ...] = (
    *("message",) * 3,
    *("sync",) * 4,
    "react",
    "grant_permission",
    *("revoke_permission",) * 2,
    "role",
    *("unassign_role",) * 2,
    *("overwrite",) * 2,
    *("kick",) * 2,
    *("grant_admin",) * 2,
    *("admin_propose",) * 3,
    *("vote",) * 3,
    *("rejoin",) * 3,
    *("invite",) * 2,
    *("revoke_invite",) * 2,
    "leave",
    "broadcast",
)


#: Multiplies every property test's example count, for a longer soak:
#: ``WILLOW_PROPERTY_SCALE=20 .venv/bin/pytest tests/property``.
SCALE = max(1, int(os.environ.get("WILLOW_PROPERTY_SCALE", "1")))


def examples(n: int) -> int:
    """``n`` examples, times ``WILLOW_PROPERTY_SCALE``."""
    return n * SCALE


@cache
def cached_identity(label: str) -> Identity:
    """``willow_core.testing.identity``, memoized (key derivation is the costly part)."""
    return identity(label)


@dataclass
class History:
    """A finished random history: every event any replica holds, in creation order."""

    server_id: bytes
    owner: Identity
    #: everyone but the owner: the initial joiners, then the guests
    members: list[Identity]
    replicas: list[Community]
    link: InviteLink
    general: bytes
    events: list[Event] = field(default_factory=list)
    #: every invite created so far (``link``, the open one, first; later ones are limited)
    links: list[InviteLink] = field(default_factory=list)
    wall_ms: int = START_MS
    steps: list[str] = field(default_factory=list)

    @property
    def genesis(self) -> Event:
        return self.events[0]

    @property
    def identities(self) -> list[Identity]:
        return [self.owner, *self.members]

    def union(self) -> dict[bytes, Event]:
        """Every event in any replica's DAG (each event is at least in its author's)."""
        out: dict[bytes, Event] = {}
        for replica in self.replicas:
            out.update(replica.dag.events)
        return out

    def __repr__(self) -> str:  # keeps Hypothesis' falsifying-example output readable
        steps = " ".join(self.steps)
        if len(steps) > 2_000:
            steps = steps[:1_000] + " ... " + steps[-1_000:]
        return f"History({len(self.events)} events, {len(self.members)} members, steps: {steps})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis' pretty printer would otherwise print every field of the dataclass."""
        printer.text(repr(self))


def _pick(draw: st.DrawFn, items: Sequence[T]) -> T | None:
    if not items:
        return None
    return items[draw(st.integers(0, len(items) - 1))]


def _act(history: History, replica: Community, payload: Payload) -> Event | None:
    """Author ``payload`` on ``replica``; None if its current state refuses it."""
    try:
        ev = replica.author(payload, history.wall_ms)
    except NotPermitted:
        return None
    history.events.append(ev)
    return ev


def _deliver(dst: Community, events: list[Event], wall_ms: int) -> None:
    receipt = dst.receive(events, wall_ms)
    assert not receipt.refused, receipt.refused  # honest events are never refused


@st.composite
def histories(
    draw: st.DrawFn,
    *,
    min_members: int = 3,
    max_members: int = 6,
    min_events: int = MIN_EVENTS,
    max_events: int = MAX_EVENTS,
    max_steps: int = 400,
    actions: tuple[str, ...] = ACTIONS,
) -> History:
    """A random multi-author history of ``min_events..max_events`` events.

    A step may author up to three events (a role, its permission, its assignment), so the
    size can overshoot its drawn target by two; the target leaves room for that.
    """
    wall = START_MS
    owner = cached_identity("owner")
    owner_replica, genesis = Community.create(owner, "willow", wall)
    server = genesis.id
    n_members = draw(st.integers(min_members, max_members))
    members = [cached_identity(f"member-{i}") for i in range(n_members)]
    # Guests start with an empty replica and join mid-history, often through limited invites
    # (concurrent joins racing for the last use of an invite).
    guests = [cached_identity(f"guest-{i}") for i in range(draw(st.integers(0, 2)))]
    seed = seed_bytes(f"invite/{server.hex()}")
    history = History(
        server_id=server,
        owner=owner,
        members=members,
        replicas=[owner_replica],
        link=InviteLink(server, bytes(32), seed),
        general=bytes(32),
        events=[genesis],
        wall_ms=wall,
    )
    general = _act(history, owner_replica, CreateChannel("general"))
    invite = _act(history, owner_replica, CreateInvite(invite_key(seed)[0]))
    assert general is not None
    assert invite is not None
    history.general = general.id
    history.link = InviteLink(server, invite.id, seed)
    history.links.append(history.link)
    for ident in members:
        replica = Community(ident, server)
        # Joiners start from the owner's view at the time they got the link.
        _deliver(replica, list(history.events[:3]), history.wall_ms)
        history.wall_ms += draw(st.integers(0, 50))
        history.events.append(replica.join(history.link, history.wall_ms))
        history.replicas.append(replica)
    history.members += guests
    history.replicas += [Community(ident, server) for ident in guests]

    # Draw the size, then act until it is reached: sizes spread over the whole range.
    target = draw(st.integers(min_events, max_events - 2))
    step = 0
    while len(history.events) < target:
        step += 1
        history.wall_ms += draw(st.integers(0, 2_000))
        action = draw(st.sampled_from(actions))
        who = draw(st.integers(0, len(history.replicas) - 1))
        if step > max_steps:  # topping up: always permitted for anyone (the owner is ready)
            action, who = "mute", 0
        if not history.replicas[who].ready:  # a guest without the history yet
            action = "sync"
        history.steps.append(f"{who}:{action}")
        _STEP[action](draw, history, history.replicas[who])

    union = history.union()
    assert set(union) == {ev.id for ev in history.events}
    return history


# --- steps --------------------------------------------------------------------------------


def _channels(replica: Community) -> list[bytes]:
    return sorted(replica.state.channels)


def _live_messages(replica: Community, author: bytes | None = None) -> list[bytes]:
    return sorted(
        m.id
        for m in replica.state.messages.values()
        if not m.deleted and (author is None or m.author == author)
    )


def _step_message(draw: st.DrawFn, h: History, r: Community) -> None:
    channel = _pick(draw, _channels(r))
    if channel is None:
        return
    thread = None
    if draw(st.integers(0, 3)) == 0:
        threads = sorted(t.id for t in r.state.threads.values() if t.channel == channel)
        thread = _pick(draw, threads)
    _act(h, r, Message(channel, f"m{len(h.events)}", thread))


def _step_reply(draw: st.DrawFn, h: History, r: Community) -> None:
    target = _pick(draw, _live_messages(r))
    if target is None:
        return
    m = r.state.messages[target]
    _act(h, r, Message(m.channel, f"re{len(h.events)}", m.thread, target))


def _step_edit(draw: st.DrawFn, h: History, r: Community) -> None:
    target = _pick(draw, _live_messages(r, r.identity.public_key))
    if target is not None:
        _act(h, r, EditMessage(target, f"edit{len(h.events)}"))


def _step_delete(draw: st.DrawFn, h: History, r: Community) -> None:
    mine = draw(st.booleans())
    target = _pick(draw, _live_messages(r, r.identity.public_key if mine else None))
    if target is not None:
        _act(h, r, DeleteMessage(target))


def _step_react(draw: st.DrawFn, h: History, r: Community) -> None:
    target = _pick(draw, _live_messages(r))
    if target is not None:
        _act(h, r, Reaction(target, draw(st.sampled_from(EMOJI))))


def _step_unreact(draw: st.DrawFn, h: History, r: Community) -> None:
    me = r.identity.public_key
    mine = sorted(
        (m.id, emoji)
        for m in r.state.messages.values()
        for emoji, peers in m.reactions.items()
        if me in peers
    )
    choice = _pick(draw, mine)
    if choice is not None:
        _act(h, r, RemoveReaction(*choice))


def _step_create_channel(draw: st.DrawFn, h: History, r: Community) -> None:
    _act(h, r, CreateChannel(f"c{len(h.events)}"))


def _step_rename_channel(draw: st.DrawFn, h: History, r: Community) -> None:
    channel = _pick(draw, _channels(r))
    if channel is not None:
        _act(h, r, RenameChannel(channel, f"renamed{len(h.events)}", "topic"))


def _step_delete_channel(draw: st.DrawFn, h: History, r: Community) -> None:
    channel = _pick(draw, _channels(r))
    if channel is not None and len(r.state.channels) > 1:
        _act(h, r, DeleteChannel(channel))


def _members(r: Community) -> list[bytes]:
    return sorted(r.state.members)


def _roles(r: Community) -> list[bytes]:
    return sorted(role for role in r.state.roles if role != r.server_id)


def _step_role(draw: st.DrawFn, h: History, r: Community) -> None:
    """Create a role, give it a permission, assign it: three events if all are permitted."""
    role = _act(h, r, CreateRole(f"r{len(h.events)}", draw(st.integers(0, 0xFFFFFF))))
    if role is None:
        return
    _act(h, r, SetPermission(role.id, draw(st.sampled_from(GRANTABLE)), True))
    peer = _pick(draw, _members(r))
    if peer is not None:
        _act(h, r, AssignRole(peer, role.id))


def _step_set_permission(draw: st.DrawFn, h: History, r: Community) -> None:
    role = _pick(draw, _roles(r))
    if role is not None:
        perm = draw(st.sampled_from(GRANTABLE))
        _act(h, r, SetPermission(role, perm, draw(st.booleans())))


def _step_assign_role(draw: st.DrawFn, h: History, r: Community) -> None:
    role = _pick(draw, _roles(r))
    peer = _pick(draw, _members(r))
    if role is not None and peer is not None:
        _act(h, r, AssignRole(peer, role))


def _step_unassign_role(draw: st.DrawFn, h: History, r: Community) -> None:
    pairs = sorted((m.peer, role) for m in r.state.members.values() for role in m.roles)
    choice = _pick(draw, pairs)
    if choice is not None:
        _act(h, r, UnassignRole(*choice))


def _step_grant_permission(draw: st.DrawFn, h: History, r: Community) -> None:
    peer = _pick(draw, _members(r))
    if peer is not None:
        _act(h, r, GrantPermission(peer, draw(st.sampled_from(GRANTABLE))))


def _step_overwrite(draw: st.DrawFn, h: History, r: Community) -> None:
    channel = _pick(draw, _channels(r))
    if channel is None:
        return
    if draw(st.booleans()):
        kind, target = OverwriteTarget.ROLE, _pick(draw, sorted(r.state.roles))
    else:
        kind, target = OverwriteTarget.MEMBER, _pick(draw, _members(r))
    if target is None:
        return
    perm = draw(st.sampled_from(GRANTABLE))
    allow, deny = (
        (frozenset({perm}), frozenset())
        if draw(st.booleans())
        else (
            frozenset(),
            frozenset({perm}),
        )
    )
    _act(h, r, SetChannelOverwrite(channel, kind, target, allow, deny))


def _step_pin(draw: st.DrawFn, h: History, r: Community) -> None:
    target = _pick(draw, _live_messages(r))
    if target is not None:
        _act(h, r, PinMessage(r.state.messages[target].channel, target))


def _step_unpin(draw: st.DrawFn, h: History, r: Community) -> None:
    pins = sorted((c.id, m) for c in r.state.channels.values() for m in c.pins)
    choice = _pick(draw, pins)
    if choice is not None:
        _act(h, r, UnpinMessage(*choice))


def _others(h: History, r: Community) -> list[bytes]:
    return [i.public_key for i in h.identities if i.public_key != r.identity.public_key]


def _step_kick(draw: st.DrawFn, h: History, r: Community) -> None:
    """The owner proposes a kick (owner override: it executes at once)."""
    owner_replica = h.replicas[0]
    peer = _pick(draw, _others(h, owner_replica))
    if peer is not None:
        ban = draw(st.integers(0, 3)) == 0
        _act(h, owner_replica, Propose(KickMember(peer, ban)))


def _step_grant_admin(draw: st.DrawFn, h: History, r: Community) -> None:
    owner_replica = h.replicas[0]
    peer = _pick(draw, _others(h, owner_replica))
    if peer is not None:
        _act(h, owner_replica, Propose(GrantAdmin(peer)))


def _admin_replicas(h: History) -> list[Community]:
    """Replicas whose own view says they are admins (governance steps pick among these)."""
    return [r for r in h.replicas if r.ready and r.identity.public_key in r.state.admins]


def _step_admin_propose(draw: st.DrawFn, h: History, r: Community) -> None:
    """A non-owner admin proposes a kick, a new admin or a demotion; with 2+ admins it waits
    for votes."""
    admins = [a for a in _admin_replicas(h) if a is not h.replicas[0]]
    proposer = _pick(draw, admins) or r
    if not proposer.ready:
        return
    peer = _pick(draw, _others(h, proposer))
    if peer is None:
        return
    kind = draw(st.integers(0, 2))
    action = (KickMember(peer, False), GrantAdmin(peer), RevokeAdmin(peer))[kind]
    _act(h, proposer, Propose(action))


def _step_vote(draw: st.DrawFn, h: History, r: Community) -> None:
    voters = [a for a in _admin_replicas(h) if a.state.proposals] or [r]
    voter = _pick(draw, voters)
    assert voter is not None
    proposal = _pick(draw, sorted(voter.state.proposals))
    if proposal is not None:
        _act(h, voter, Vote(proposal, draw(st.booleans())))


def _step_leave(draw: st.DrawFn, h: History, r: Community) -> None:
    _act(h, r, Leave())


def _step_rejoin(draw: st.DrawFn, h: History, r: Community) -> None:
    """Join (again) with any invite this replica knows: the open one or a limited one."""
    if r.identity.public_key in r.state.members:
        return
    known = [link for link in h.links if link.invite in r.dag]
    # Half the time the newest invite: guests then race for the same limited one.
    newest: bool = draw(st.booleans())
    link: InviteLink | None
    if known and newest:
        link = known[-1]
    else:
        link = _pick(draw, known)
    if link is None:
        return
    try:
        ev = r.join(link, h.wall_ms)
    except NotPermitted:
        return
    h.events.append(ev)


def _step_invite(draw: st.DrawFn, h: History, r: Community) -> None:
    """A limited invite: 1-2 uses, sometimes expiring soon."""
    seed = seed_bytes(f"invite/{h.server_id.hex()}/{len(h.links)}")
    expires = h.wall_ms + draw(st.integers(1, 20_000)) if draw(st.booleans()) else 0
    ev = _act(h, r, CreateInvite(invite_key(seed)[0], draw(st.integers(1, 2)), expires))
    if ev is not None:
        h.links.append(InviteLink(h.server_id, ev.id, seed))


def _step_revoke_invite(draw: st.DrawFn, h: History, r: Community) -> None:
    live = sorted(i.id for i in r.state.invites.values() if not i.revoked)
    invite = _pick(draw, live)
    if invite is not None:
        _act(h, r, RevokeInvite(invite))


def _step_revoke_permission(draw: st.DrawFn, h: History, r: Community) -> None:
    grants = sorted((peer, p) for peer, ps in r.state.peer_permissions.items() for p in ps)
    choice = _pick(draw, grants)
    if choice is not None:
        _act(h, r, RevokePermission(*choice))


def _step_thread(draw: st.DrawFn, h: History, r: Community) -> None:
    root = _pick(draw, _live_messages(r))
    if root is not None:
        m = r.state.messages[root]
        _act(h, r, CreateThread(m.channel, root, f"t{len(h.events)}"))


def _step_profile(draw: st.DrawFn, h: History, r: Community) -> None:
    _act(h, r, SetProfile(f"name{len(h.events)}"))


def _step_mute(draw: st.DrawFn, h: History, r: Community) -> None:
    _act(h, r, MuteGrove(r.identity.public_key not in r.state.grove_mutes))


def _step_sync(draw: st.DrawFn, h: History, r: Community) -> None:
    """Deliver a random subset of another replica's events to ``r``, in a random order.

    Subsets need not be closed under ancestry: whatever lacks a parent waits in ``r``'s pending
    buffer, as with a real lossy network.
    """
    src = h.replicas[draw(st.integers(0, len(h.replicas) - 1))]
    if src is r:
        return
    mode = draw(st.sampled_from(("all", "subset", "author")))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    missing = [ev for ev in src.dag.events.values() if ev.id not in r.dag]
    if mode == "subset":
        missing = [ev for ev in missing if rng.random() < 0.5]
    elif mode == "author" and missing:
        author = rng.choice(missing).author
        missing = [ev for ev in missing if ev.author == author]
    rng.shuffle(missing)
    _deliver(r, missing, h.wall_ms)


def _step_broadcast(draw: st.DrawFn, h: History, r: Community) -> None:
    """``r`` sends everything it has to every other replica (a full gossip round from one)."""
    events = list(r.dag.events.values())
    for other in h.replicas:
        if other is not r:
            _deliver(other, [ev for ev in events if ev.id not in other.dag], h.wall_ms)


_STEP: dict[str, Callable[[st.DrawFn, History, Community], None]] = {
    "message": _step_message,
    "sync": _step_sync,
    "reply": _step_reply,
    "edit": _step_edit,
    "react": _step_react,
    "unreact": _step_unreact,
    "delete": _step_delete,
    "create_channel": _step_create_channel,
    "rename_channel": _step_rename_channel,
    "delete_channel": _step_delete_channel,
    "role": _step_role,
    "set_permission": _step_set_permission,
    "assign_role": _step_assign_role,
    "unassign_role": _step_unassign_role,
    "grant_permission": _step_grant_permission,
    "overwrite": _step_overwrite,
    "pin": _step_pin,
    "unpin": _step_unpin,
    "kick": _step_kick,
    "grant_admin": _step_grant_admin,
    "admin_propose": _step_admin_propose,
    "vote": _step_vote,
    "leave": _step_leave,
    "rejoin": _step_rejoin,
    "invite": _step_invite,
    "revoke_invite": _step_revoke_invite,
    "revoke_permission": _step_revoke_permission,
    "thread": _step_thread,
    "profile": _step_profile,
    "mute": _step_mute,
    "broadcast": _step_broadcast,
}
assert set(ACTIONS) | set(REMOVAL_HEAVY) <= set(_STEP)


# --- helpers for tests over a finished history ------------------------------------------------


def fresh_dag(server_id: bytes, events: Sequence[Event]) -> EventDag:
    """A plain ``EventDag`` holding ``events`` (inserted parents-first, whatever the input order).

    Uses only ``EventDag.check``/``add`` (no ``ManagedDag``), so it is an independent reference.
    """
    dag = EventDag(server_id)
    waiting = list(events)
    while waiting:
        later: list[Event] = []
        for ev in waiting:
            if ev.id in dag:
                continue
            try:
                missing = dag.check(ev, verified=True)
            except InsertError:
                continue  # refused by a DAG rule: never enters (same as ManagedDag)
            if missing:
                later.append(ev)
            else:
                dag.add(ev)
        if len(later) == len(waiting):
            break  # the rest can never enter (parents absent for good)
        waiting = later
    dag.settle()  # removals order what they did not see after them
    return dag


def children_of(events: Sequence[Event]) -> dict[bytes, list[bytes]]:
    """Event id -> ids of the events that name it as a parent."""
    out: dict[bytes, list[bytes]] = {ev.id: [] for ev in events}
    for ev in events:
        for parent in ev.parents:
            out.setdefault(parent, []).append(ev.id)
    return out


def causal_order(events: Sequence[Event]) -> list[Event]:
    """``events`` (closed under ancestry) parents-first, keeping the given order where possible."""
    return random_linear_extension(events, None)


def random_linear_extension(events: Sequence[Event], rng: random.Random | None) -> list[Event]:
    """A uniformly chosen-at-each-step ready event, until all are placed (Kahn's algorithm)."""
    by_id = {ev.id: ev for ev in events}
    blocking = {ev.id: sum(1 for p in ev.parents if p in by_id) for ev in events}
    children = children_of(events)
    ready = [ev.id for ev in events if blocking[ev.id] == 0]
    out: list[Event] = []
    while ready:
        if rng is None:
            event_id = ready.pop(0)
        else:
            event_id = ready.pop(rng.randrange(len(ready)))
        out.append(by_id[event_id])
        for child in children.get(event_id, ()):
            if child in blocking:
                blocking[child] -= 1
                if blocking[child] == 0:
                    ready.append(child)
    assert len(out) == len(events), "events are not closed under ancestry"
    return out

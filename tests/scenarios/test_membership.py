"""Membership scenarios: invites and joins enforced by replay, kicks, bans and leaving.

Invites are events (D5): replay enforces max uses, expiry, revocation and bans, so the inviter
need not be online. A Join must depend on its invite and carry the invite key's signature over
the joiner's key (checked at insert); everything else is a replay verdict.
"""

from __future__ import annotations

import pytest

from willow_core import Community, Event, InviteLink, NotPermitted, RejectReason
from willow_core.invite import sign_join
from willow_core.kinds import (
    EditMessage,
    GrantPermission,
    Join,
    KickMember,
    Leave,
    Message,
    Payload,
    ProfileDelta,
    Propose,
    Reaction,
    RemoveReaction,
    RevokeInvite,
    SetProfile,
    UnbanMember,
    UpdateProfile,
)
from willow_core.permissions import Permission
from willow_core.testing import seed_bytes

from .helpers import (
    Room,
    assert_converged,
    forge,
    ident,
    inject,
    make_invite,
    pk,
    replica,
    room,
)

R = RejectReason


def _join_event(c: Community, link: InviteLink, *, ts: int | None = None) -> Event:
    """A Join by ``c``'s identity with a valid proof, built past the client's check."""
    me = c.identity.public_key
    proof = sign_join(link.seed, link.server, link.invite, me)
    return forge(c, c.identity, Join(link.invite, proof), ts=ts)


def _newcomer(r: Room, label: str) -> Community:
    """A replica for ``label`` holding the current history, not (yet) a member."""
    r.sync()
    r.peers[label] = replica(label, r.owner, r.clock)
    return r.peers[label]


def _refused_join(r: Room, label: str, link: InviteLink, reason: RejectReason) -> Event:
    """The client refuses to join with ``reason``; forged past it, replay rejects it too."""
    c = r.peers[label]
    head = c.dag.head(c.identity.public_key)
    with pytest.raises(NotPermitted) as exc:
        c.join(link, r.clock())
    assert exc.value.reason == reason
    assert c.dag.head(c.identity.public_key) == head
    ev = _join_event(c, link)
    c.receive([ev], r.clock())
    r.sync()
    for other in r.peers.values():
        assert other.managed.rejection(ev.id) == reason
        assert pk(label) not in other.state.members
    return ev


# --- joining ------------------------------------------------------------------------------------


def test_join_with_a_valid_invite() -> None:
    r = room()
    invite, link = make_invite(r.owner, r.clock)
    assert InviteLink.parse(link.encode()) == link
    joiner = _newcomer(r, "j")
    join = joiner.join(link, r.clock())
    r.sync()
    for c in r.peers.values():
        member = c.state.members[pk("j")]
        assert (member.invite, member.joined_at) == (invite.id, join.ts)
        assert c.state.invites[invite.id].uses == 1
    r.do("j", Message(r.channel, "hello, I'm new"))
    # Joining again while a member is refused.
    _, second = make_invite(r.owner, r.clock, label="second")
    r.sync()
    with pytest.raises(NotPermitted) as exc:
        joiner.join(second, r.clock())
    assert exc.value.reason == R.ALREADY_MEMBER
    r.converged()


def test_one_use_invite_with_two_concurrent_joiners_admits_exactly_one() -> None:
    r = room("observer")
    invite, link = make_invite(r.owner, r.clock, max_uses=1)
    j1, j2 = _newcomer(r, "j1"), _newcomer(r, "j2")
    # Both join on the same history, neither seeing the other.
    join1 = j1.join(link, r.clock())
    join2 = j2.join(link, r.clock())
    assert join1.parents == join2.parents
    # Each joiner believes itself admitted and speaks.
    said1 = j1.author(Message(r.channel, "j1 here"), r.clock())
    said2 = j2.author(Message(r.channel, "j2 here"), r.clock())
    # Two replicas see the joins in opposite orders.
    owner, observer = r.owner, r["observer"]
    owner.receive([join1, said1], r.clock())
    observer.receive([join2, said2], r.clock())
    assert pk("j1") in owner.state.members
    assert pk("j2") in observer.state.members
    owner.receive([join2, said2], r.clock())
    observer.receive([join1, said1], r.clock())
    assert_converged(owner, observer)
    r.sync()
    assert_converged(*r.peers.values())

    winner, loser = sorted([join1, join2], key=lambda ev: (owner.dag.depth[ev.id], ev.id))
    said = {join1.author: said1, join2.author: said2}
    for c in r.peers.values():
        state = c.state
        assert state.invites[invite.id].uses == 1
        assert winner.author in state.members
        assert loser.author not in state.members
        assert c.managed.rejection(winner.id) is None
        assert c.managed.rejection(loser.id) == R.INVITE_USED_UP
        assert c.managed.rejection(said[winner.author].id) is None
        assert c.managed.rejection(said[loser.author].id) == R.NOT_MEMBER
        assert said[loser.author].id not in state.messages


def test_used_up_invite_admits_nobody() -> None:
    r = room()
    invite, link = make_invite(r.owner, r.clock, max_uses=2)
    for label in ("j1", "j2"):
        _newcomer(r, label).join(link, r.clock())
        r.sync()
    _newcomer(r, "j3")
    _refused_join(r, "j3", link, R.INVITE_USED_UP)
    assert r.owner.state.invites[invite.id].uses == 2
    r.converged()


def test_expired_invite_admits_nobody() -> None:
    r = room()
    expires = r.clock.ms + 10_000
    invite, link = make_invite(r.owner, r.clock, expires_at=expires)
    on_time = _newcomer(r, "on-time")
    late1, late2 = _newcomer(r, "late1"), _newcomer(r, "late2")
    # Joining exactly at the expiry time still counts; one millisecond later does not.
    in_time = _join_event(on_time, link, ts=expires)
    assert on_time.receive([in_time], r.clock()).inserted
    r.clock.ms = expires + 1
    for late in (late1, late2):
        late_join = _join_event(late, link, ts=expires + 1)
        late.receive([late_join], r.clock())
        assert late.managed.rejection(late_join.id) == R.INVITE_EXPIRED
        with pytest.raises(NotPermitted) as exc:
            late.join(link, r.clock())
        assert exc.value.reason == R.INVITE_EXPIRED
    r.sync()
    for c in r.peers.values():
        assert c.state.invites[invite.id].uses == 1
        assert pk("on-time") in c.state.members
        assert pk("late1") not in c.state.members
        assert pk("late2") not in c.state.members
    r.converged()


def test_join_cannot_claim_a_time_before_its_invite() -> None:
    r = room()
    invite, link = make_invite(r.owner, r.clock, expires_at=r.clock.ms + 10_000)
    joiner = _newcomer(r, "j")
    backdated = _join_event(joiner, link, ts=invite.ts - 1)
    receipt = joiner.receive([backdated], r.clock())
    assert [e.reason for _, e in receipt.refused] == ["time-before-parent"]
    assert backdated.id not in joiner.dag


def test_revoked_invite_admits_nobody() -> None:
    r = room("m", "other")
    r.do("owner", GrantPermission(pk("m"), Permission.CREATE_INVITE))
    owners_invite, owners_link = make_invite(r.owner, r.clock)
    members_invite, members_link = make_invite(r["m"], r.clock, label="m's")
    r.sync()
    # Only the creator or an admin may revoke.
    r.refused("other", RevokeInvite(members_invite.id), R.NOT_AUTHOR)
    r.refused("m", RevokeInvite(owners_invite.id), R.NOT_AUTHOR)
    r.do("m", RevokeInvite(members_invite.id))
    r.do("owner", RevokeInvite(owners_invite.id))
    r.refused("owner", RevokeInvite(seed_bytes("no-invite")), R.UNKNOWN_INVITE)
    for label, link in (("j1", owners_link), ("j2", members_link)):
        _newcomer(r, label)
        _refused_join(r, label, link, R.INVITE_REVOKED)
    for c in r.peers.values():
        assert c.state.invites[owners_invite.id].revoked
        assert c.state.invites[owners_invite.id].uses == 0
    r.converged()


def test_join_concurrent_with_revocation_is_decided_by_the_order() -> None:
    r = room("observer")
    invite, link = make_invite(r.owner, r.clock)
    joiner = _newcomer(r, "j")
    join = joiner.join(link, r.clock())
    revoke = r.owner.author(RevokeInvite(invite.id), r.clock())
    owner, observer = r.owner, r["observer"]
    owner.receive([join], r.clock())
    observer.receive([join], r.clock())
    observer.receive([revoke], r.clock())
    joiner.receive([revoke], r.clock())
    assert_converged(owner, observer, joiner)
    admitted = (owner.dag.depth[join.id], join.id) < (owner.dag.depth[revoke.id], revoke.id)
    for c in (owner, observer, joiner):
        assert (pk("j") in c.state.members) == admitted
        assert c.managed.rejection(join.id) == (None if admitted else R.INVITE_REVOKED)


def test_rejected_joins_do_not_use_up_an_invite() -> None:
    r = room("banned")
    r.do("owner", Propose(KickMember(pk("banned"), True)))
    invite, link = make_invite(r.owner, r.clock, max_uses=1)
    r.sync()
    _refused_join(r, "banned", link, R.BANNED)
    assert r.owner.state.invites[invite.id].uses == 0
    _newcomer(r, "j").join(link, r.clock())
    r.sync()
    assert pk("j") in r.owner.state.members
    assert r.owner.state.invites[invite.id].uses == 1
    r.converged()


# --- joins refused at insert --------------------------------------------------------------------


def test_join_with_bad_proof_or_without_its_invite_is_refused_at_insert() -> None:
    r = room()
    invite, link = make_invite(r.owner, r.clock)
    other_invite, _ = make_invite(r.owner, r.clock, label="other")
    joiner = _newcomer(r, "j")
    me = pk("j")
    server = r.owner.server_id
    wrong_seed = seed_bytes("not the invite seed")
    bad: dict[str, tuple[Event, str]] = {
        "wrong invite key": (
            forge(
                joiner, ident("j"), Join(invite.id, sign_join(wrong_seed, server, invite.id, me))
            ),
            "bad-invite-proof",
        ),
        "proof for someone else": (
            forge(
                joiner,
                ident("j"),
                Join(invite.id, sign_join(link.seed, server, invite.id, pk("someone"))),
            ),
            "bad-invite-proof",
        ),
        "proof for another invite": (
            forge(
                joiner,
                ident("j"),
                Join(invite.id, sign_join(link.seed, server, other_invite.id, me)),
            ),
            "bad-invite-proof",
        ),
        "proof for another community": (
            forge(
                joiner,
                ident("j"),
                Join(invite.id, sign_join(link.seed, seed_bytes("x"), invite.id, me)),
            ),
            "bad-invite-proof",
        ),
        "not depending on the invite": (
            forge(
                joiner,
                ident("j"),
                Join(invite.id, sign_join(link.seed, server, invite.id, me)),
                deps=(r.channel,),
            ),
            "join-without-invite",
        ),
        "invite is not an invite": (
            forge(
                joiner,
                ident("j"),
                Join(r.channel, sign_join(link.seed, server, r.channel, me)),
                deps=(r.channel,),
            ),
            "join-without-invite",
        ),
    }
    before = r.owner.state_hash()
    for name, (ev, reason) in bad.items():
        for c in (r.owner, joiner):
            receipt = c.receive([ev], r.clock())
            assert [(i, e.reason) for i, e in receipt.refused] == [(ev.id, reason)], name
            assert ev.id not in c.dag
    assert r.owner.state_hash() == before
    assert me not in r.owner.state.members
    # The genuine join still works afterwards.
    joiner.join(link, r.clock())
    r.sync()
    assert me in r.owner.state.members
    r.converged()


# --- kicks and bans -----------------------------------------------------------------------------


def test_banned_member_cannot_rejoin_until_unbanned() -> None:
    r = room("m")
    m = pk("m")
    r.do("owner", GrantPermission(m, Permission.MANAGE_MESSAGES))
    r.do("owner", Propose(KickMember(m, True)))
    for c in r.peers.values():
        assert m not in c.state.members
        assert m in c.state.banned
        assert m not in c.state.peer_permissions
    _, fresh = make_invite(r.owner, r.clock, label="fresh")
    r.sync()
    _refused_join(r, "m", fresh, R.BANNED)
    # Not even an admin's direct grant lets them back in.
    r.refused("owner", GrantPermission(m, Permission.SEND_MESSAGES), R.BANNED)

    r.do("owner", Propose(UnbanMember(m)))
    r.refused("owner", Propose(UnbanMember(m)), R.INVALID_TARGET)
    _, again = make_invite(r.owner, r.clock, label="again")
    r.sync()
    r["m"].join(again, r.clock())
    r.sync()
    for c in r.peers.values():
        assert m in c.state.members
        assert m not in c.state.banned
        # Nothing they held before the ban came back with them.
        assert m not in c.state.peer_permissions
    r.converged()


def test_a_non_member_can_be_banned_in_advance() -> None:
    r = room()
    r.do("owner", Propose(KickMember(pk("troll"), True)))
    assert pk("troll") in r.owner.state.banned
    _, link = make_invite(r.owner, r.clock)
    _newcomer(r, "troll")
    _refused_join(r, "troll", link, R.BANNED)
    r.refused("owner", Propose(KickMember(pk("nobody"), False)), R.UNKNOWN_MEMBER)
    r.converged()


@pytest.mark.parametrize("how", ["kicked", "left"])
def test_kicked_or_departed_member_can_rejoin(how: str) -> None:
    r = room("m")
    m = pk("m")
    joined_before = r.owner.state.members[m].joined_at
    if how == "kicked":
        r.do("owner", Propose(KickMember(m, False)))
    else:
        r.do("m", Leave())
    assert m not in r.owner.state.members
    assert m not in r.owner.state.banned
    _, link = make_invite(r.owner, r.clock, label="back")
    r.sync()
    rejoin = r["m"].join(link, r.clock())
    r.sync()
    for c in r.peers.values():
        assert c.state.members[m].joined_at == rejoin.ts > joined_before
    r.do("m", Message(r.channel, "I'm back"))
    r.converged()


# --- a removed member's later events have no effect ---------------------------------------------


def _removal(ban: bool) -> Payload:
    return Propose(KickMember(pk("m"), ban))


@pytest.mark.parametrize("ban", [False, True], ids=["kicked", "banned"])
def test_removed_members_later_events_have_no_effect(ban: bool) -> None:
    r = room("m")
    m = pk("m")
    said = r.do("m", Message(r.channel, "before")).id
    r.do("m", SetProfile("Mallory"))
    r.do("m", Reaction(r.message, "👍"))
    r.do("owner", _removal(ban))
    for payload in (
        Message(r.channel, "after"),
        EditMessage(said, "rewritten"),
        Reaction(r.message, "👎"),
        RemoveReaction(r.message, "👍"),
        SetProfile("Mallory 2"),
        UpdateProfile(ProfileDelta(bio=("rewritten",))),
    ):
        r.refused("m", payload, R.NOT_MEMBER)
    after = r.owner.state
    assert after.messages[said].body == "before"
    assert not after.messages[said].edited
    assert after.messages[r.message].reactions == {"👍": {m}}
    profile = after.profiles[m]
    assert (profile.display_name, profile.bio) == ("Mallory", None)
    assert [msg.body for msg in after.messages.values() if msg.author == m] == ["before"]
    r.converged()


@pytest.mark.parametrize("ban", [False, True], ids=["kicked", "banned"])
def test_events_concurrent_with_a_kick_that_order_after_it_have_no_effect(ban: bool) -> None:
    r = room("m", "observer")
    m = pk("m")
    said = r.do("m", Message(r.channel, "before")).id
    member, owner, observer = r["m"], r.owner, r["observer"]
    # The member keeps acting on a history without the kick; the owner kicks meanwhile.
    kick = owner.author(_removal(ban), r.clock())
    concurrent = [
        member.author(payload, r.clock())
        for payload in (
            Message(r.channel, "during 1"),
            EditMessage(said, "rewritten"),
            SetProfile("Mallory"),
            Reaction(r.message, "👎"),
            Message(r.channel, "during 2"),
        )
    ]
    assert all(member.managed.rejection(ev.id) is None for ev in concurrent)
    # Three arrival orders: kick first, member's events first, interleaved.
    observer.receive([kick, *concurrent], r.clock())
    owner.receive(concurrent, r.clock())
    member.receive([kick], r.clock())
    assert_converged(owner, observer, member)
    late = replica("late", owner, r.clock)
    assert late.state_hash() == owner.state_hash()

    key = {ev.id: (owner.dag.depth[ev.id], ev.id) for ev in [kick, *concurrent]}
    after_kick = [ev for ev in concurrent if key[ev.id] > key[kick.id]]
    assert len(after_kick) >= len(concurrent) - 1  # all but possibly the first are deeper
    for c in (owner, observer, member, late):
        state = c.state
        assert m not in state.members
        assert (m in state.banned) == ban
        for ev in concurrent:
            expected = R.NOT_MEMBER if ev in after_kick else None
            assert c.managed.rejection(ev.id) == expected
        assert state.messages[said].body == "before"
        assert m not in state.profiles
        assert state.messages[r.message].reactions == {}
        bodies = {msg.body for msg in state.messages.values() if msg.author == m}
        assert "during 2" not in bodies
        assert ("during 1" in bodies) == (concurrent[0] not in after_kick)


# --- known core bugs ------------------------------------------------------------------------------

_BACKDATING = (
    "known limitation (docs/protocol.md, invites): a link holder chooses what their join names "
    "and the time it claims; "
)


def test_kicked_member_cannot_post_by_naming_old_parents() -> None:
    r = room("m")
    for i in range(5):
        r.do("owner", Message(r.channel, f"chatter {i}"))
    r.do("owner", _removal(False))
    m = r["m"]
    assert pk("m") not in m.state.members  # m has seen the kick
    late = forge(m, m.identity, Message(r.channel, "still here"), deps=())
    assert inject(m, late, r.clock) == R.NOT_MEMBER


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason=_BACKDATING + "a join naming only the invite is ordered after every join it did not "
    "see, except one of equal causal depth (here the first joiner joined before anything else "
    "happened), where the id breaks the tie and the later join can take the slot",
)
def test_late_join_cannot_steal_a_used_invite_slot() -> None:
    r = room()
    invite, link = make_invite(r.owner, r.clock, max_uses=1)
    first = _newcomer(r, "first")
    first.join(link, r.clock())
    r.sync()
    for i in range(3):
        r.do("owner", Message(r.channel, f"welcome {i}"))
    said = r.do("first", Message(r.channel, "glad to be here")).id
    thief = _newcomer(r, "thief")
    proof = sign_join(link.seed, link.server, invite.id, pk("thief"))
    steal = forge(thief, thief.identity, Join(invite.id, proof), deps=(invite.id,))
    assert inject(r.owner, steal, r.clock) == R.INVITE_USED_UP
    assert pk("first") in r.owner.state.members
    assert r.owner.managed.rejection(said) is None


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason=_BACKDATING + "and ts is only bounded below by the named parents, so a join long "
    "after expiry naming only the invite can claim a time before expires_at",
)
def test_expired_invite_cannot_be_used_with_a_backdated_join() -> None:
    r = room()
    invite, link = make_invite(r.owner, r.clock, expires_at=r.clock.ms + 1_000)
    for i in range(3):
        r.do("owner", Message(r.channel, f"later {i}"))
    r.clock.ms += 86_400_000  # a day after expiry
    late = _newcomer(r, "late")
    with pytest.raises(NotPermitted):
        late.join(link, r.clock())
    proof = sign_join(link.seed, link.server, invite.id, pk("late"))
    backdated = forge(late, late.identity, Join(invite.id, proof), deps=(invite.id,), ts=invite.ts)
    assert inject(late, backdated, r.clock) == R.INVITE_EXPIRED


def test_kicked_member_can_rejoin_with_an_invite_they_created_last() -> None:
    r = room("m")
    _, link = make_invite(r["m"], r.clock, label="m's own")
    r.sync()  # the remover saw the invite (one made concurrently with a kick would not count)
    r.do("owner", _removal(False))
    r["m"].join(link, r.clock())
    r.sync()
    assert pk("m") in r.owner.state.members

"""Governance scenarios: proposals, votes, thresholds, the owner override and the last-admin guard.

Admin status changes only through Propose/Vote (D6). A proposal counts its proposer's yes and is
evaluated at once; the genesis author's proposals apply immediately; whenever the admin set or
threshold changes every pending proposal is re-evaluated; the last admin is never removed.
"""

from __future__ import annotations

import pytest

from willow_core import InsertError, RejectReason
from willow_core.apply.governance import meets_threshold
from willow_core.kinds import (
    GrantAdmin,
    GrantPermission,
    KickMember,
    Leave,
    Message,
    Propose,
    RevokeAdmin,
    RevokePermission,
    SetVoteThreshold,
    Threshold,
    ThresholdMode,
    UnbanMember,
    Vote,
)
from willow_core.permissions import Permission
from willow_core.state import Proposal, ServerState

from .helpers import Room, assert_converged, forge, pk, room

R = RejectReason
MAJORITY = Threshold(ThresholdMode.MAJORITY)
UNANIMOUS = Threshold(ThresholdMode.UNANIMOUS)


def count(n: int) -> Threshold:
    return Threshold(ThresholdMode.COUNT, n)


def _admins(r: Room, *labels: str) -> None:
    for label in labels:
        r.do("owner", Propose(GrantAdmin(pk(label))))


def _owner(r: Room) -> bytes:
    return r.owner.identity.public_key


def _everywhere_pending(r: Room, proposal: bytes) -> None:
    for c in r.peers.values():
        assert proposal in c.state.proposals


def _everywhere_applied(r: Room, proposal: bytes) -> None:
    for c in r.peers.values():
        assert proposal not in c.state.proposals
        assert c.managed.rejection(proposal) is None


# --- kicks ------------------------------------------------------------------------------------


def test_kicks_happen_only_through_a_proposal() -> None:
    r = room("m", "victim")
    victim = pk("victim")
    words = r.do("victim", Message(r.channel, "still here")).id
    for permission in Permission:
        r.do("owner", GrantPermission(pk("m"), permission))
    # Taking away every direct grant does not remove a member.
    r.do("owner", GrantPermission(victim, Permission.MANAGE_CHANNELS))
    r.do("owner", RevokePermission(victim, Permission.MANAGE_CHANNELS))
    assert victim in r.owner.state.members
    # A member holding every permission still cannot propose a kick.
    r.refused("m", Propose(KickMember(victim, False)), R.NOT_ADMIN)
    assert all(victim in c.state.members for c in r.peers.values())

    kick_id = r.do("owner", Propose(KickMember(victim, False))).id
    for c in r.peers.values():
        assert victim not in c.state.members
        assert victim not in c.state.banned
        assert kick_id not in c.state.proposals
        # Their messages remain.
        assert c.state.messages[words].body == "still here"
    r.refused("owner", Propose(KickMember(victim, False)), R.UNKNOWN_MEMBER)
    r.converged()


# --- immediate application ----------------------------------------------------------------------


def test_owner_override_applies_at_once() -> None:
    r = room("a", "b", "m", "n")
    _admins(r, "a", "b")
    r.do("owner", Propose(SetVoteThreshold(UNANIMOUS)))
    by_a = r.do("a", Propose(KickMember(pk("m"), False))).id
    _everywhere_pending(r, by_a)
    assert pk("m") in r.owner.state.members
    # The genesis author's proposal applies with only their own vote, even under Unanimous.
    by_owner = r.do("owner", Propose(KickMember(pk("n"), False))).id
    _everywhere_applied(r, by_owner)
    assert all(pk("n") not in c.state.members for c in r.peers.values())
    _everywhere_pending(r, by_a)
    r.converged()


def test_sole_admin_proposals_apply_at_once() -> None:
    r = room("a", "m")
    _admins(r, "a")
    r.do("owner", Leave())  # the owner may leave: another admin remains
    for c in r.peers.values():
        assert c.state.admins == {pk("a")}
        assert _owner(r) not in c.state.members
    # With one admin, Majority is 1 > 0: a non-owner's own proposal applies at once.
    grant = r.do("a", Propose(GrantAdmin(pk("m")))).id
    _everywhere_applied(r, grant)
    assert r.owner.state.admins == {pk("a"), pk("m")}
    # The owner override needs the owner to be an admin still.
    r.refused("owner", Propose(KickMember(pk("a"), False)), R.NOT_ADMIN)
    r.converged()


# --- votes ------------------------------------------------------------------------------------


def test_two_admins_non_owner_proposal_needs_both_votes() -> None:
    r = room("a", "m")
    _admins(r, "a")
    proposal = r.do("a", Propose(KickMember(pk("m"), False))).id
    _everywhere_pending(r, proposal)
    assert pk("m") in r.owner.state.members
    r.do("owner", Vote(proposal, True))
    _everywhere_applied(r, proposal)
    assert all(pk("m") not in c.state.members for c in r.peers.values())
    r.converged()


def test_negative_vote_does_not_apply() -> None:
    r = room("a", "m")
    _admins(r, "a")
    proposal = r.do("a", Propose(KickMember(pk("m"), False))).id
    r.do("owner", Vote(proposal, False))
    _everywhere_pending(r, proposal)
    for c in r.peers.values():
        assert c.state.proposals[proposal].votes == {pk("a"): True, _owner(r): False}
        assert pk("m") in c.state.members
    r.converged()


def test_votes_can_flip() -> None:
    r = room("a", "b", "m")
    _admins(r, "a", "b")
    r.do("owner", Propose(SetVoteThreshold(UNANIMOUS)))
    proposal = r.do("a", Propose(GrantAdmin(pk("m")))).id
    r.do("b", Vote(proposal, True))
    r.do("b", Vote(proposal, False))  # yes -> no
    r.do("owner", Vote(proposal, True))
    _everywhere_pending(r, proposal)
    assert r.owner.state.proposals[proposal].votes == {
        pk("a"): True,
        pk("b"): False,
        _owner(r): True,
    }
    r.do("b", Vote(proposal, True))  # no -> yes: now unanimous
    _everywhere_applied(r, proposal)
    assert pk("m") in r.owner.state.admins
    r.converged()


def test_vote_on_missing_or_applied_proposal_is_rejected() -> None:
    r = room("a", "m")
    _admins(r, "a")
    # Applied at once (owner override): nothing left to vote on.
    applied = r.do("owner", Propose(SetVoteThreshold(count(2)))).id
    r.refused("a", Vote(applied, True), R.UNKNOWN_PROPOSAL)
    # Applied by votes.
    voted = r.do("a", Propose(SetVoteThreshold(MAJORITY))).id
    _everywhere_pending(r, voted)
    r.do("owner", Vote(voted, True))
    _everywhere_applied(r, voted)
    r.refused("owner", Vote(voted, False), R.UNKNOWN_PROPOSAL)
    # A Propose that replay rejected never became a proposal.
    bogus = r.refused("m", Propose(KickMember(pk("a"), False)), R.NOT_ADMIN)
    r.refused("owner", Vote(bogus.id, True), R.UNKNOWN_PROPOSAL)
    assert pk("a") in r.owner.state.admins
    r.converged()


def test_vote_must_depend_on_its_proposal() -> None:
    r = room("a")
    _admins(r, "a")
    proposal = r.do("a", Propose(KickMember(r.owner.identity.public_key, False))).id
    owner = r.owner
    # Not naming the proposal among its parents: refused at insert, on every replica.
    detached = forge(owner, owner.identity, Vote(proposal, True), deps=())
    assert proposal not in detached.parents
    for c in r.peers.values():
        receipt = c.receive([detached], r.clock())
        assert [(i, e.reason) for i, e in receipt.refused] == [
            (detached.id, "vote-without-proposal")
        ]
        assert detached.id not in c.dag
    # Naming an event that is not a proposal.
    not_a_proposal = forge(owner, owner.identity, Vote(r.message, True), deps=(r.message,))
    receipt = owner.receive([not_a_proposal], r.clock())
    assert [e.reason for _, e in receipt.refused] == ["vote-without-proposal"]
    assert isinstance(receipt.refused[0][1], InsertError)
    _everywhere_pending(r, proposal)
    r.converged()


# --- the last admin -----------------------------------------------------------------------------


@pytest.mark.parametrize("sole", ["owner", "a"])
def test_last_admin_cannot_be_revoked_kicked_or_leave(sole: str) -> None:
    r = room("a", "m")
    if sole == "a":
        _admins(r, "a")
        r.do("owner", Leave())
    me = pk(sole)
    assert r.owner.state.admins == {me}
    r.refused(sole, Propose(RevokeAdmin(me)), R.LAST_ADMIN)
    r.refused(sole, Propose(KickMember(me, False)), R.LAST_ADMIN)
    r.refused(sole, Propose(KickMember(me, True)), R.LAST_ADMIN)
    r.refused(sole, Leave(), R.LAST_ADMIN)
    for c in r.peers.values():
        assert c.state.admins == {me}
        assert me in c.state.members
        assert me not in c.state.banned
    r.converged()


def test_second_to_last_admin_can_be_kicked_revoked_or_leave() -> None:
    r = room("a", "b", "c")
    _admins(r, "a", "b", "c")
    r.do("owner", Propose(KickMember(pk("a"), False)))
    r.do("owner", Propose(RevokeAdmin(pk("b"))))
    r.do("c", Leave())
    for c in r.peers.values():
        assert c.state.admins == {_owner(r)}
        assert pk("a") not in c.state.members
        assert pk("b") in c.state.members
        assert pk("c") not in c.state.members
    r.refused("owner", Leave(), R.LAST_ADMIN)
    r.converged()


def test_concurrent_mutual_kicks_leave_exactly_one_admin() -> None:
    r = room("a")
    _admins(r, "a")
    r.do("owner", Propose(SetVoteThreshold(count(1))))
    owner, a = r.owner, r["a"]
    # Each kicks the other without having seen the other's proposal.
    by_owner = owner.author(Propose(KickMember(pk("a"), False)), r.clock())
    by_a = a.author(Propose(KickMember(_owner(r), False)), r.clock())
    assert owner.state.admins == {_owner(r)}
    assert a.state.admins == {pk("a")}
    owner.receive([by_a], r.clock())
    a.receive([by_owner], r.clock())
    assert_converged(owner, a)

    first, second = sorted([by_owner, by_a], key=lambda ev: (owner.dag.depth[ev.id], ev.id))
    for c in (owner, a):
        assert c.state.admins == {first.author}
        assert c.managed.rejection(first.id) is None
        # The loser was kicked before their own proposal came up.
        assert c.managed.rejection(second.id) == R.NOT_ADMIN
        assert second.author not in c.state.members


# --- re-evaluation ------------------------------------------------------------------------------


@pytest.mark.parametrize("removal", ["kick", "revoke", "leave"])
def test_removing_an_admin_strips_votes_and_reevaluates(removal: str) -> None:
    r = room("a", "b", "m", "n")
    _admins(r, "a", "b")
    r.do("owner", Propose(SetVoteThreshold(UNANIMOUS)))
    p1 = r.do("a", Propose(GrantAdmin(pk("m")))).id
    r.do("owner", Vote(p1, True))
    p2 = r.do("a", Propose(GrantAdmin(pk("n")))).id
    r.do("b", Vote(p2, True))
    r.do("b", Vote(p1, False))
    _everywhere_pending(r, p1)
    _everywhere_pending(r, p2)

    if removal == "kick":
        r.do("owner", Propose(KickMember(pk("b"), False)))
    elif removal == "revoke":
        r.do("owner", Propose(RevokeAdmin(pk("b"))))
    else:
        r.do("b", Leave())

    for c in r.peers.values():
        state = c.state
        assert pk("b") not in state.admins
        assert (pk("b") in state.members) == (removal == "revoke")
        # p1 had every remaining admin's yes once b's no was gone: it applied.
        assert p1 not in state.proposals
        assert pk("m") in state.admins
        # p2 lost b's yes and still waits for the others.
        assert state.proposals[p2].votes == {pk("a"): True}
        assert pk("n") not in state.admins
    r.converged()


@pytest.mark.parametrize(
    ("threshold", "admins", "needed"),
    [
        (MAJORITY, 2, 2),
        (MAJORITY, 3, 2),
        (MAJORITY, 4, 3),
        (UNANIMOUS, 3, 3),
        (count(1), 3, 1),
        (count(2), 4, 2),
        (count(5), 3, 3),  # capped at the number of admins
    ],
    ids=str,
)
def test_thresholds(threshold: Threshold, admins: int, needed: int) -> None:
    voters = [f"admin{i}" for i in range(1, admins)]
    r = room(*voters, "target")
    _admins(r, *voters)
    r.do("owner", Propose(SetVoteThreshold(threshold)))
    proposal = r.do(voters[0], Propose(GrantAdmin(pk("target")))).id
    yes = 1
    order = [*voters[1:], "owner"]
    while yes < needed:
        _everywhere_pending(r, proposal)
        r.do(order.pop(0), Vote(proposal, True))
        yes += 1
    _everywhere_applied(r, proposal)
    assert pk("target") in r.owner.state.admins
    r.converged()


def test_zero_admins_never_meet_a_threshold() -> None:
    owner = pk("owner")
    for threshold in (MAJORITY, UNANIMOUS, count(1)):
        state = ServerState(bytes(32), "s", owner, 0)
        state.threshold = threshold
        proposal = Proposal(bytes(32), GrantAdmin(pk("x")), owner)
        assert meets_threshold(state, proposal)
        state.admins.clear()
        assert not meets_threshold(state, proposal)


def test_votes_of_non_admins_do_not_count() -> None:
    state = ServerState(bytes(32), "s", pk("owner"), 0)
    state.admins.add(pk("a"))
    proposal = Proposal(bytes(32), GrantAdmin(pk("x")), pk("a"))
    proposal.votes[pk("stranger")] = True
    assert not meets_threshold(state, proposal)  # 1 of 2 admins; the stranger is no one
    proposal.votes[pk("owner")] = True
    assert meets_threshold(state, proposal)


def test_invalid_thresholds_are_rejected() -> None:
    r = room()
    r.refused("owner", Propose(SetVoteThreshold(count(0))), R.INVALID_TARGET)
    r.refused(
        "owner", Propose(SetVoteThreshold(Threshold(ThresholdMode.MAJORITY, 3))), R.INVALID_TARGET
    )
    assert r.owner.state.threshold == MAJORITY


def test_set_vote_threshold_reevaluates_pending_proposals() -> None:
    r = room("a", "b", "m", "n")
    _admins(r, "a", "b")
    p = r.do("a", Propose(GrantAdmin(pk("m")))).id
    _everywhere_pending(r, p)  # 1 of 3 under Majority
    r.do("owner", Propose(SetVoteThreshold(count(1))))
    _everywhere_applied(r, p)
    assert pk("m") in r.owner.state.admins

    # The same through a voted (non-owner) threshold change.
    r.do("owner", Propose(SetVoteThreshold(UNANIMOUS)))
    q = r.do("a", Propose(GrantAdmin(pk("n")))).id
    change = r.do("b", Propose(SetVoteThreshold(count(1)))).id
    _everywhere_pending(r, q)
    _everywhere_pending(r, change)
    for voter in ("a", "m"):
        r.do(voter, Vote(change, True))
    _everywhere_pending(r, q)
    r.do("owner", Vote(change, True))  # unanimous: Count(1) applies, and then q applies
    _everywhere_applied(r, change)
    _everywhere_applied(r, q)
    assert r.owner.state.threshold == count(1)
    assert pk("n") in r.owner.state.admins
    r.converged()


# --- GrantAdmin targets ---------------------------------------------------------------------------


def test_grant_admin_targets() -> None:
    r = room("a", "banned")
    _admins(r, "a")
    r.refused("owner", Propose(GrantAdmin(pk("a"))), R.INVALID_TARGET)
    r.do("owner", Propose(KickMember(pk("banned"), True)))
    r.refused("owner", Propose(GrantAdmin(pk("banned"))), R.BANNED)
    # Granting admin to someone who never joined makes them a member too.
    r.do("owner", Propose(GrantAdmin(pk("newcomer"))))
    assert pk("newcomer") in r.owner.state.members
    r.do("owner", Propose(UnbanMember(pk("banned"))))
    r.do("owner", Propose(GrantAdmin(pk("banned"))))
    assert {pk("banned"), pk("newcomer")} <= r.owner.state.admins
    r.converged()

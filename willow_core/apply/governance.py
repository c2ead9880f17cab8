"""Governance: proposals and votes among admins; the only way admin status changes.

A proposal counts its proposer's yes vote and is evaluated at once; the genesis author's
proposals apply immediately (owner override). Whenever the admin set changes, every pending
proposal is re-evaluated in id order until nothing more applies, so the outcome depends only on
the replay order. The last admin can never be removed, by revoke, kick or leave.
"""

from __future__ import annotations

from typing import Any

from ..event import Event
from ..journal import Journal
from ..kinds import (
    GrantAdmin,
    KickMember,
    Propose,
    RevokeAdmin,
    SetVoteThreshold,
    ThresholdMode,
    UnbanMember,
    Vote,
)
from ..results import RejectReason
from ..state import Member, Proposal, ServerState
from ._common import Outcome, remove_member

__all__ = ["apply_propose", "apply_vote", "meets_threshold", "reevaluate"]


def meets_threshold(state: ServerState, proposal: Proposal) -> bool:
    """Whether the current admins' yes votes reach the community's threshold."""
    admins = len(state.admins)
    if admins == 0:
        return False
    yes = sum(1 for peer, accept in proposal.votes.items() if accept and peer in state.admins)
    mode = state.threshold.mode
    if mode is ThresholdMode.MAJORITY:
        return yes > admins // 2
    if mode is ThresholdMode.UNANIMOUS:
        return yes >= admins
    return yes >= min(state.threshold.required, admins)


def _check_action(state: ServerState, action: Any) -> Outcome:
    if isinstance(action, GrantAdmin):
        if action.peer in state.banned:
            return RejectReason.BANNED
        if action.peer in state.admins:
            return RejectReason.INVALID_TARGET
    elif isinstance(action, RevokeAdmin):
        if action.peer not in state.admins:
            return RejectReason.INVALID_TARGET
        if len(state.admins) == 1:
            return RejectReason.LAST_ADMIN
    elif isinstance(action, KickMember):
        if action.peer not in state.members and not action.ban:
            return RejectReason.UNKNOWN_MEMBER
        if state.admins == {action.peer}:
            return RejectReason.LAST_ADMIN
    elif isinstance(action, UnbanMember):
        if action.peer not in state.banned:
            return RejectReason.INVALID_TARGET
    elif isinstance(action, SetVoteThreshold):
        t = action.threshold
        if (t.mode is ThresholdMode.COUNT) != (t.required > 0):
            return RejectReason.INVALID_TARGET
    return None


def _execute(state: ServerState, action: Any, ts: int, j: Journal) -> bool:
    """Carry out an accepted action; returns whether the admin set changed."""
    if isinstance(action, GrantAdmin):
        if action.peer in state.banned:
            return False
        if action.peer not in state.members:
            j.set(state.members, action.peer, Member(action.peer, ts))
        j.add(state.admins, action.peer)
        return True
    if isinstance(action, RevokeAdmin):
        if action.peer not in state.admins or len(state.admins) == 1:
            return False  # the last-admin guard holds at execution time too
        j.discard(state.admins, action.peer)
        for proposal in state.proposals.values():
            j.pop(proposal.votes, action.peer)
        return True
    if isinstance(action, KickMember):
        if state.admins == {action.peer}:
            return False
        was_admin = action.peer in state.admins
        remove_member(state, action.peer, j)
        if action.ban:
            j.add(state.banned, action.peer)
        return was_admin
    if isinstance(action, UnbanMember):
        j.discard(state.banned, action.peer)
        return False
    if isinstance(action, SetVoteThreshold):
        j.attr(state, "threshold", action.threshold)
        return True
    raise AssertionError(f"unhandled action {action!r}")


def reevaluate(state: ServerState, ts: int, j: Journal) -> None:
    """Apply every pending proposal that now meets the threshold, to a fixpoint."""
    changed = True
    while changed:
        changed = False
        for proposal_id in sorted(state.proposals):
            proposal = state.proposals[proposal_id]
            if meets_threshold(state, proposal):
                j.pop(state.proposals, proposal_id)
                _execute(state, proposal.action, ts, j)
                changed = True
                break


def apply_propose(state: ServerState, ev: Event, p: Propose, j: Journal) -> Outcome:
    reason = _check_action(state, p.action)
    if reason is not None:
        return reason
    proposal = Proposal(ev.id, p.action, ev.author)
    if ev.author == state.owner or meets_threshold(state, proposal):
        if _execute(state, p.action, ev.ts, j):
            reevaluate(state, ev.ts, j)
        return None
    j.set(state.proposals, ev.id, proposal)
    return None


def apply_vote(state: ServerState, ev: Event, p: Vote, j: Journal) -> Outcome:
    proposal = state.proposals.get(p.proposal)
    if proposal is None:
        return RejectReason.UNKNOWN_PROPOSAL
    j.set(proposal.votes, ev.author, p.accept)
    if meets_threshold(state, proposal):
        j.pop(state.proposals, p.proposal)
        _execute(state, proposal.action, ev.ts, j)
        reevaluate(state, ev.ts, j)
    return None

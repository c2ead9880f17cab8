"""Shared helpers for replay handlers: gates, member removal, and the handler type."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from ..event import Event
from ..journal import Journal
from ..permissions import Permission, channel_permissions, server_permissions
from ..results import RejectReason
from ..state import ServerState

__all__ = [
    "Gate",
    "Handler",
    "Outcome",
    "holds_all",
    "remove_member",
    "needs_channel",
]

Outcome = RejectReason | None
Handler = Callable[[ServerState, Event, Any, Journal], Outcome]


class Gate(Enum):
    """Who may author a kind at all, checked before its handler runs."""

    GENESIS = "genesis"
    ANYONE = "anyone"
    MEMBER = "member"
    ADMIN = "admin"
    NON_MEMBER = "non-member"


def holds_all(state: ServerState, peer: bytes, permissions: frozenset[Permission]) -> bool:
    """Whether ``peer`` holds every one of ``permissions`` server-wide (the anti-escalation rule:
    nobody hands out, or edits a role carrying, a permission they do not hold themselves)."""
    if peer in state.admins:
        return True
    return permissions <= server_permissions(state, peer)


def needs_channel(
    state: ServerState, peer: bytes, channel_id: bytes, *required: Permission
) -> Outcome:
    """Reject unless the channel exists and ``peer`` holds ``required`` in it."""
    if channel_id not in state.channels:
        return RejectReason.UNKNOWN_CHANNEL
    if peer in state.admins:
        return None
    perms = channel_permissions(state, peer, channel_id)
    for permission in required:
        if permission not in perms:
            return RejectReason.MISSING_PERMISSION
    return None


def remove_member(state: ServerState, peer: bytes, j: Journal) -> None:
    """Take every authority away from ``peer`` (kick, ban, leave); their messages remain."""
    j.pop(state.members, peer)
    j.discard(state.admins, peer)
    j.pop(state.peer_permissions, peer)
    for proposal_id in sorted(state.proposals):
        j.pop(state.proposals[proposal_id].votes, peer)

"""Membership: invites, joins, leaves and direct permission grants.

Invites are events, so replay enforces them without the inviter online: a Join counts against
the invite's ``max_uses`` in replay order (two concurrent joins on a one-use invite admit exactly
the first in the deterministic order) and is refused if its time is past ``expires_at``. The
join's time cannot be earlier than anything it depends on (a DAG rule) and it must depend on the
invite itself, so a joiner cannot claim a time before the invite existed. The invite key's
signature on the joiner's key is checked once, at DAG insert.
"""

from __future__ import annotations

from ..event import Event
from ..journal import Journal
from ..kinds import CreateInvite, GrantPermission, Join, Leave, RevokeInvite, RevokePermission
from ..permissions import Permission, has_permission
from ..results import RejectReason
from ..state import Invite, Member, ServerState
from ._common import Outcome, remove_member
from .governance import reevaluate

__all__ = [
    "MAX_ACTIVE_INVITES",
    "apply_create_invite",
    "apply_revoke_invite",
    "apply_join",
    "apply_leave",
    "apply_grant_permission",
    "apply_revoke_permission",
]

#: Live invites per community; each is state every peer keeps forever.
MAX_ACTIVE_INVITES = 1000


def apply_create_invite(state: ServerState, ev: Event, p: CreateInvite, j: Journal) -> Outcome:
    if not has_permission(state, ev.author, Permission.CREATE_INVITE):
        return RejectReason.MISSING_PERMISSION
    live = sum(1 for i in state.invites.values() if not i.revoked)
    if live >= MAX_ACTIVE_INVITES:
        return RejectReason.CAP_EXCEEDED
    j.set(state.invites, ev.id, Invite(ev.id, ev.author, p.key, p.max_uses, p.expires_at_ms))
    return None


def apply_revoke_invite(state: ServerState, ev: Event, p: RevokeInvite, j: Journal) -> Outcome:
    invite = state.invites.get(p.invite)
    if invite is None:
        return RejectReason.UNKNOWN_INVITE
    if ev.author != invite.creator and ev.author not in state.admins:
        return RejectReason.NOT_AUTHOR
    j.attr(invite, "revoked", True)
    return None


def apply_join(state: ServerState, ev: Event, p: Join, j: Journal) -> Outcome:
    if ev.author in state.banned:
        return RejectReason.BANNED
    invite = state.invites.get(p.invite)
    if invite is None:
        return RejectReason.UNKNOWN_INVITE
    if invite.revoked:
        return RejectReason.INVITE_REVOKED
    if invite.max_uses and invite.uses >= invite.max_uses:
        return RejectReason.INVITE_USED_UP
    if invite.expires_at and ev.ts > invite.expires_at:
        return RejectReason.INVITE_EXPIRED
    j.attr(invite, "uses", invite.uses + 1)
    j.set(state.members, ev.author, Member(ev.author, ev.ts, invite.id))
    return None


def apply_leave(state: ServerState, ev: Event, p: Leave, j: Journal) -> Outcome:
    if state.admins == {ev.author}:
        return RejectReason.LAST_ADMIN
    was_admin = ev.author in state.admins
    remove_member(state, ev.author, j)
    if was_admin:
        reevaluate(state, ev.ts, j)
    return None


def apply_grant_permission(
    state: ServerState, ev: Event, p: GrantPermission, j: Journal
) -> Outcome:
    if p.peer in state.banned:
        return RejectReason.BANNED
    if p.peer not in state.members:
        # A direct grant adds the peer, as in the original (per-recipient invites).
        j.set(state.members, p.peer, Member(p.peer, ev.ts))
    current = state.peer_permissions.get(p.peer, frozenset())
    j.set(state.peer_permissions, p.peer, current | {p.permission})
    return None


def apply_revoke_permission(
    state: ServerState, ev: Event, p: RevokePermission, j: Journal
) -> Outcome:
    current = state.peer_permissions.get(p.peer)
    if current is None or p.permission not in current:
        return RejectReason.INVALID_TARGET
    remaining = current - {p.permission}
    if remaining:
        j.set(state.peer_permissions, p.peer, remaining)
    else:
        j.pop(state.peer_permissions, p.peer)
    return None

"""Roles: creation, permissions and assignment, with the anti-escalation rule.

Roles grant their permissions (D6), so managing roles could escalate: a member with Manage Roles
could otherwise give themselves anything. Nobody but an admin may create a grant of, or edit,
assign or delete a role carrying, a permission they do not hold themselves.
"""

from __future__ import annotations

from ..event import Event
from ..journal import Journal
from ..kinds import AssignRole, CreateRole, DeleteRole, SetPermission, UnassignRole
from ..permissions import Permission, has_permission
from ..results import RejectReason
from ..state import Role, ServerState
from ._common import Outcome, holds_all

__all__ = [
    "MAX_ROLES",
    "apply_create_role",
    "apply_delete_role",
    "apply_set_permission",
    "apply_assign_role",
    "apply_unassign_role",
]

#: Discord's per-server role limit.
MAX_ROLES = 250


def _manageable(state: ServerState, author: bytes, role_id: bytes) -> Outcome:
    if not has_permission(state, author, Permission.MANAGE_ROLES):
        return RejectReason.MISSING_PERMISSION
    role = state.roles.get(role_id)
    if role is None:
        return RejectReason.UNKNOWN_ROLE
    if not holds_all(state, author, role.permissions):
        return RejectReason.ESCALATION
    return None


def apply_create_role(state: ServerState, ev: Event, p: CreateRole, j: Journal) -> Outcome:
    if not has_permission(state, ev.author, Permission.MANAGE_ROLES):
        return RejectReason.MISSING_PERMISSION
    if len(state.roles) >= MAX_ROLES:
        return RejectReason.CAP_EXCEEDED
    j.set(state.roles, ev.id, Role(ev.id, p.name, p.color, frozenset()))
    return None


def apply_delete_role(state: ServerState, ev: Event, p: DeleteRole, j: Journal) -> Outcome:
    if p.role == state.everyone_role:
        return RejectReason.INVALID_TARGET
    reason = _manageable(state, ev.author, p.role)
    if reason is not None:
        return reason
    j.pop(state.roles, p.role)
    for member in state.members.values():
        j.discard(member.roles, p.role)
    for channel in state.channels.values():
        j.pop(channel.overwrites, p.role)
    return None


def apply_set_permission(state: ServerState, ev: Event, p: SetPermission, j: Journal) -> Outcome:
    reason = _manageable(state, ev.author, p.role)
    if reason is not None:
        return reason
    if p.granted and not holds_all(state, ev.author, frozenset({p.permission})):
        return RejectReason.ESCALATION
    role = state.roles[p.role]
    if p.granted:
        j.attr(role, "permissions", role.permissions | {p.permission})
    else:
        j.attr(role, "permissions", role.permissions - {p.permission})
    return None


def apply_assign_role(state: ServerState, ev: Event, p: AssignRole, j: Journal) -> Outcome:
    if p.role == state.everyone_role:
        return RejectReason.INVALID_TARGET
    reason = _manageable(state, ev.author, p.role)
    if reason is not None:
        return reason
    member = state.members.get(p.peer)
    if member is None:
        return RejectReason.UNKNOWN_MEMBER
    j.add(member.roles, p.role)
    return None


def apply_unassign_role(state: ServerState, ev: Event, p: UnassignRole, j: Journal) -> Outcome:
    if p.role == state.everyone_role:
        return RejectReason.INVALID_TARGET
    reason = _manageable(state, ev.author, p.role)
    if reason is not None:
        return reason
    member = state.members.get(p.peer)
    if member is None:
        return RejectReason.UNKNOWN_MEMBER
    if p.role not in member.roles:
        return RejectReason.INVALID_TARGET
    j.discard(member.roles, p.role)
    return None

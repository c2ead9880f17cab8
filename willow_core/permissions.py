"""Permissions (D6): what a member may do, from grants, roles and channel overwrites.

Effective server permissions = the everyone role | direct grants | the member's roles.
In a channel, overwrites then apply in Discord's order: the everyone overwrite (deny, then
allow), the union of the member's role overwrites (deny, then allow), then the member's own
overwrite (deny, then allow). Admins hold every permission everywhere. Admin itself is not a
permission: it comes only from governance.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import ServerState

__all__ = [
    "Permission",
    "ALL_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "server_permissions",
    "channel_permissions",
    "has_permission",
    "has_channel_permission",
]


class Permission(IntEnum):
    """Wire values are fixed forever; never reuse a retired number."""

    SYNC_PROVIDER = 0
    MANAGE_CHANNELS = 1
    MANAGE_ROLES = 2
    SEND_MESSAGES = 3
    CREATE_INVITE = 4
    VIEW_CHANNEL = 5
    MANAGE_MESSAGES = 6
    ADD_REACTIONS = 7
    CREATE_THREADS = 8
    MANAGE_EMOJI = 9
    ATTACH_FILES = 10


ALL_PERMISSIONS: frozenset[Permission] = frozenset(Permission)

#: What every member can do in a new community, as in a fresh Discord server.
DEFAULT_EVERYONE_PERMISSIONS: frozenset[Permission] = frozenset(
    {
        Permission.VIEW_CHANNEL,
        Permission.SEND_MESSAGES,
        Permission.ADD_REACTIONS,
        Permission.CREATE_THREADS,
        Permission.ATTACH_FILES,
        Permission.CREATE_INVITE,
    }
)


def server_permissions(state: ServerState, peer: bytes) -> frozenset[Permission]:
    """Server-wide permissions of ``peer``; empty for non-members."""
    if peer in state.admins:
        return ALL_PERMISSIONS
    cached = state.perm_cache.get((peer, None))
    if cached is not None:
        return cached
    result = _server_permissions(state, peer)
    state.perm_cache[(peer, None)] = result
    return result


def _server_permissions(state: ServerState, peer: bytes) -> frozenset[Permission]:
    member = state.members.get(peer)
    if member is None:
        return frozenset()
    perms = set(state.roles[state.everyone_role].permissions)
    perms |= state.peer_permissions.get(peer, frozenset())
    for role_id in member.roles:
        role = state.roles.get(role_id)
        if role is not None:
            perms |= role.permissions
    return frozenset(perms)


def channel_permissions(
    state: ServerState, peer: bytes, channel_id: bytes
) -> frozenset[Permission]:
    """Permissions of ``peer`` in one channel, after its overwrites."""
    if peer in state.admins:
        return ALL_PERMISSIONS
    cached = state.perm_cache.get((peer, channel_id))
    if cached is not None:
        return cached
    result = _channel_permissions(state, peer, channel_id)
    state.perm_cache[(peer, channel_id)] = result
    return result


def _channel_permissions(
    state: ServerState, peer: bytes, channel_id: bytes
) -> frozenset[Permission]:
    perms = set(server_permissions(state, peer))
    channel = state.channels.get(channel_id)
    member = state.members.get(peer)
    if channel is None or member is None or not channel.overwrites:
        return frozenset(perms)
    everyone = channel.overwrites.get(state.everyone_role)
    if everyone is not None:
        perms -= everyone.deny
        perms |= everyone.allow
    role_allow: set[Permission] = set()
    role_deny: set[Permission] = set()
    for role_id in member.roles:
        ow = channel.overwrites.get(role_id)
        if ow is not None:
            role_allow |= ow.allow
            role_deny |= ow.deny
    perms -= role_deny
    perms |= role_allow
    own = channel.overwrites.get(peer)
    if own is not None:
        perms -= own.deny
        perms |= own.allow
    return frozenset(perms)


def has_permission(state: ServerState, peer: bytes, permission: Permission) -> bool:
    """Whether ``peer`` holds ``permission`` server-wide."""
    if peer in state.admins:
        return True
    return permission in server_permissions(state, peer)


def has_channel_permission(
    state: ServerState, peer: bytes, channel_id: bytes, permission: Permission
) -> bool:
    """Whether ``peer`` holds ``permission`` in ``channel_id``."""
    if peer in state.admins:
        return True
    return permission in channel_permissions(state, peer, channel_id)

"""The replay rules: one table from event kind to (gate, handler).

``apply_event`` is the only function that changes a ``ServerState``. It checks, in order: the
equivocation rule (an author's events from their first fork on have no effect), the kind's gate
(who may author it at all), then the kind's handler (permissions, caps, targets). A refusal is a
``RejectReason`` recorded in ``state.rejected``; it is a value, so every peer records the same.
The table is data: docs and tests read it, and adding a kind means adding a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..event import Event
from ..journal import Journal
from ..kinds import Kind
from ..results import RejectReason
from ..state import ServerState
from ._common import Gate, Handler, Outcome
from .channels import (
    apply_channel_revive,
    apply_create_channel,
    apply_create_thread,
    apply_delete_channel,
    apply_mute_channel,
    apply_mute_grove,
    apply_pin,
    apply_rename_channel,
    apply_set_channel_overwrite,
    apply_unpin,
)
from .governance import apply_propose, apply_vote
from .membership import (
    apply_create_invite,
    apply_grant_permission,
    apply_join,
    apply_leave,
    apply_revoke_invite,
    apply_revoke_permission,
)
from .messages import (
    apply_add_emoji,
    apply_delete_message,
    apply_edit_message,
    apply_file_message,
    apply_message,
    apply_reaction,
    apply_remove_emoji,
    apply_remove_reaction,
)
from .profiles import (
    apply_rename_server,
    apply_set_description,
    apply_set_profile,
    apply_update_profile,
)
from .roles import (
    apply_assign_role,
    apply_create_role,
    apply_delete_role,
    apply_set_permission,
    apply_unassign_role,
)
from .sealed import (
    apply_create_sealed_channel,
    apply_create_sealed_thread,
    apply_publish_key,
    apply_rotate_channel_key,
    apply_sealed_edit,
    apply_sealed_file_message,
    apply_sealed_message,
    apply_share_channel_key,
)

__all__ = ["RULES", "PERMISSION_KINDS", "Gate", "apply_event", "apply_all"]


def _genesis(state: ServerState, ev: Event, p: Any, j: Journal) -> Outcome:
    return None  # the state is built from genesis; nothing more to do


RULES: dict[Kind, tuple[Gate, Handler]] = {
    Kind.CREATE_SERVER: (Gate.GENESIS, _genesis),
    Kind.PROPOSE: (Gate.ADMIN, apply_propose),
    Kind.VOTE: (Gate.ADMIN, apply_vote),
    Kind.GRANT_PERMISSION: (Gate.ADMIN, apply_grant_permission),
    Kind.REVOKE_PERMISSION: (Gate.ADMIN, apply_revoke_permission),
    Kind.CREATE_CHANNEL: (Gate.MEMBER, apply_create_channel),
    Kind.DELETE_CHANNEL: (Gate.MEMBER, apply_delete_channel),
    Kind.RENAME_CHANNEL: (Gate.MEMBER, apply_rename_channel),
    Kind.CHANNEL_REVIVE: (Gate.MEMBER, apply_channel_revive),
    Kind.CREATE_ROLE: (Gate.MEMBER, apply_create_role),
    Kind.DELETE_ROLE: (Gate.MEMBER, apply_delete_role),
    Kind.SET_PERMISSION: (Gate.MEMBER, apply_set_permission),
    Kind.ASSIGN_ROLE: (Gate.MEMBER, apply_assign_role),
    Kind.MESSAGE: (Gate.MEMBER, apply_message),
    Kind.FILE_MESSAGE: (Gate.MEMBER, apply_file_message),
    Kind.EDIT_MESSAGE: (Gate.MEMBER, apply_edit_message),
    Kind.DELETE_MESSAGE: (Gate.MEMBER, apply_delete_message),
    Kind.REACTION: (Gate.MEMBER, apply_reaction),
    Kind.SET_PROFILE: (Gate.MEMBER, apply_set_profile),
    Kind.UPDATE_PROFILE: (Gate.MEMBER, apply_update_profile),
    Kind.ROTATE_CHANNEL_KEY: (Gate.MEMBER, apply_rotate_channel_key),
    Kind.PIN_MESSAGE: (Gate.MEMBER, apply_pin),
    Kind.UNPIN_MESSAGE: (Gate.MEMBER, apply_unpin),
    Kind.RENAME_SERVER: (Gate.ADMIN, apply_rename_server),
    Kind.SET_SERVER_DESCRIPTION: (Gate.ADMIN, apply_set_description),
    Kind.MUTE_CHANNEL: (Gate.ANYONE, apply_mute_channel),
    Kind.MUTE_GROVE: (Gate.ANYONE, apply_mute_grove),
    Kind.JOIN: (Gate.NON_MEMBER, apply_join),
    Kind.LEAVE: (Gate.MEMBER, apply_leave),
    Kind.UNASSIGN_ROLE: (Gate.MEMBER, apply_unassign_role),
    Kind.REMOVE_REACTION: (Gate.MEMBER, apply_remove_reaction),
    Kind.CREATE_THREAD: (Gate.MEMBER, apply_create_thread),
    Kind.ADD_EMOJI: (Gate.MEMBER, apply_add_emoji),
    Kind.REMOVE_EMOJI: (Gate.MEMBER, apply_remove_emoji),
    Kind.SET_CHANNEL_OVERWRITE: (Gate.MEMBER, apply_set_channel_overwrite),
    Kind.CREATE_INVITE: (Gate.MEMBER, apply_create_invite),
    Kind.REVOKE_INVITE: (Gate.MEMBER, apply_revoke_invite),
    Kind.PUBLISH_KEY: (Gate.MEMBER, apply_publish_key),
    Kind.CREATE_SEALED_CHANNEL: (Gate.MEMBER, apply_create_sealed_channel),
    Kind.SHARE_CHANNEL_KEY: (Gate.MEMBER, apply_share_channel_key),
    Kind.SEALED_MESSAGE: (Gate.MEMBER, apply_sealed_message),
    Kind.SEALED_EDIT: (Gate.MEMBER, apply_sealed_edit),
    Kind.CREATE_SEALED_THREAD: (Gate.MEMBER, apply_create_sealed_thread),
    Kind.SEALED_FILE_MESSAGE: (Gate.MEMBER, apply_sealed_file_message),
}


#: RULES as a list indexed by the kind's wire value (the replay loop's dispatch).
_BY_VALUE: list[tuple[Gate, Handler]] = [RULES[kind] for kind in sorted(Kind)]
_MEMBER, _ADMIN, _NON_MEMBER = Gate.MEMBER, Gate.ADMIN, Gate.NON_MEMBER


#: Kinds whose effects can change anyone's effective permissions (they clear the cache).
PERMISSION_KINDS = frozenset(
    {
        Kind.CREATE_SERVER,
        Kind.PROPOSE,
        Kind.VOTE,
        Kind.GRANT_PERMISSION,
        Kind.REVOKE_PERMISSION,
        Kind.DELETE_CHANNEL,
        Kind.CREATE_ROLE,
        Kind.DELETE_ROLE,
        Kind.SET_PERMISSION,
        Kind.ASSIGN_ROLE,
        Kind.UNASSIGN_ROLE,
        Kind.SET_CHANNEL_OVERWRITE,
        Kind.JOIN,
        Kind.LEAVE,
    }
)


_PERMISSION_VALUES = frozenset(int(k) for k in PERMISSION_KINDS)
#: RULES by wire value, each with whether the kind clears the permission cache (``apply_all``).
_STEPS: list[tuple[Gate, Handler, bool]] = [
    (*RULES[kind], kind in PERMISSION_KINDS) for kind in sorted(Kind)
]
_EQUIVOCATION, _NOT_MEMBER = RejectReason.EQUIVOCATION, RejectReason.NOT_MEMBER
_NOT_ADMIN, _ALREADY_MEMBER = RejectReason.NOT_ADMIN, RejectReason.ALREADY_MEMBER


def apply_event(state: ServerState, ev: Event, j: Journal, fork_seq: int | None = None) -> Outcome:
    """Fold one event into ``state``; returns None when it applied, else why it did not.

    Args:
        fork_seq: the lowest seq at which the DAG holds two events by this author, if any.
    """
    gate, handler = _BY_VALUE[ev.kind]
    reason: Outcome
    if fork_seq is not None and ev.seq >= fork_seq:
        reason = RejectReason.EQUIVOCATION
    elif gate is _MEMBER and ev.author not in state.members:
        reason = RejectReason.NOT_MEMBER
    elif gate is _ADMIN and ev.author not in state.admins:
        reason = RejectReason.NOT_ADMIN
    elif gate is _NON_MEMBER and ev.author in state.members:
        reason = RejectReason.ALREADY_MEMBER
    else:
        reason = handler(state, ev, ev.payload, j)
        if ev.kind in _PERMISSION_VALUES:
            state.perm_cache.clear()
    if reason is not None:
        j.set(state.rejected, ev.id, int(reason))
    return reason


def apply_all(
    state: ServerState, events: Iterable[Event], fork_seq: Mapping[bytes, int], j: Journal
) -> None:
    """``apply_event`` each of ``events`` in turn (a fold), with the same rules step for step.

    The loop body is ``apply_event``'s, written out: a fresh replay runs it for every event of
    a history, and a call per event is a large share of its cost. The property tests compare
    folds with event-by-event replay, so the two cannot drift apart unnoticed.
    """
    steps = _STEPS
    members, admins, rejected, perm_cache = (
        state.members,
        state.admins,
        state.rejected,
        state.perm_cache,
    )
    forks = fork_seq.get if fork_seq else None
    record = j.set
    for ev in events:
        gate, handler, clears = steps[ev.kind]
        reason: Outcome
        if forks is not None and (fork := forks(ev.author)) is not None and ev.seq >= fork:
            reason = _EQUIVOCATION
        elif gate is _MEMBER and ev.author not in members:
            reason = _NOT_MEMBER
        elif gate is _ADMIN and ev.author not in admins:
            reason = _NOT_ADMIN
        elif gate is _NON_MEMBER and ev.author in members:
            reason = _ALREADY_MEMBER
        else:
            reason = handler(state, ev, ev.payload, j)
            if clears:
                perm_cache.clear()
        if reason is not None:
            record(rejected, ev.id, int(reason))

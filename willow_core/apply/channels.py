"""Channels, threads, overwrites, pins and mutes (sealed channels' keys: ``sealed``)."""

from __future__ import annotations

from ..event import Event
from ..journal import Journal
from ..kinds import (
    ChannelRevive,
    CreateChannel,
    CreateThread,
    DeleteChannel,
    MuteChannel,
    MuteGrove,
    OverwriteTarget,
    PinMessage,
    RenameChannel,
    SetChannelOverwrite,
    UnpinMessage,
)
from ..permissions import Permission, channel_permissions, has_permission
from ..results import RejectReason
from ..state import Channel, Overwrite, Pin, ServerState, Thread
from ._common import Outcome, needs_channel

__all__ = [
    "MAX_CHANNELS",
    "MAX_PINS_PER_CHANNEL",
    "KEY_ENTRY_SLACK",
    "apply_create_channel",
    "apply_delete_channel",
    "apply_rename_channel",
    "apply_channel_revive",
    "apply_set_channel_overwrite",
    "apply_create_thread",
    "apply_pin",
    "apply_unpin",
    "apply_mute_channel",
    "apply_mute_grove",
]

#: Discord's per-server channel limit.
MAX_CHANNELS = 500
#: Discord's per-channel pin limit.
MAX_PINS_PER_CHANNEL = 50
#: A rotation may name a few peers beyond current members (joins racing the rotation).
KEY_ENTRY_SLACK = 4


def apply_create_channel(state: ServerState, ev: Event, p: CreateChannel, j: Journal) -> Outcome:
    if not has_permission(state, ev.author, Permission.MANAGE_CHANNELS):
        return RejectReason.MISSING_PERMISSION
    if len(state.channels) >= MAX_CHANNELS:
        return RejectReason.CAP_EXCEEDED
    channel = Channel(ev.id, p.name, p.channel_kind, p.topic, p.ephemeral, ev.author, ev.ts)
    j.set(state.channels, ev.id, channel)
    return None


def apply_delete_channel(state: ServerState, ev: Event, p: DeleteChannel, j: Journal) -> Outcome:
    reason = needs_channel(state, ev.author, p.channel, Permission.MANAGE_CHANNELS)
    if reason is not None:
        return reason
    channel = j.pop(state.channels, p.channel)
    for message_id in channel.messages:
        j.pop(state.messages, message_id)
    for thread_id in [t.id for t in state.threads.values() if t.channel == p.channel]:
        thread = j.pop(state.threads, thread_id)
        for message_id in thread.messages:
            j.pop(state.messages, message_id)
    j.pop(state.channel_keys, p.channel)
    return None


def apply_rename_channel(state: ServerState, ev: Event, p: RenameChannel, j: Journal) -> Outcome:
    reason = needs_channel(state, ev.author, p.channel, Permission.MANAGE_CHANNELS)
    if reason is not None:
        return reason
    channel = state.channels[p.channel]
    j.attr(channel, "name", p.name)
    j.attr(channel, "topic", p.topic)
    return None


def apply_channel_revive(state: ServerState, ev: Event, p: ChannelRevive, j: Journal) -> Outcome:
    channel = state.channels.get(p.channel)
    if channel is None:
        return RejectReason.UNKNOWN_CHANNEL
    if ev.ts > channel.last_activity:
        j.attr(channel, "last_activity", ev.ts)
    return None


def apply_set_channel_overwrite(
    state: ServerState, ev: Event, p: SetChannelOverwrite, j: Journal
) -> Outcome:
    reason = needs_channel(state, ev.author, p.channel, Permission.MANAGE_CHANNELS)
    if reason is not None:
        return reason
    if p.target_kind is OverwriteTarget.ROLE and p.target not in state.roles:
        return RejectReason.UNKNOWN_ROLE
    if p.target_kind is OverwriteTarget.MEMBER and p.target not in state.members:
        return RejectReason.UNKNOWN_MEMBER
    channel = state.channels[p.channel]
    if ev.author not in state.admins:
        # Anything added to or removed from allow or deny must be the author's to give: lifting
        # a deny you are subject to is as much an escalation as granting yourself an allow.
        old = channel.overwrites.get(p.target)
        old_allow = old.allow if old is not None else frozenset()
        old_deny = old.deny if old is not None else frozenset()
        changed = (old_allow ^ p.allow) | (old_deny ^ p.deny)
        if not changed <= channel_permissions(state, ev.author, p.channel):
            return RejectReason.ESCALATION
    if p.allow or p.deny:
        j.set(channel.overwrites, p.target, Overwrite(p.allow, p.deny))
    else:
        j.pop(channel.overwrites, p.target)
    return None


def apply_create_thread(state: ServerState, ev: Event, p: CreateThread, j: Journal) -> Outcome:
    reason = needs_channel(
        state, ev.author, p.channel, Permission.VIEW_CHANNEL, Permission.CREATE_THREADS
    )
    if reason is not None:
        return reason
    if state.channels[p.channel].sealed:
        return RejectReason.SEALED_CHANNEL
    root = state.messages.get(p.root)
    if root is None or root.deleted:
        return RejectReason.UNKNOWN_MESSAGE
    if root.channel != p.channel or root.thread is not None:
        return RejectReason.INVALID_TARGET
    if any(t.root == p.root for t in state.threads.values()):
        return RejectReason.INVALID_TARGET  # one thread per root message
    j.set(state.threads, ev.id, Thread(ev.id, p.channel, p.root, p.name, ev.author))
    return None


def _pin_target(state: ServerState, ev: Event, channel_id: bytes, message_id: bytes) -> Outcome:
    reason = needs_channel(state, ev.author, channel_id, Permission.MANAGE_MESSAGES)
    if reason is not None:
        return reason
    message = state.messages.get(message_id)
    if message is None or message.channel != channel_id:
        return RejectReason.UNKNOWN_MESSAGE
    return None


def apply_pin(state: ServerState, ev: Event, p: PinMessage, j: Journal) -> Outcome:
    reason = _pin_target(state, ev, p.channel, p.message)
    if reason is not None:
        return reason
    channel = state.channels[p.channel]
    if p.message not in channel.pins and len(channel.pins) >= MAX_PINS_PER_CHANNEL:
        return RejectReason.CAP_EXCEEDED
    j.set(channel.pins, p.message, Pin(ev.author, ev.ts))
    return None


def apply_unpin(state: ServerState, ev: Event, p: UnpinMessage, j: Journal) -> Outcome:
    reason = _pin_target(state, ev, p.channel, p.message)
    if reason is not None:
        return reason
    if j.pop(state.channels[p.channel].pins, p.message) is None:
        return RejectReason.INVALID_TARGET
    return None


def apply_mute_channel(state: ServerState, ev: Event, p: MuteChannel, j: Journal) -> Outcome:
    muted = state.channel_mutes.get(p.channel)
    if p.muted:
        if muted is None:
            j.set(state.channel_mutes, p.channel, {ev.author})
        else:
            j.add(muted, ev.author)
    elif muted is not None:
        j.discard(muted, ev.author)
    return None


def apply_mute_grove(state: ServerState, ev: Event, p: MuteGrove, j: Journal) -> Outcome:
    if p.muted:
        j.add(state.grove_mutes, ev.author)
    else:
        j.discard(state.grove_mutes, ev.author)
    return None

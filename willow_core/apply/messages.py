"""Messages, attachments, edits, deletes, reactions and custom emoji."""

from __future__ import annotations

import re

from ..event import Event
from ..journal import Journal
from ..kinds import (
    AddEmoji,
    DeleteMessage,
    EditMessage,
    FileMessage,
    Message,
    Reaction,
    RemoveEmoji,
    RemoveReaction,
)
from ..permissions import (
    Permission,
    channel_permissions,
    has_channel_permission,
    has_permission,
)
from ..results import RejectReason
from ..state import NO_REACTIONS, ChatMessage, CustomEmoji, ServerState
from ._common import Outcome, needs_channel

__all__ = [
    "MAX_DISTINCT_REACTIONS",
    "MAX_CUSTOM_EMOJI",
    "apply_message",
    "apply_file_message",
    "apply_edit_message",
    "apply_delete_message",
    "apply_reaction",
    "apply_remove_reaction",
    "apply_add_emoji",
    "apply_remove_emoji",
]

#: Distinct reaction keys per message (Discord allows 20; the original 32).
MAX_DISTINCT_REACTIONS = 32
#: Custom emoji per community (Discord's highest tier).
MAX_CUSTOM_EMOJI = 250
_SEND, _VIEW = Permission.SEND_MESSAGES, Permission.VIEW_CHANNEL
_SHORTCODE = re.compile(r"[a-z0-9_]{2,32}")


def _post(state: ServerState, ev: Event, p: Message | FileMessage, j: Journal) -> Outcome:
    """A message or a file message: the hottest handler, so it is the handler of both itself."""
    channel_id = p.channel
    channel = state.channels.get(channel_id)
    if channel is None:
        return RejectReason.UNKNOWN_CHANNEL
    if channel.sealed:
        return RejectReason.SEALED_CHANNEL
    file = p.file if type(p) is FileMessage else None
    author = ev.author
    if author not in state.admins:  # inlined needs_channel
        perms = state.perm_cache.get((author, channel_id))
        if perms is None:
            perms = channel_permissions(state, author, channel_id)
        if (
            _SEND not in perms
            or _VIEW not in perms
            or (file is not None and Permission.ATTACH_FILES not in perms)
        ):
            return RejectReason.MISSING_PERMISSION
    thread_id = p.thread
    thread = None
    if thread_id is not None:
        thread = state.threads.get(thread_id)
        if thread is None:
            return RejectReason.UNKNOWN_THREAD
        if thread.channel != channel_id:
            return RejectReason.INVALID_TARGET
    event_id, ts = ev.id, ev.ts
    message = ChatMessage(event_id, channel_id, thread_id, author, p.body, ts, p.reply_to, file)
    j.set(state.messages, event_id, message)
    j.append(channel.messages if thread is None else thread.messages, event_id)
    if ts > channel.last_activity:
        j.attr(channel, "last_activity", ts)
    return None


apply_message = _post
apply_file_message = _post


def apply_edit_message(state: ServerState, ev: Event, p: EditMessage, j: Journal) -> Outcome:
    message = state.messages.get(p.message)
    if message is None or message.deleted:
        return RejectReason.UNKNOWN_MESSAGE
    if message.author != ev.author:
        return RejectReason.NOT_AUTHOR
    if message.sealed is not None:
        return RejectReason.SEALED_CHANNEL
    j.attr(message, "body", p.body)
    j.attr(message, "edited", True)
    return None


def apply_delete_message(state: ServerState, ev: Event, p: DeleteMessage, j: Journal) -> Outcome:
    message = state.messages.get(p.message)
    if message is None or message.deleted:
        return RejectReason.UNKNOWN_MESSAGE
    if message.author != ev.author and not has_channel_permission(
        state, ev.author, message.channel, Permission.MANAGE_MESSAGES
    ):
        return RejectReason.NOT_AUTHOR
    j.attr(message, "deleted", True)
    j.attr(message, "body", "")
    j.attr(message, "file", None)
    j.attr(message, "sealed", None)
    j.attr(message, "reactions", NO_REACTIONS)
    return None


def apply_reaction(state: ServerState, ev: Event, p: Reaction, j: Journal) -> Outcome:
    message = state.messages.get(p.message)
    if message is None or message.deleted:
        return RejectReason.UNKNOWN_MESSAGE
    reason = needs_channel(
        state, ev.author, message.channel, Permission.VIEW_CHANNEL, Permission.ADD_REACTIONS
    )
    if reason is not None:
        return reason
    reactions = message.reactions
    reactors = reactions.get(p.emoji)
    if reactors is None:
        if len(reactions) >= MAX_DISTINCT_REACTIONS:
            return RejectReason.CAP_EXCEEDED
        if isinstance(reactions, dict):
            j.set(reactions, p.emoji, {ev.author})
        else:  # the shared empty table: the first reaction gives the message its own
            j.attr(message, "reactions", {p.emoji: {ev.author}})
    else:
        j.add(reactors, ev.author)
    return None


def apply_remove_reaction(state: ServerState, ev: Event, p: RemoveReaction, j: Journal) -> Outcome:
    message = state.messages.get(p.message)
    if message is None or message.deleted:
        return RejectReason.UNKNOWN_MESSAGE
    reactors = message.reactions.get(p.emoji)
    if reactors is None or ev.author not in reactors:
        return RejectReason.INVALID_TARGET
    j.discard(reactors, ev.author)
    reactions = message.reactions
    if not reactors and isinstance(reactions, dict):  # a reactor was found: a dict of its own
        j.pop(reactions, p.emoji)
    return None


def apply_add_emoji(state: ServerState, ev: Event, p: AddEmoji, j: Journal) -> Outcome:
    if not has_permission(state, ev.author, Permission.MANAGE_EMOJI):
        return RejectReason.MISSING_PERMISSION
    if not _SHORTCODE.fullmatch(p.name):
        return RejectReason.INVALID_TARGET
    if any(e.name == p.name for e in state.emoji.values()):
        return RejectReason.DUPLICATE_NAME
    if len(state.emoji) >= MAX_CUSTOM_EMOJI:
        return RejectReason.CAP_EXCEEDED
    j.set(state.emoji, ev.id, CustomEmoji(ev.id, p.name, p.image, p.mime, ev.author))
    return None


def apply_remove_emoji(state: ServerState, ev: Event, p: RemoveEmoji, j: Journal) -> Outcome:
    if not has_permission(state, ev.author, Permission.MANAGE_EMOJI):
        return RejectReason.MISSING_PERMISSION
    if j.pop(state.emoji, p.emoji) is None:
        return RejectReason.UNKNOWN_EMOJI
    return None

"""Sealed channels (D7): member keys, key epochs and shares, and sealed content.

Replay cannot read sealed content and does not try: it checks what it can (who may post where,
that a sealed item names an epoch of its channel, that a channel stays sealed) and records the
ciphertext (a sealed file message keeps its content hash in the clear, for fetching, as a
``FileRef`` with empty metadata: the name, type, size and dimensions are in the sealed item). An
epoch's shares are kept for every peer they were made for, even one who may not
read the channel when the rotation applies (a rotation concurrent with a kick): clients must
know such an epoch was exposed, and stop sending under it (``willow_core.keyring``). Within an
epoch the first share for a peer wins, so two members sharing the same epoch concurrently
converge on one record.
"""

from __future__ import annotations

from ..event import Event
from ..identity import verify_x25519_binding
from ..journal import Journal
from ..kinds import (
    CreateSealedChannel,
    CreateSealedThread,
    FileRef,
    KeyShare,
    PublishKey,
    RotateChannelKey,
    SealedEdit,
    SealedFileMessage,
    SealedMessage,
    ShareChannelKey,
)
from ..permissions import Permission, has_permission
from ..results import RejectReason
from ..state import Channel, ChatMessage, KeyEpoch, ServerState, Thread
from ._common import Outcome, needs_channel
from .channels import KEY_ENTRY_SLACK, MAX_CHANNELS

__all__ = [
    "apply_publish_key",
    "apply_create_sealed_channel",
    "apply_rotate_channel_key",
    "apply_share_channel_key",
    "apply_sealed_message",
    "apply_sealed_edit",
    "apply_create_sealed_thread",
    "apply_sealed_file_message",
    "MAX_EPOCHS_PER_CHANNEL",
]

#: Key epochs one channel may accumulate (a rotation a day for 27 years; more is abuse).
MAX_EPOCHS_PER_CHANNEL = 10_000
_VIEW = Permission.VIEW_CHANNEL


def apply_publish_key(state: ServerState, ev: Event, p: PublishKey, j: Journal) -> Outcome:
    if not any(p.x25519) or not verify_x25519_binding(ev.author, p.x25519, p.binding):
        return RejectReason.INVALID_TARGET
    j.set(state.member_keys, ev.author, p.x25519)
    return None


def apply_create_sealed_channel(
    state: ServerState, ev: Event, p: CreateSealedChannel, j: Journal
) -> Outcome:
    if not has_permission(state, ev.author, Permission.MANAGE_CHANNELS):
        return RejectReason.MISSING_PERMISSION
    if len(state.channels) >= MAX_CHANNELS:
        return RejectReason.CAP_EXCEEDED
    from ..kinds import ChannelKind

    channel = Channel(
        ev.id, p.name, ChannelKind.TEXT, p.topic, None, ev.author, ev.ts, True, p.history
    )
    j.set(state.channels, ev.id, channel)
    return None


def _sealed_channel(state: ServerState, ev: Event, channel_id: bytes) -> Outcome:
    reason = needs_channel(state, ev.author, channel_id, _VIEW)
    if reason is not None:
        return reason
    if not state.channels[channel_id].sealed:
        return RejectReason.NOT_SEALED
    return None


def _distinct(shares: tuple[KeyShare, ...]) -> bool:
    return len({share.peer for share in shares}) == len(shares)


def _add_shares(epoch: KeyEpoch, shares: tuple[KeyShare, ...], j: Journal) -> None:
    for share in shares:
        if share.peer not in epoch.shares:
            j.set(epoch.shares, share.peer, share.blob)


def apply_rotate_channel_key(
    state: ServerState, ev: Event, p: RotateChannelKey, j: Journal
) -> Outcome:
    reason = _sealed_channel(state, ev, p.channel)
    if reason is not None:
        return reason
    # Every check before any change: a refused event leaves no trace in the state.
    if len(p.shares) > len(state.members) + KEY_ENTRY_SLACK:
        return RejectReason.CAP_EXCEEDED
    if not _distinct(p.shares):
        return RejectReason.INVALID_TARGET
    epochs = state.channel_keys.get(p.channel)
    if epochs is not None and p.key in epochs:
        return RejectReason.INVALID_TARGET
    if epochs is not None and len(epochs) >= MAX_EPOCHS_PER_CHANNEL:
        return RejectReason.CAP_EXCEEDED
    if epochs is None:
        epochs = {}
        j.set(state.channel_keys, p.channel, epochs)
    epoch = KeyEpoch(p.key, len(epochs) + 1, ev.author, ev.id, ev.ts)
    j.set(epochs, p.key, epoch)
    _add_shares(epoch, p.shares, j)
    return None


def apply_share_channel_key(
    state: ServerState, ev: Event, p: ShareChannelKey, j: Journal
) -> Outcome:
    reason = _sealed_channel(state, ev, p.channel)
    if reason is not None:
        return reason
    epoch = state.channel_keys.get(p.channel, {}).get(p.key)
    if epoch is None:
        return RejectReason.UNKNOWN_KEY
    if len(p.shares) > len(state.members) + KEY_ENTRY_SLACK:
        return RejectReason.CAP_EXCEEDED
    if not _distinct(p.shares):
        return RejectReason.INVALID_TARGET
    _add_shares(epoch, p.shares, j)
    return None


def _knows(state: ServerState, channel_id: bytes, key: bytes) -> bool:
    return key in state.channel_keys.get(channel_id, ())


def _post_sealed(
    state: ServerState,
    ev: Event,
    channel_id: bytes,
    sealed: object,
    thread_id: bytes | None,
    reply_to: bytes | None,
    need: tuple[Permission, ...],
    j: Journal,
    file: FileRef | None = None,
) -> Outcome:
    reason = _sealed_channel(state, ev, channel_id)
    if reason is not None:
        return reason
    reason = needs_channel(state, ev.author, channel_id, *need)
    if reason is not None:
        return reason
    if not _knows(state, channel_id, sealed.key):  # type: ignore[attr-defined]
        return RejectReason.UNKNOWN_KEY
    thread = None
    if thread_id is not None:
        thread = state.threads.get(thread_id)
        if thread is None:
            return RejectReason.UNKNOWN_THREAD
        if thread.channel != channel_id:
            return RejectReason.INVALID_TARGET
    channel = state.channels[channel_id]
    message = ChatMessage(ev.id, channel_id, thread_id, ev.author, "", ev.ts, reply_to, file)
    message.sealed = sealed  # type: ignore[assignment]
    j.set(state.messages, ev.id, message)
    j.append(channel.messages if thread is None else thread.messages, ev.id)
    if ev.ts > channel.last_activity:
        j.attr(channel, "last_activity", ev.ts)
    return None


def apply_sealed_message(state: ServerState, ev: Event, p: SealedMessage, j: Journal) -> Outcome:
    return _post_sealed(
        state, ev, p.channel, p.sealed, p.thread, p.reply_to, (Permission.SEND_MESSAGES,), j
    )


def apply_sealed_file_message(
    state: ServerState, ev: Event, p: SealedFileMessage, j: Journal
) -> Outcome:
    need = (Permission.SEND_MESSAGES, Permission.ATTACH_FILES)
    file = FileRef(p.content, "", "", 0, 0, 0)  # the metadata is sealed; only the hash is not
    return _post_sealed(state, ev, p.channel, p.sealed, p.thread, p.reply_to, need, j, file)


def apply_sealed_edit(state: ServerState, ev: Event, p: SealedEdit, j: Journal) -> Outcome:
    message = state.messages.get(p.message)
    if message is None or message.deleted or message.sealed is None:
        return RejectReason.UNKNOWN_MESSAGE
    if message.author != ev.author:
        return RejectReason.NOT_AUTHOR
    if not _knows(state, message.channel, p.sealed.key):
        return RejectReason.UNKNOWN_KEY
    j.attr(message, "sealed", p.sealed)
    j.attr(message, "edited", True)
    return None


def apply_create_sealed_thread(
    state: ServerState, ev: Event, p: CreateSealedThread, j: Journal
) -> Outcome:
    reason = _sealed_channel(state, ev, p.channel)
    if reason is not None:
        return reason
    reason = needs_channel(state, ev.author, p.channel, Permission.CREATE_THREADS)
    if reason is not None:
        return reason
    if not _knows(state, p.channel, p.sealed.key):
        return RejectReason.UNKNOWN_KEY
    root = state.messages.get(p.root)
    if root is None or root.deleted:
        return RejectReason.UNKNOWN_MESSAGE
    if root.channel != p.channel or root.thread is not None:
        return RejectReason.INVALID_TARGET
    if any(t.root == p.root for t in state.threads.values()):
        return RejectReason.INVALID_TARGET
    j.set(state.threads, ev.id, Thread(ev.id, p.channel, p.root, "", ev.author, p.sealed))
    return None

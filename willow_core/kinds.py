"""Event kinds (D5): the 27 of the original plus what a Discord user expects.

Each kind has an immutable payload record (a ``NamedTuple``: cheap to build on the ingest hot
path) and a row in ``PAYLOAD_SPECS`` giving the wire codec of
its fields (a CBOR array in field order). Caps that do not depend on state (name lengths, emoji
bytes, key blob size) are enforced here, at decode, so an over-cap event never enters the DAG;
caps that depend on state (distinct reactions, key entries per member) are replay rejections.

Entities created by an event (channels, roles, threads, invites, emoji) are named by that event's
hash, so ids never collide and need no randomness. The built-in everyone role's id is the server id.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NamedTuple

from .errors import DecodeError
from .permissions import Permission
from .schema import (
    BOOL,
    ID,
    OPT_ID,
    SIG,
    UINT,
    Spec,
    blob,
    enum,
    enum_set,
    exact_bytes,
    list_of,
    optional,
    record,
    tagged,
    text,
)
from .sealing import KEY_ID_BYTES, SALT_BYTES, Sealed

__all__ = [
    "Kind",
    "ChannelKind",
    "EphemeralKind",
    "ThresholdMode",
    "OverwriteTarget",
    "HistoryVisibility",
    "MAX_NAME_CHARS",
    "MAX_SEALED_BYTES",
    "MAX_DISPLAY_NAME_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_TOPIC_CHARS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_EMOJI_BYTES",
    "MAX_KEY_BLOB_BYTES",
    "MAX_KEY_ENTRIES",
    "MIN_EPHEMERAL_MS",
    "MAX_EPHEMERAL_MS",
    "Payload",
    "PAYLOAD_SPECS",
    "PAYLOAD_KINDS",
    # payloads
    "CreateServer",
    "Propose",
    "Vote",
    "GrantPermission",
    "RevokePermission",
    "CreateChannel",
    "DeleteChannel",
    "RenameChannel",
    "ChannelRevive",
    "CreateRole",
    "DeleteRole",
    "SetPermission",
    "AssignRole",
    "Message",
    "FileMessage",
    "EditMessage",
    "DeleteMessage",
    "Reaction",
    "SetProfile",
    "UpdateProfile",
    "RotateChannelKey",
    "PinMessage",
    "UnpinMessage",
    "RenameServer",
    "SetServerDescription",
    "MuteChannel",
    "MuteGrove",
    "Join",
    "Leave",
    "UnassignRole",
    "RemoveReaction",
    "CreateThread",
    "AddEmoji",
    "RemoveEmoji",
    "SetChannelOverwrite",
    "CreateInvite",
    "RevokeInvite",
    "PublishKey",
    "CreateSealedChannel",
    "ShareChannelKey",
    "SealedMessage",
    "SealedEdit",
    "CreateSealedThread",
    "SealedFileMessage",
    "Sealed",
    # nested values
    "Ephemeral",
    "FileRef",
    "KeyShare",
    "ProfileDelta",
    "Threshold",
    "GrantAdmin",
    "RevokeAdmin",
    "KickMember",
    "UnbanMember",
    "SetVoteThreshold",
    "Action",
    "ACTION",
]

# --- caps (each enforced by the spec that uses it) -----------------------------------------
#: Channel, role, thread, server and emoji names, as in Discord.
MAX_NAME_CHARS = 100
MAX_DISPLAY_NAME_CHARS = 64
#: Discord allows 2000 (4000 with Nitro); bodies stay well inside one 256 KiB frame.
MAX_MESSAGE_CHARS = 4000
MAX_TOPIC_CHARS = 1024
MAX_DESCRIPTION_CHARS = 1024
#: An emoji (or ``:shortcode:``) as a reaction key; anything longer is not an emoji.
MAX_EMOJI_BYTES = 32
#: One wrapped channel key (ephemeral public key + 48-byte box + slack for a new suite).
MAX_KEY_BLOB_BYTES = 128
#: Key shares in one rotation event; a replay rule further caps them at members + 4.
MAX_KEY_ENTRIES = 1200
#: A sealed item: a 4000-character body in UTF-8 (up to 4 bytes a character) or file metadata,
#: plus its framing and the 16-byte tag.
MAX_SEALED_BYTES = 4 * MAX_MESSAGE_CHARS + 64
MAX_FILE_NAME_BYTES = 255
MAX_MIME_BYTES = 255
#: Largest image side worth describing; anything larger is hostile metadata.
MAX_IMAGE_SIDE = 16384
#: Ephemeral channels idle out between an hour and 90 days (the original's bounds).
MIN_EPHEMERAL_MS = 3_600_000
MAX_EPHEMERAL_MS = 90 * 86_400_000
MAX_PRONOUNS_CHARS = 32
MAX_BIO_CHARS = 240
MAX_TAGLINE_CHARS = 80


class Kind(IntEnum):
    """Wire tag of an event kind. Values are fixed forever."""

    CREATE_SERVER = 0
    PROPOSE = 1
    VOTE = 2
    GRANT_PERMISSION = 3
    REVOKE_PERMISSION = 4
    CREATE_CHANNEL = 5
    DELETE_CHANNEL = 6
    RENAME_CHANNEL = 7
    CHANNEL_REVIVE = 8
    CREATE_ROLE = 9
    DELETE_ROLE = 10
    SET_PERMISSION = 11
    ASSIGN_ROLE = 12
    MESSAGE = 13
    FILE_MESSAGE = 14
    EDIT_MESSAGE = 15
    DELETE_MESSAGE = 16
    REACTION = 17
    SET_PROFILE = 18
    UPDATE_PROFILE = 19
    ROTATE_CHANNEL_KEY = 20
    PIN_MESSAGE = 21
    UNPIN_MESSAGE = 22
    RENAME_SERVER = 23
    SET_SERVER_DESCRIPTION = 24
    MUTE_CHANNEL = 25
    MUTE_GROVE = 26
    JOIN = 27
    LEAVE = 28
    UNASSIGN_ROLE = 29
    REMOVE_REACTION = 30
    CREATE_THREAD = 31
    ADD_EMOJI = 32
    REMOVE_EMOJI = 33
    SET_CHANNEL_OVERWRITE = 34
    CREATE_INVITE = 35
    REVOKE_INVITE = 36
    PUBLISH_KEY = 37
    CREATE_SEALED_CHANNEL = 38
    SHARE_CHANNEL_KEY = 39
    SEALED_MESSAGE = 40
    SEALED_EDIT = 41
    CREATE_SEALED_THREAD = 42
    SEALED_FILE_MESSAGE = 43


class ChannelKind(IntEnum):
    TEXT = 0
    VOICE = 1


class EphemeralKind(IntEnum):
    CHANNEL = 0
    THREAD = 1
    WHISPER = 2


class ThresholdMode(IntEnum):
    MAJORITY = 0
    UNANIMOUS = 1
    COUNT = 2


class OverwriteTarget(IntEnum):
    ROLE = 0
    MEMBER = 1


class HistoryVisibility(IntEnum):
    """What a member who joins (or gains access) later may read in a sealed channel."""

    #: only what is sent from then on (older epochs are never shared with them)
    SINCE_JOINING = 0
    #: the whole history (members share older epochs with newcomers), as in Discord
    FULL = 1


# --- nested values ----------------------------------------------------------------------------


class Ephemeral(NamedTuple):
    kind: EphemeralKind
    idle_ms: int


class FileRef(NamedTuple):
    """Attachment metadata; ``content`` is the hash naming the file's manifest (D13)."""

    content: bytes
    name: str
    mime: str
    size: int
    width: int
    height: int


class KeyShare(NamedTuple):
    """One member's wrapped copy of a channel key."""

    peer: bytes
    blob: bytes


_KEEP: tuple[()] = ()


class ProfileDelta(NamedTuple):
    """Each field is ``()`` for unchanged, or ``(value,)`` where ``value`` may be None to clear."""

    display_name: tuple[str | None] | tuple[()] = _KEEP
    pronouns: tuple[str | None] | tuple[()] = _KEEP
    bio: tuple[str | None] | tuple[()] = _KEEP
    tagline: tuple[str | None] | tuple[()] = _KEEP
    crest_color: tuple[int | None] | tuple[()] = _KEEP
    avatar: tuple[bytes | None] | tuple[()] = _KEEP


class Threshold(NamedTuple):
    """``required`` is the vote count for ``COUNT`` mode (capped at the number of admins)."""

    mode: ThresholdMode
    required: int = 0


class GrantAdmin(NamedTuple):
    peer: bytes


class RevokeAdmin(NamedTuple):
    peer: bytes


class KickMember(NamedTuple):
    """Remove a member; with ``ban`` they cannot join again until unbanned."""

    peer: bytes
    ban: bool


class UnbanMember(NamedTuple):
    peer: bytes


class SetVoteThreshold(NamedTuple):
    threshold: Threshold


Action = GrantAdmin | RevokeAdmin | KickMember | UnbanMember | SetVoteThreshold

# --- payloads, one per kind -------------------------------------------------------------------


class CreateServer(NamedTuple):
    name: str


class Propose(NamedTuple):
    action: Action


class Vote(NamedTuple):
    proposal: bytes
    accept: bool


class GrantPermission(NamedTuple):
    peer: bytes
    permission: Permission


class RevokePermission(NamedTuple):
    peer: bytes
    permission: Permission


class CreateChannel(NamedTuple):
    name: str
    channel_kind: ChannelKind = ChannelKind.TEXT
    topic: str = ""
    ephemeral: Ephemeral | None = None


class DeleteChannel(NamedTuple):
    channel: bytes


class RenameChannel(NamedTuple):
    channel: bytes
    name: str
    topic: str = ""


class ChannelRevive(NamedTuple):
    channel: bytes


class CreateRole(NamedTuple):
    name: str
    color: int = 0


class DeleteRole(NamedTuple):
    role: bytes


class SetPermission(NamedTuple):
    role: bytes
    permission: Permission
    granted: bool


class AssignRole(NamedTuple):
    peer: bytes
    role: bytes


class Message(NamedTuple):
    channel: bytes
    body: str
    thread: bytes | None = None
    reply_to: bytes | None = None


class FileMessage(NamedTuple):
    channel: bytes
    file: FileRef
    body: str = ""
    thread: bytes | None = None
    reply_to: bytes | None = None


class EditMessage(NamedTuple):
    message: bytes
    body: str


class DeleteMessage(NamedTuple):
    message: bytes


class Reaction(NamedTuple):
    message: bytes
    emoji: str


class SetProfile(NamedTuple):
    display_name: str


class UpdateProfile(NamedTuple):
    delta: ProfileDelta


class RotateChannelKey(NamedTuple):
    """Start a new key epoch in a sealed channel: ``key`` is the epoch's key id (``sealing``),
    ``shares`` the key wrapped for each member who may read the channel."""

    channel: bytes
    key: bytes
    shares: tuple[KeyShare, ...]


class ShareChannelKey(NamedTuple):
    """Wrap an existing epoch's key for more members (newcomers, or members given access)."""

    channel: bytes
    key: bytes
    shares: tuple[KeyShare, ...]


class PublishKey(NamedTuple):
    """A member's X25519 key for key shares, with the identity's signature binding it."""

    x25519: bytes
    binding: bytes


class CreateSealedChannel(NamedTuple):
    """An end-to-end encrypted channel: only sealed content may be posted in it."""

    name: str
    topic: str = ""
    history: HistoryVisibility = HistoryVisibility.FULL


class SealedMessage(NamedTuple):
    channel: bytes
    sealed: Sealed
    thread: bytes | None = None
    reply_to: bytes | None = None


class SealedEdit(NamedTuple):
    message: bytes
    sealed: Sealed


class CreateSealedThread(NamedTuple):
    channel: bytes
    root: bytes
    sealed: Sealed


class SealedFileMessage(NamedTuple):
    """An attachment whose metadata (name, type, size, dimensions, caption) is sealed."""

    channel: bytes
    content: bytes
    sealed: Sealed
    thread: bytes | None = None
    reply_to: bytes | None = None


class PinMessage(NamedTuple):
    channel: bytes
    message: bytes


class UnpinMessage(NamedTuple):
    channel: bytes
    message: bytes


class RenameServer(NamedTuple):
    name: str


class SetServerDescription(NamedTuple):
    description: str


class MuteChannel(NamedTuple):
    channel: bytes
    muted: bool


class MuteGrove(NamedTuple):
    muted: bool


class Join(NamedTuple):
    """Join with an invite: ``proof`` is the invite key's signature over the joiner's key."""

    invite: bytes
    proof: bytes


class Leave(NamedTuple):
    """Leave the community (the last admin cannot)."""


class UnassignRole(NamedTuple):
    peer: bytes
    role: bytes


class RemoveReaction(NamedTuple):
    message: bytes
    emoji: str


class CreateThread(NamedTuple):
    channel: bytes
    root: bytes
    name: str


class AddEmoji(NamedTuple):
    name: str
    image: bytes
    mime: str


class RemoveEmoji(NamedTuple):
    emoji: bytes


class SetChannelOverwrite(NamedTuple):
    """Replace one overwrite; empty ``allow`` and ``deny`` clear it."""

    channel: bytes
    target_kind: OverwriteTarget
    target: bytes
    allow: frozenset[Permission]
    deny: frozenset[Permission]


class CreateInvite(NamedTuple):
    """An invite whose secret key travels in the link; replay enforces uses and expiry."""

    key: bytes
    max_uses: int = 0
    expires_at_ms: int = 0


class RevokeInvite(NamedTuple):
    invite: bytes


Payload = (
    CreateServer
    | Propose
    | Vote
    | GrantPermission
    | RevokePermission
    | CreateChannel
    | DeleteChannel
    | RenameChannel
    | ChannelRevive
    | CreateRole
    | DeleteRole
    | SetPermission
    | AssignRole
    | Message
    | FileMessage
    | EditMessage
    | DeleteMessage
    | Reaction
    | SetProfile
    | UpdateProfile
    | RotateChannelKey
    | PinMessage
    | UnpinMessage
    | RenameServer
    | SetServerDescription
    | MuteChannel
    | MuteGrove
    | Join
    | Leave
    | UnassignRole
    | RemoveReaction
    | CreateThread
    | AddEmoji
    | RemoveEmoji
    | SetChannelOverwrite
    | CreateInvite
    | RevokeInvite
    | PublishKey
    | CreateSealedChannel
    | ShareChannelKey
    | SealedMessage
    | SealedEdit
    | CreateSealedThread
    | SealedFileMessage
)

# --- wire specs -------------------------------------------------------------------------------


def _emoji() -> Spec[str]:
    return text(
        MAX_EMOJI_BYTES,
        min_chars=1,
        max_bytes=MAX_EMOJI_BYTES,
        name=f"emoji<={MAX_EMOJI_BYTES}B",
    )


def _bounded(spec: Spec[int], low: int, high: int) -> Spec[int]:
    def check(value: Any) -> int:
        number = spec.decode(value)
        if not low <= number <= high:
            raise DecodeError(f"{number} is outside {low}..{high}")
        return number

    return Spec(f"uint in {low}..{high}", check, spec.encode)


def _keep_or(spec: Spec[Any]) -> Spec[tuple[Any, ...]]:
    """``[]`` = unchanged, ``[value]`` = set (value may be null = clear)."""
    inner = optional(spec)

    def check(value: Any) -> tuple[Any, ...]:
        if type(value) is not list or len(value) > 1:
            raise DecodeError("profile field must be [] or [value]")
        return tuple(inner.decode(v) for v in value)

    return Spec(
        f"keep or {spec.name}", check, lambda t: [inner.encode(v) for v in t], trusted=tuple
    )


NAME = text(MAX_NAME_CHARS, min_chars=1)
EMOJI = _emoji()
BODY = text(MAX_MESSAGE_CHARS)
PERMISSION = enum(Permission)
COLOR = _bounded(UINT, 0, 0xFFFFFF)

_THRESHOLD = record(Threshold, (enum(ThresholdMode), _bounded(UINT, 0, 2**32 - 1)))
ACTION = tagged(
    {
        0: (GrantAdmin, record(GrantAdmin, (ID,))),
        1: (RevokeAdmin, record(RevokeAdmin, (ID,))),
        2: (KickMember, record(KickMember, (ID, BOOL))),
        3: (UnbanMember, record(UnbanMember, (ID,))),
        4: (SetVoteThreshold, record(SetVoteThreshold, (_THRESHOLD,))),
    },
    "Action",
)

_FILE = record(
    FileRef,
    (
        ID,
        text(MAX_FILE_NAME_BYTES, min_chars=1),
        text(MAX_MIME_BYTES),
        UINT,
        _bounded(UINT, 0, MAX_IMAGE_SIDE),
        _bounded(UINT, 0, MAX_IMAGE_SIDE),
    ),
)
_EPHEMERAL = record(
    Ephemeral, (enum(EphemeralKind), _bounded(UINT, MIN_EPHEMERAL_MS, MAX_EPHEMERAL_MS))
)
_SHARE = record(KeyShare, (ID, blob(MAX_KEY_BLOB_BYTES)))
KEY_ID = exact_bytes(KEY_ID_BYTES)
_SEALED = record(Sealed, (KEY_ID, exact_bytes(SALT_BYTES), blob(MAX_SEALED_BYTES)))
_DELTA = record(
    ProfileDelta,
    (
        _keep_or(text(MAX_DISPLAY_NAME_CHARS, min_chars=1)),
        _keep_or(text(MAX_PRONOUNS_CHARS)),
        _keep_or(text(MAX_BIO_CHARS)),
        _keep_or(text(MAX_TAGLINE_CHARS)),
        _keep_or(COLOR),
        _keep_or(ID),
    ),
)

PAYLOAD_SPECS: dict[Kind, Spec[Any]] = {
    Kind.CREATE_SERVER: record(CreateServer, (NAME,)),
    Kind.PROPOSE: record(Propose, (ACTION,)),
    Kind.VOTE: record(Vote, (ID, BOOL)),
    Kind.GRANT_PERMISSION: record(GrantPermission, (ID, PERMISSION)),
    Kind.REVOKE_PERMISSION: record(RevokePermission, (ID, PERMISSION)),
    Kind.CREATE_CHANNEL: record(
        CreateChannel, (NAME, enum(ChannelKind), text(MAX_TOPIC_CHARS), optional(_EPHEMERAL))
    ),
    Kind.DELETE_CHANNEL: record(DeleteChannel, (ID,)),
    Kind.RENAME_CHANNEL: record(RenameChannel, (ID, NAME, text(MAX_TOPIC_CHARS))),
    Kind.CHANNEL_REVIVE: record(ChannelRevive, (ID,)),
    Kind.CREATE_ROLE: record(CreateRole, (NAME, COLOR)),
    Kind.DELETE_ROLE: record(DeleteRole, (ID,)),
    Kind.SET_PERMISSION: record(SetPermission, (ID, PERMISSION, BOOL)),
    Kind.ASSIGN_ROLE: record(AssignRole, (ID, ID)),
    Kind.MESSAGE: record(Message, (ID, BODY, OPT_ID, OPT_ID)),
    Kind.FILE_MESSAGE: record(FileMessage, (ID, _FILE, BODY, OPT_ID, OPT_ID)),
    Kind.EDIT_MESSAGE: record(EditMessage, (ID, BODY)),
    Kind.DELETE_MESSAGE: record(DeleteMessage, (ID,)),
    Kind.REACTION: record(Reaction, (ID, EMOJI)),
    Kind.SET_PROFILE: record(SetProfile, (text(MAX_DISPLAY_NAME_CHARS, min_chars=1),)),
    Kind.UPDATE_PROFILE: record(UpdateProfile, (_DELTA,)),
    Kind.ROTATE_CHANNEL_KEY: record(
        RotateChannelKey, (ID, KEY_ID, list_of(_SHARE, MAX_KEY_ENTRIES))
    ),
    Kind.PIN_MESSAGE: record(PinMessage, (ID, ID)),
    Kind.UNPIN_MESSAGE: record(UnpinMessage, (ID, ID)),
    Kind.RENAME_SERVER: record(RenameServer, (NAME,)),
    Kind.SET_SERVER_DESCRIPTION: record(SetServerDescription, (text(MAX_DESCRIPTION_CHARS),)),
    Kind.MUTE_CHANNEL: record(MuteChannel, (ID, BOOL)),
    Kind.MUTE_GROVE: record(MuteGrove, (BOOL,)),
    Kind.JOIN: record(Join, (ID, SIG)),
    Kind.LEAVE: record(Leave, ()),
    Kind.UNASSIGN_ROLE: record(UnassignRole, (ID, ID)),
    Kind.REMOVE_REACTION: record(RemoveReaction, (ID, EMOJI)),
    Kind.CREATE_THREAD: record(CreateThread, (ID, ID, NAME)),
    Kind.ADD_EMOJI: record(AddEmoji, (text(32, min_chars=2), ID, text(MAX_MIME_BYTES))),
    Kind.REMOVE_EMOJI: record(RemoveEmoji, (ID,)),
    Kind.SET_CHANNEL_OVERWRITE: record(
        SetChannelOverwrite,
        (ID, enum(OverwriteTarget), ID, enum_set(Permission), enum_set(Permission)),
    ),
    Kind.CREATE_INVITE: record(CreateInvite, (ID, UINT, UINT)),
    Kind.REVOKE_INVITE: record(RevokeInvite, (ID,)),
    Kind.PUBLISH_KEY: record(PublishKey, (ID, SIG)),
    Kind.CREATE_SEALED_CHANNEL: record(
        CreateSealedChannel, (NAME, text(MAX_TOPIC_CHARS), enum(HistoryVisibility))
    ),
    Kind.SHARE_CHANNEL_KEY: record(ShareChannelKey, (ID, KEY_ID, list_of(_SHARE, MAX_KEY_ENTRIES))),
    Kind.SEALED_MESSAGE: record(SealedMessage, (ID, _SEALED, OPT_ID, OPT_ID)),
    Kind.SEALED_EDIT: record(SealedEdit, (ID, _SEALED)),
    Kind.CREATE_SEALED_THREAD: record(CreateSealedThread, (ID, ID, _SEALED)),
    Kind.SEALED_FILE_MESSAGE: record(SealedFileMessage, (ID, ID, _SEALED, OPT_ID, OPT_ID)),
}

#: Payload class -> kind, for encoding.
PAYLOAD_KINDS: dict[type[Any], Kind] = {
    CreateServer: Kind.CREATE_SERVER,
    Propose: Kind.PROPOSE,
    Vote: Kind.VOTE,
    GrantPermission: Kind.GRANT_PERMISSION,
    RevokePermission: Kind.REVOKE_PERMISSION,
    CreateChannel: Kind.CREATE_CHANNEL,
    DeleteChannel: Kind.DELETE_CHANNEL,
    RenameChannel: Kind.RENAME_CHANNEL,
    ChannelRevive: Kind.CHANNEL_REVIVE,
    CreateRole: Kind.CREATE_ROLE,
    DeleteRole: Kind.DELETE_ROLE,
    SetPermission: Kind.SET_PERMISSION,
    AssignRole: Kind.ASSIGN_ROLE,
    Message: Kind.MESSAGE,
    FileMessage: Kind.FILE_MESSAGE,
    EditMessage: Kind.EDIT_MESSAGE,
    DeleteMessage: Kind.DELETE_MESSAGE,
    Reaction: Kind.REACTION,
    SetProfile: Kind.SET_PROFILE,
    UpdateProfile: Kind.UPDATE_PROFILE,
    RotateChannelKey: Kind.ROTATE_CHANNEL_KEY,
    PinMessage: Kind.PIN_MESSAGE,
    UnpinMessage: Kind.UNPIN_MESSAGE,
    RenameServer: Kind.RENAME_SERVER,
    SetServerDescription: Kind.SET_SERVER_DESCRIPTION,
    MuteChannel: Kind.MUTE_CHANNEL,
    MuteGrove: Kind.MUTE_GROVE,
    Join: Kind.JOIN,
    Leave: Kind.LEAVE,
    UnassignRole: Kind.UNASSIGN_ROLE,
    RemoveReaction: Kind.REMOVE_REACTION,
    CreateThread: Kind.CREATE_THREAD,
    AddEmoji: Kind.ADD_EMOJI,
    RemoveEmoji: Kind.REMOVE_EMOJI,
    SetChannelOverwrite: Kind.SET_CHANNEL_OVERWRITE,
    CreateInvite: Kind.CREATE_INVITE,
    RevokeInvite: Kind.REVOKE_INVITE,
    PublishKey: Kind.PUBLISH_KEY,
    CreateSealedChannel: Kind.CREATE_SEALED_CHANNEL,
    ShareChannelKey: Kind.SHARE_CHANNEL_KEY,
    SealedMessage: Kind.SEALED_MESSAGE,
    SealedEdit: Kind.SEALED_EDIT,
    CreateSealedThread: Kind.CREATE_SEALED_THREAD,
    SealedFileMessage: Kind.SEALED_FILE_MESSAGE,
}

"""The materialized state of one community, and its digest.

State is mutable only inside replay (through a ``Journal``); everything else reads it. Records
use ``__slots__`` classes rather than frozen dataclasses because replay mutates them in place and
the undo journal restores attributes. ``state_hash`` is SHA-256 over a canonical CBOR rendering
with every collection sorted, so two peers can compare states with one 32-byte value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .encoding import encode
from .errors import DecodeError
from .kinds import (
    ACTION,
    ChannelKind,
    Ephemeral,
    EphemeralKind,
    FileRef,
    HistoryVisibility,
    Sealed,
    Threshold,
    ThresholdMode,
)
from .permissions import DEFAULT_EVERYONE_PERMISSIONS, Permission

__all__ = [
    "ServerState",
    "Member",
    "Role",
    "Overwrite",
    "Channel",
    "Thread",
    "ChatMessage",
    "Pin",
    "Profile",
    "Invite",
    "Proposal",
    "CustomEmoji",
    "KeyEpoch",
    "state_hash",
    "state_from_obj",
    "NO_REACTIONS",
]


class Member:
    __slots__ = ("peer", "roles", "joined_at", "invite")

    def __init__(self, peer: bytes, joined_at: int, invite: bytes | None = None) -> None:
        self.peer = peer
        self.roles: set[bytes] = set()
        self.joined_at = joined_at
        self.invite = invite


class Role:
    __slots__ = ("id", "name", "color", "permissions")

    def __init__(self, id: bytes, name: str, color: int, permissions: frozenset[Permission]):
        self.id = id
        self.name = name
        self.color = color
        self.permissions = permissions


class Overwrite:
    __slots__ = ("allow", "deny")

    def __init__(self, allow: frozenset[Permission], deny: frozenset[Permission]) -> None:
        self.allow = allow
        self.deny = deny


class Pin:
    __slots__ = ("pinner", "pinned_at")

    def __init__(self, pinner: bytes, pinned_at: int) -> None:
        self.pinner = pinner
        self.pinned_at = pinned_at


class Channel:
    __slots__ = (
        "id",
        "name",
        "kind",
        "topic",
        "ephemeral",
        "creator",
        "overwrites",
        "pins",
        "messages",
        "last_activity",
        "sealed",
        "history",
    )

    def __init__(
        self,
        id: bytes,
        name: str,
        kind: ChannelKind,
        topic: str,
        ephemeral: Ephemeral | None,
        creator: bytes,
        created_at: int,
        sealed: bool = False,
        history: HistoryVisibility = HistoryVisibility.FULL,
    ) -> None:
        self.id = id
        self.name = name
        self.kind = kind
        self.topic = topic
        self.ephemeral = ephemeral
        self.creator = creator
        self.overwrites: dict[bytes, Overwrite] = {}
        self.pins: dict[bytes, Pin] = {}
        self.messages: list[bytes] = []
        self.last_activity = created_at
        #: an end-to-end encrypted channel: only sealed content is accepted in it
        self.sealed = sealed
        self.history = history


class Thread:
    __slots__ = ("id", "channel", "root", "name", "creator", "messages", "sealed")

    def __init__(
        self,
        id: bytes,
        channel: bytes,
        root: bytes,
        name: str,
        creator: bytes,
        sealed: Sealed | None = None,
    ):
        self.id = id
        self.channel = channel
        self.root = root
        self.name = name
        self.creator = creator
        self.messages: list[bytes] = []
        #: the sealed title (``name`` is empty then)
        self.sealed = sealed


class KeyEpoch:
    """One key epoch of a sealed channel: who started it, and each member's wrapped key."""

    __slots__ = ("key", "number", "rotator", "event", "started", "shares")

    def __init__(self, key: bytes, number: int, rotator: bytes, event: bytes, started: int) -> None:
        self.key = key
        self.number = number
        self.rotator = rotator
        self.event = event
        #: the rotation event's timestamp (for age-based rotation)
        self.started = started
        self.shares: dict[bytes, bytes] = {}


#: The reactions of every message nobody has reacted to: one shared read-only table rather than
#: an empty dict per message (most messages never get one, and a whole history's worth of
#: dicts is that much more for the garbage collector). Replay gives a message its own dict on
#: its first reaction.
NO_REACTIONS: Mapping[str, set[bytes]] = MappingProxyType({})


class ChatMessage:
    __slots__ = (
        "id",
        "channel",
        "thread",
        "author",
        "body",
        "ts",
        "edited",
        "deleted",
        "reactions",
        "reply_to",
        "file",
        "sealed",
    )

    def __init__(
        self,
        id: bytes,
        channel: bytes,
        thread: bytes | None,
        author: bytes,
        body: str,
        ts: int,
        reply_to: bytes | None,
        file: FileRef | None,
        sealed: Sealed | None = None,
    ) -> None:
        self.id = id
        self.channel = channel
        self.thread = thread
        self.author = author
        self.body = body
        self.ts = ts
        self.edited = False
        self.deleted = False
        #: emoji -> who reacted; ``NO_REACTIONS`` (shared, read-only) until the first reaction
        self.reactions: Mapping[str, set[bytes]] = NO_REACTIONS
        self.reply_to = reply_to
        self.file = file
        #: sealed content (body, or attachment metadata); ``body`` is empty then
        self.sealed = sealed


class Profile:
    __slots__ = ("display_name", "pronouns", "bio", "tagline", "crest_color", "avatar")

    def __init__(self) -> None:
        self.display_name: str | None = None
        self.pronouns: str | None = None
        self.bio: str | None = None
        self.tagline: str | None = None
        self.crest_color: int | None = None
        self.avatar: bytes | None = None


class Invite:
    __slots__ = ("id", "creator", "key", "max_uses", "expires_at", "uses", "revoked")

    def __init__(self, id: bytes, creator: bytes, key: bytes, max_uses: int, expires_at: int):
        self.id = id
        self.creator = creator
        self.key = key
        self.max_uses = max_uses
        self.expires_at = expires_at
        self.uses = 0
        self.revoked = False


class Proposal:
    __slots__ = ("id", "action", "proposer", "votes")

    def __init__(self, id: bytes, action: Any, proposer: bytes) -> None:
        self.id = id
        self.action = action
        self.proposer = proposer
        self.votes: dict[bytes, bool] = {proposer: True}


class CustomEmoji:
    __slots__ = ("id", "name", "image", "mime", "creator")

    def __init__(self, id: bytes, name: str, image: bytes, mime: str, creator: bytes) -> None:
        self.id = id
        self.name = name
        self.image = image
        self.mime = mime
        self.creator = creator


class ServerState:
    """Everything replay derives for one community."""

    __slots__ = (
        "server_id",
        "name",
        "description",
        "owner",
        "everyone_role",
        "admins",
        "members",
        "banned",
        "peer_permissions",
        "roles",
        "channels",
        "threads",
        "messages",
        "profiles",
        "channel_keys",
        "member_keys",
        "channel_mutes",
        "grove_mutes",
        "invites",
        "proposals",
        "emoji",
        "threshold",
        "rejected",
        "perm_cache",
    )

    def __init__(self, server_id: bytes, name: str, owner: bytes, created_at: int) -> None:
        self.server_id = server_id
        self.name = name
        self.description = ""
        self.owner = owner
        #: The everyone role shares the server's id, as in Discord.
        self.everyone_role = server_id
        self.admins: set[bytes] = {owner}
        self.members: dict[bytes, Member] = {owner: Member(owner, created_at)}
        self.banned: set[bytes] = set()
        self.peer_permissions: dict[bytes, frozenset[Permission]] = {}
        self.roles: dict[bytes, Role] = {
            server_id: Role(server_id, "everyone", 0, DEFAULT_EVERYONE_PERMISSIONS)
        }
        self.channels: dict[bytes, Channel] = {}
        self.threads: dict[bytes, Thread] = {}
        self.messages: dict[bytes, ChatMessage] = {}
        self.profiles: dict[bytes, Profile] = {}
        #: sealed channel -> key id -> epoch, in the order the epochs began (the last is newest)
        self.channel_keys: dict[bytes, dict[bytes, KeyEpoch]] = {}
        #: member -> X25519 key for key shares (bound to their identity by signature)
        self.member_keys: dict[bytes, bytes] = {}
        self.channel_mutes: dict[bytes, set[bytes]] = {}
        self.grove_mutes: set[bytes] = set()
        self.invites: dict[bytes, Invite] = {}
        self.proposals: dict[bytes, Proposal] = {}
        self.emoji: dict[bytes, CustomEmoji] = {}
        self.threshold = Threshold(ThresholdMode.MAJORITY)
        #: event id -> reason, for every event replay refused (the UI explains them).
        self.rejected: dict[bytes, int] = {}
        #: (peer, channel or None) -> effective permissions. Derived, not state: cleared by
        #: ``forget_derived`` whenever permissions may have changed (or replay rewinds).
        self.perm_cache: dict[tuple[bytes, bytes | None], frozenset[Permission]] = {}

    def forget_derived(self) -> None:
        """Drop cached derivations (after anything that may change permissions)."""
        self.perm_cache.clear()

    def to_obj(self) -> Any:
        """A canonical, fully sorted rendering of the state (the state hash's preimage)."""
        return [
            "willow/state/v2",
            self.server_id,
            self.name,
            self.description,
            self.owner,
            sorted(self.admins),
            [[p, sorted(m.roles), m.joined_at, m.invite] for p, m in sorted(self.members.items())],
            sorted(self.banned),
            [[p, sorted(int(x) for x in s)] for p, s in sorted(self.peer_permissions.items())],
            [
                [r.id, r.name, r.color, sorted(int(x) for x in r.permissions)]
                for _, r in sorted(self.roles.items())
            ],
            [_channel_obj(c) for _, c in sorted(self.channels.items())],
            [
                [t.id, t.channel, t.root, t.name, t.creator, t.messages, _sealed_obj(t.sealed)]
                for _, t in sorted(self.threads.items())
            ],
            [_message_obj(m) for _, m in sorted(self.messages.items())],
            [
                [p, pr.display_name, pr.pronouns, pr.bio, pr.tagline, pr.crest_color, pr.avatar]
                for p, pr in sorted(self.profiles.items())
            ],
            [
                [
                    c,
                    [
                        [k, e.number, e.rotator, e.event, e.started, sorted(e.shares.items())]
                        for k, e in epochs.items()  # in the order they began (not sorted)
                    ],
                ]
                for c, epochs in sorted(self.channel_keys.items())
            ],
            sorted(self.member_keys.items()),
            [[c, sorted(peers)] for c, peers in sorted(self.channel_mutes.items())],
            sorted(self.grove_mutes),
            [
                [i.id, i.creator, i.key, i.max_uses, i.expires_at, i.uses, i.revoked]
                for _, i in sorted(self.invites.items())
            ],
            [
                [p.id, p.proposer, ACTION.encode(p.action), sorted(p.votes.items())]
                for _, p in sorted(self.proposals.items())
            ],
            [[e.id, e.name, e.image, e.mime, e.creator] for _, e in sorted(self.emoji.items())],
            [int(self.threshold.mode), self.threshold.required],
            sorted(self.rejected.items()),
        ]


def _channel_obj(c: Channel) -> Any:
    return [
        c.id,
        c.name,
        int(c.kind),
        c.topic,
        None if c.ephemeral is None else [int(c.ephemeral.kind), c.ephemeral.idle_ms],
        c.creator,
        [
            [t, sorted(int(x) for x in o.allow), sorted(int(x) for x in o.deny)]
            for t, o in sorted(c.overwrites.items())
        ],
        [[m, p.pinner, p.pinned_at] for m, p in sorted(c.pins.items())],
        c.messages,
        c.last_activity,
        c.sealed,
        int(c.history),
    ]


def _sealed_obj(sealed: Sealed | None) -> Any:
    return None if sealed is None else [sealed.key, sealed.salt, sealed.box]


def _sealed_from(value: Any) -> Sealed | None:
    return None if value is None else Sealed(value[0], value[1], value[2])


def _message_obj(m: ChatMessage) -> Any:
    f = m.file
    return [
        m.id,
        m.channel,
        m.thread,
        m.author,
        m.body,
        m.ts,
        m.edited,
        m.deleted,
        [[e, sorted(peers)] for e, peers in sorted(m.reactions.items())],
        m.reply_to,
        None if f is None else [f.content, f.name, f.mime, f.size, f.width, f.height],
        _sealed_obj(m.sealed),
    ]


def state_from_obj(obj: Any) -> ServerState:
    """Rebuild a state from ``to_obj`` output (a snapshot); raises ``DecodeError`` if malformed.

    The result is only as trustworthy as its source: callers compare ``state_hash`` with a
    replay of the full history before treating it as verified.
    """
    try:
        return _from_obj(obj)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise DecodeError(f"malformed state: {exc}") from None


def _perms(values: Any) -> frozenset[Permission]:
    return frozenset(Permission(v) for v in values)


def _from_obj(obj: Any) -> ServerState:
    (
        tag,
        server_id,
        name,
        description,
        owner,
        admins,
        members,
        banned,
        peer_permissions,
        roles,
        channels,
        threads,
        messages,
        profiles,
        channel_keys,
        member_keys,
        channel_mutes,
        grove_mutes,
        invites,
        proposals,
        emoji,
        threshold,
        rejected,
    ) = obj
    if tag != "willow/state/v2":
        raise ValueError("not a willow/state/v2 object")
    st = ServerState(server_id, name, owner, 0)
    st.description = description
    st.admins = set(admins)
    st.members = {}
    for peer, member_roles, joined_at, invite in members:
        member = Member(peer, joined_at, invite)
        member.roles = set(member_roles)
        st.members[peer] = member
    st.banned = set(banned)
    st.peer_permissions = {p: _perms(v) for p, v in peer_permissions}
    st.roles = {r[0]: Role(r[0], r[1], r[2], _perms(r[3])) for r in roles}
    for c in channels:
        eph = None if c[4] is None else Ephemeral(EphemeralKind(c[4][0]), c[4][1])
        channel = Channel(
            c[0],
            c[1],
            ChannelKind(c[2]),
            c[3],
            eph,
            c[5],
            c[9],
            bool(c[10]),
            HistoryVisibility(c[11]),
        )
        channel.overwrites = {t: Overwrite(_perms(a), _perms(d)) for t, a, d in c[6]}
        channel.pins = {m: Pin(p, at) for m, p, at in c[7]}
        channel.messages = list(c[8])
        st.channels[c[0]] = channel
    for t in threads:
        thread = Thread(t[0], t[1], t[2], t[3], t[4], _sealed_from(t[6]))
        thread.messages = list(t[5])
        st.threads[t[0]] = thread
    for m in messages:
        f = None if m[10] is None else FileRef(*m[10])
        msg = ChatMessage(m[0], m[1], m[2], m[3], m[4], m[5], m[9], f, _sealed_from(m[11]))
        msg.edited, msg.deleted = bool(m[6]), bool(m[7])
        msg.reactions = {e: set(peers) for e, peers in m[8]} or NO_REACTIONS
        st.messages[m[0]] = msg
    for p, *fields in profiles:
        profile = Profile()
        (
            profile.display_name,
            profile.pronouns,
            profile.bio,
            profile.tagline,
            profile.crest_color,
            profile.avatar,
        ) = fields
        st.profiles[p] = profile
    for c, epochs in channel_keys:
        st.channel_keys[c] = {}
        for key, number, rotator, event, started, shares in epochs:
            epoch = KeyEpoch(key, number, rotator, event, started)
            epoch.shares = dict(shares)
            st.channel_keys[c][key] = epoch
    st.member_keys = dict(member_keys)
    st.channel_mutes = {c: set(peers) for c, peers in channel_mutes}
    st.grove_mutes = set(grove_mutes)
    for i in invites:
        invite = Invite(i[0], i[1], i[2], i[3], i[4])
        invite.uses, invite.revoked = i[5], bool(i[6])
        st.invites[i[0]] = invite
    for pid, proposer, action, votes in proposals:
        proposal = Proposal(pid, ACTION.decode(action), proposer)
        proposal.votes = {peer: bool(v) for peer, v in votes}
        st.proposals[pid] = proposal
    st.emoji = {e[0]: CustomEmoji(*e) for e in emoji}
    st.threshold = Threshold(ThresholdMode(threshold[0]), threshold[1])
    st.rejected = {event_id: reason for event_id, reason in rejected}
    return st


def state_hash(state: ServerState) -> bytes:
    """SHA-256 of the canonical state: equal on two peers exactly when their states agree."""
    return hashlib.sha256(encode(state.to_obj())).digest()

"""Caps (ARCHITECTURE.md section 3): state-free caps refuse an event before it exists (at
``sign_event``, and at ``decode_event`` for hostile bytes); caps that depend on state are replay
rejections with ``CAP_EXCEEDED``.
"""

from __future__ import annotations

from typing import Any

import pytest

from willow_core import DecodeError, Event, LocalError, RejectReason, decode_event, sign_event
from willow_core.apply.channels import KEY_ENTRY_SLACK, MAX_PINS_PER_CHANNEL
from willow_core.apply.messages import MAX_DISTINCT_REACTIONS
from willow_core.event import MAX_DEPS, ZERO_ID
from willow_core.kinds import (
    MAX_DISPLAY_NAME_CHARS,
    MAX_EMOJI_BYTES,
    MAX_EPHEMERAL_MS,
    MAX_KEY_BLOB_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_NAME_CHARS,
    MIN_EPHEMERAL_MS,
    CreateChannel,
    CreateRole,
    CreateSealedChannel,
    CreateServer,
    CreateThread,
    EditMessage,
    Ephemeral,
    EphemeralKind,
    FileMessage,
    FileRef,
    KeyShare,
    Kind,
    Message,
    Payload,
    PinMessage,
    ProfileDelta,
    Reaction,
    RemoveReaction,
    RenameChannel,
    RenameServer,
    RotateChannelKey,
    SetProfile,
    UnpinMessage,
    UpdateProfile,
)
from willow_core.permissions import Permission
from willow_core.testing import seed_bytes

from .helpers import Room, forge, ident, pk, raw_wire, room

R = RejectReason


def _sign(r: Room, label: str, payload: Payload) -> Event:
    """Sign ``payload`` as ``label`` on top of the room (sign_event checks state-free caps)."""
    c = r[label]
    return forge(c, c.identity, payload)


def _refused_at_sign(r: Room, payload: Payload) -> None:
    with pytest.raises(LocalError):
        _sign(r, "owner", payload)
    with pytest.raises(LocalError):
        r.owner.author(payload, r.clock())


def _decode_refuses(r: Room, kind: Kind, payload_raw: list[Any]) -> None:
    """Hostile bytes with this payload array are refused at decode."""
    head = r.owner.dag.head(pk("owner"))
    assert head is not None
    wire = raw_wire(
        r.owner.identity,
        server=r.owner.server_id,
        seq=head.seq + 1,
        prev=head.id,
        deps=[],
        ts=head.ts,
        kind=kind,
        payload_raw=payload_raw,
    )
    with pytest.raises(DecodeError):
        decode_event(wire)
    receipt, errors = r.owner.receive_wire([wire], r.clock())
    assert len(errors) == 1
    assert not receipt.inserted


def _decode_accepts(r: Room, kind: Kind, payload_raw: list[Any]) -> None:
    """The same shape just inside the cap decodes (so the refusal above is the cap's)."""
    head = r.owner.dag.head(pk("owner"))
    assert head is not None
    wire = raw_wire(
        r.owner.identity,
        server=r.owner.server_id,
        seq=head.seq + 1,
        prev=head.id,
        deps=[],
        ts=head.ts,
        kind=kind,
        payload_raw=payload_raw,
    )
    assert decode_event(wire).kind is kind


# --- emoji ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "emoji",
    ["x" * (MAX_EMOJI_BYTES + 1), "😀" * 9, "é" * 17, ""],
    ids=["33-ascii", "9-emoji-36-bytes", "17-accented-34-bytes", "empty"],
)
def test_emoji_over_32_bytes_is_refused_at_sign_and_decode(emoji: str) -> None:
    r = room()
    _refused_at_sign(r, Reaction(r.message, emoji))
    _refused_at_sign(r, RemoveReaction(r.message, emoji))
    _decode_refuses(r, Kind.REACTION, [r.message, emoji])
    _decode_refuses(r, Kind.REMOVE_REACTION, [r.message, emoji])


def test_emoji_of_exactly_32_bytes_is_accepted() -> None:
    r = room()
    emoji = "😀" * 8
    assert len(emoji.encode()) == MAX_EMOJI_BYTES
    _decode_accepts(r, Kind.REACTION, [r.message, emoji])
    r.do("owner", Reaction(r.message, emoji))
    assert r.owner.state.messages[r.message].reactions == {emoji: {pk("owner")}}


def test_more_than_32_distinct_reactions_is_cap_exceeded() -> None:
    r = room("m")
    emoji = [chr(0x1F600 + i) for i in range(MAX_DISTINCT_REACTIONS + 1)]
    for e in emoji[:MAX_DISTINCT_REACTIONS]:
        r.do("owner", Reaction(r.message, e))
    r.refused("m", Reaction(r.message, emoji[-1]), R.CAP_EXCEEDED)
    # Joining an existing reaction is not a new distinct key.
    r.do("m", Reaction(r.message, emoji[0]))
    # Freeing a key makes room.
    r.do("owner", RemoveReaction(r.message, emoji[1]))
    r.do("m", Reaction(r.message, emoji[-1]))
    reactions = r.owner.state.messages[r.message].reactions
    assert len(reactions) == MAX_DISTINCT_REACTIONS
    assert reactions[emoji[0]] == {pk("owner"), pk("m")}
    assert emoji[1] not in reactions
    r.converged()


# --- names and texts --------------------------------------------------------------------------


def test_display_name_over_64_chars_is_refused() -> None:
    r = room()
    too_long = "x" * (MAX_DISPLAY_NAME_CHARS + 1)
    for payload in (
        SetProfile(too_long),
        SetProfile(""),
        UpdateProfile(ProfileDelta(display_name=(too_long,))),
    ):
        _refused_at_sign(r, payload)
    _decode_refuses(r, Kind.SET_PROFILE, [too_long])
    # Exactly 64 characters is fine, and characters are code points, not bytes.
    r.do("owner", SetProfile("é" * MAX_DISPLAY_NAME_CHARS))
    r.do("owner", UpdateProfile(ProfileDelta(display_name=("x" * MAX_DISPLAY_NAME_CHARS,))))
    assert r.owner.state.profiles[pk("owner")].display_name == "x" * MAX_DISPLAY_NAME_CHARS


def test_names_over_100_chars_are_refused() -> None:
    r = room()
    for name in ("x" * (MAX_NAME_CHARS + 1), ""):
        for payload in (
            CreateChannel(name),
            RenameChannel(r.channel, name),
            CreateRole(name),
            CreateThread(r.channel, r.message, name),
            RenameServer(name),
        ):
            _refused_at_sign(r, payload)
        with pytest.raises(LocalError):
            sign_event(
                secret_key=ident("x").secret_key,
                author=pk("x"),
                server=None,
                seq=1,
                prev=ZERO_ID,
                deps=(),
                ts=0,
                payload=CreateServer(name),
            )
    _decode_refuses(r, Kind.CREATE_CHANNEL, ["x" * (MAX_NAME_CHARS + 1), 0, "", None])
    _decode_accepts(r, Kind.CREATE_CHANNEL, ["x" * MAX_NAME_CHARS, 0, "", None])
    # 100 characters is the cap whatever their UTF-8 length.
    wide = "ü" * MAX_NAME_CHARS
    channel = r.do("owner", CreateChannel(wide)).id
    r.do("owner", RenameServer(wide))
    assert r.owner.state.channels[channel].name == wide
    assert r.owner.state.name == wide


def test_message_body_over_4000_chars_is_refused() -> None:
    r = room()
    too_long = "x" * (MAX_MESSAGE_CHARS + 1)
    _refused_at_sign(r, Message(r.channel, too_long))
    _refused_at_sign(r, EditMessage(r.message, too_long))
    _decode_refuses(r, Kind.MESSAGE, [r.channel, too_long, None, None])
    body = "ü" * MAX_MESSAGE_CHARS
    said = r.do("owner", Message(r.channel, body)).id
    assert r.owner.state.messages[said].body == body


def test_attachment_metadata_is_bounded() -> None:
    r = room()
    huge = FileRef(seed_bytes("file"), "a.png", "image/png", 10, 16385, 1)
    _refused_at_sign(r, FileMessage(r.channel, huge))
    _refused_at_sign(r, UpdateProfile(ProfileDelta(crest_color=(0x1000000,))))
    r.do("owner", UpdateProfile(ProfileDelta(crest_color=(0xFFFFFF,))))


def test_unknown_permission_value_is_refused_at_decode() -> None:
    r = room()
    _decode_refuses(r, Kind.GRANT_PERMISSION, [pk("m"), max(Permission) + 1])
    _decode_accepts(r, Kind.GRANT_PERMISSION, [pk("m"), int(max(Permission))])


# --- DAG structure ----------------------------------------------------------------------------


def test_more_than_64_deps_is_refused() -> None:
    r = room()
    head = r.owner.dag.head(pk("owner"))
    assert head is not None
    deps = sorted(seed_bytes(f"dep/{i}") for i in range(MAX_DEPS + 1))

    def sign(n: int) -> Event:
        return sign_event(
            secret_key=r.owner.identity.secret_key,
            author=pk("owner"),
            server=r.owner.server_id,
            seq=head.seq + 1,
            prev=head.id,
            deps=deps[:n],
            ts=head.ts,
            payload=Message(r.channel, "deps"),
        )

    with pytest.raises(LocalError):
        sign(MAX_DEPS + 1)
    ok = sign(MAX_DEPS)
    assert len(decode_event(ok.wire).deps) == MAX_DEPS
    wire = raw_wire(
        r.owner.identity,
        server=r.owner.server_id,
        seq=head.seq + 1,
        prev=head.id,
        deps=deps,
        ts=head.ts,
        kind=Kind.MESSAGE,
        payload_raw=[r.channel, "deps", None, None],
    )
    with pytest.raises(DecodeError):
        decode_event(wire)


# --- state-dependent caps -----------------------------------------------------------------------


def test_key_shares_over_members_plus_slack_is_cap_exceeded() -> None:
    r = room("m")
    sealed = r.do("owner", CreateSealedChannel("secret")).id
    members = len(r.owner.state.members)
    assert members == 2

    def shares(n: int) -> tuple[KeyShare, ...]:
        return tuple(KeyShare(seed_bytes(f"peer/{i}"), b"k" * 80) for i in range(n))

    limit = members + KEY_ENTRY_SLACK
    r.refused("m", RotateChannelKey(sealed, b"1" * 16, shares(limit + 1)), R.CAP_EXCEEDED)
    assert sealed not in r.owner.state.channel_keys
    r.do("m", RotateChannelKey(sealed, b"1" * 16, shares(limit)))
    assert len(r.owner.state.channel_keys[sealed][b"1" * 16].shares) == limit
    # One wrapped key is bounded in bytes too.
    _refused_at_sign(
        r,
        RotateChannelKey(sealed, b"2" * 16, (KeyShare(pk("m"), b"k" * (MAX_KEY_BLOB_BYTES + 1)),)),
    )
    r.do(
        "owner",
        RotateChannelKey(sealed, b"2" * 16, (KeyShare(pk("m"), b"k" * MAX_KEY_BLOB_BYTES),)),
    )
    # A new member raises the allowance by one.
    r.add("n")
    r.do("m", RotateChannelKey(sealed, b"3" * 16, shares(limit + 1)))


def test_more_than_50_pins_per_channel_is_cap_exceeded() -> None:
    r = room()
    messages = [r.message] + [
        r.owner.author(Message(r.channel, f"m{i}"), r.clock()).id
        for i in range(MAX_PINS_PER_CHANNEL)
    ]
    for message in messages[:MAX_PINS_PER_CHANNEL]:
        r.owner.author(PinMessage(r.channel, message), r.clock())
    r.refused("owner", PinMessage(r.channel, messages[-1]), R.CAP_EXCEEDED)
    # Re-pinning a pinned message is not a new pin; unpinning makes room.
    r.do("owner", PinMessage(r.channel, messages[0]))
    r.do("owner", UnpinMessage(r.channel, messages[1]))
    r.do("owner", PinMessage(r.channel, messages[-1]))
    pins = r.owner.state.channels[r.channel].pins
    assert len(pins) == MAX_PINS_PER_CHANNEL
    assert messages[-1] in pins
    assert messages[1] not in pins
    # The cap is per channel.
    other = r.do("owner", CreateChannel("other")).id
    there = r.do("owner", Message(other, "pin me")).id
    r.do("owner", PinMessage(other, there))
    r.converged()


@pytest.mark.parametrize(
    ("idle_ms", "ok"),
    [
        (MIN_EPHEMERAL_MS - 1, False),
        (MIN_EPHEMERAL_MS, True),
        (MAX_EPHEMERAL_MS, True),
        (MAX_EPHEMERAL_MS + 1, False),
        (0, False),
    ],
)
def test_ephemeral_idle_range_is_enforced(idle_ms: int, ok: bool) -> None:
    r = room()
    payload = CreateChannel("fleeting", ephemeral=Ephemeral(EphemeralKind.CHANNEL, idle_ms))
    raw = ["fleeting", 0, "", [int(EphemeralKind.CHANNEL), idle_ms]]
    if ok:
        _decode_accepts(r, Kind.CREATE_CHANNEL, raw)
        channel = r.do("owner", payload).id
        assert r.owner.state.channels[channel].ephemeral == Ephemeral(
            EphemeralKind.CHANNEL, idle_ms
        )
    else:
        _refused_at_sign(r, payload)
        _decode_refuses(r, Kind.CREATE_CHANNEL, raw)

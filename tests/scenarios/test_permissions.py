"""Permission and escalation scenarios (willow.md section 10 "Permissions", adjusted for D6).

Unlike the original, roles grant their permissions here, so the anti-escalation rule is what
keeps Manage Roles / Manage Channels from becoming "anything": nobody but an admin hands out,
edits, assigns or deletes a role carrying, or allows in a channel overwrite, a permission they
do not hold. Every refusal is checked twice: the honest client refuses (no seq consumed), and
the same event forged past the client is rejected by replay on every replica.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from willow_core import NotPermitted, Permission, RejectReason
from willow_core.invite import invite_key
from willow_core.kinds import (
    AddEmoji,
    AssignRole,
    ChannelRevive,
    CreateChannel,
    CreateInvite,
    CreateRole,
    CreateSealedChannel,
    CreateThread,
    DeleteMessage,
    DeleteRole,
    EditMessage,
    FileMessage,
    FileRef,
    GrantAdmin,
    GrantPermission,
    KeyShare,
    Leave,
    Message,
    MuteChannel,
    MuteGrove,
    OverwriteTarget,
    Payload,
    PinMessage,
    ProfileDelta,
    Propose,
    Reaction,
    RemoveReaction,
    RenameChannel,
    RenameServer,
    RevokePermission,
    RotateChannelKey,
    SetChannelOverwrite,
    SetPermission,
    SetProfile,
    SetServerDescription,
    UnassignRole,
    UnpinMessage,
    UpdateProfile,
    Vote,
)
from willow_core.permissions import (
    ALL_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    channel_permissions,
    has_permission,
    server_permissions,
)
from willow_core.testing import seed_bytes

from .helpers import Room, forge, inject, kick, pk, room

R = RejectReason
P = Permission
NONE: frozenset[Permission] = frozenset()


def _file() -> FileRef:
    return FileRef(seed_bytes("file"), "cat.png", "image/png", 1234, 64, 64)


#: For each permission, one action that needs it (None: nothing in replay is gated on it).
ACTIONS: dict[Permission, Callable[[Room], Payload] | None] = {
    P.SYNC_PROVIDER: None,
    P.MANAGE_CHANNELS: lambda r: CreateChannel("new-channel"),
    P.MANAGE_ROLES: lambda r: CreateRole("new-role"),
    P.SEND_MESSAGES: lambda r: Message(r.channel, "hello"),
    P.CREATE_INVITE: lambda r: CreateInvite(invite_key(seed_bytes("perm-invite"))[0]),
    P.VIEW_CHANNEL: lambda r: Message(r.channel, "hello"),
    P.MANAGE_MESSAGES: lambda r: PinMessage(r.channel, r.message),
    P.ADD_REACTIONS: lambda r: Reaction(r.message, "👍"),
    P.CREATE_THREADS: lambda r: CreateThread(r.channel, r.message, "a thread"),
    P.MANAGE_EMOJI: lambda r: AddEmoji("party", seed_bytes("emoji-image"), "image/png"),
    P.ATTACH_FILES: lambda r: FileMessage(r.channel, _file()),
}


def test_action_table_covers_every_permission() -> None:
    assert set(ACTIONS) == set(Permission)


def _strip_everyone(r: Room, *permissions: Permission) -> None:
    everyone = r.owner.state.everyone_role
    for permission in permissions:
        if permission in r.owner.state.roles[everyone].permissions:
            r.do("owner", SetPermission(everyone, permission, False))


def _overwrite(
    r: Room,
    target: bytes,
    *,
    allow: frozenset[Permission] = NONE,
    deny: frozenset[Permission] = NONE,
    channel: bytes | None = None,
    by: str = "owner",
) -> None:
    """Set (or, with nothing allowed or denied, clear) the overwrite for a role or member."""
    members = r.owner.state.members
    kind = OverwriteTarget.MEMBER if target in members else OverwriteTarget.ROLE
    r.do(by, SetChannelOverwrite(channel or r.channel, kind, target, allow, deny))


# --- who may create channels ------------------------------------------------------------------


def test_stranger_cannot_create_channels() -> None:
    r = room("member")
    r.outsider("stranger")
    before = set(r.owner.state.channels)
    r.refused("stranger", CreateChannel("mine"), R.NOT_MEMBER)
    r.refused("member", CreateChannel("mine"), R.MISSING_PERMISSION)
    assert set(r.owner.state.channels) == before
    r.do("owner", CreateChannel("owners"))
    assert len(r.owner.state.channels) == len(before) + 1


# --- grants -----------------------------------------------------------------------------------


@pytest.mark.parametrize("permission", list(Permission), ids=lambda p: p.name)
def test_grant_and_revoke_each_permission(permission: Permission) -> None:
    r = room("m")
    m = pk("m")
    _strip_everyone(r, permission)
    action = ACTIONS[permission]
    assert not has_permission(r["m"].state, m, permission)
    if action is not None:
        r.refused("m", action(r), R.MISSING_PERMISSION)

    r.do("owner", GrantPermission(m, permission))
    for c in r.peers.values():
        assert has_permission(c.state, m, permission)
        assert c.state.peer_permissions[m] == {permission}
    if action is not None:
        r.do("m", action(r))

    r.do("owner", RevokePermission(m, permission))
    for c in r.peers.values():
        assert not has_permission(c.state, m, permission)
        assert m not in c.state.peer_permissions
    if action is not None:
        r.refused("m", action(r), R.MISSING_PERMISSION)
    r.converged()


def test_revoking_an_ungranted_permission_is_rejected() -> None:
    r = room("m")
    r.refused("owner", RevokePermission(pk("m"), P.MANAGE_ROLES), R.INVALID_TARGET)


def test_admin_implies_every_permission() -> None:
    r = room("admin", "m")
    r.do("owner", Propose(GrantAdmin(pk("admin"))))
    _strip_everyone(r, *DEFAULT_EVERYONE_PERMISSIONS)
    # A member overwrite denying everything does not bind an admin either.
    _overwrite(r, pk("admin"), deny=ALL_PERMISSIONS)
    _overwrite(r, pk("m"), deny=ALL_PERMISSIONS)
    state = r["admin"].state
    assert server_permissions(state, pk("admin")) == ALL_PERMISSIONS
    assert channel_permissions(state, pk("admin"), r.channel) == ALL_PERMISSIONS
    assert channel_permissions(state, pk("m"), r.channel) == NONE
    for permission, action in ACTIONS.items():
        assert has_permission(state, pk("admin"), permission)
        if action is not None:
            r.do("admin", action(r))
            r.refused("m", action(r), R.MISSING_PERMISSION)
    r.do("admin", RenameServer("renamed by an admin"))
    r.do("admin", GrantPermission(pk("m"), P.SYNC_PROVIDER))
    assert r.owner.state.name == "renamed by an admin"
    r.converged()


def test_roles_grant_their_permissions() -> None:
    r = room("m")
    m = pk("m")
    role = r.do("owner", CreateRole("channel managers")).id
    r.do("owner", SetPermission(role, P.MANAGE_CHANNELS, True))
    r.refused("m", CreateChannel("c1"), R.MISSING_PERMISSION)

    r.do("owner", AssignRole(m, role))
    assert P.MANAGE_CHANNELS in server_permissions(r["m"].state, m)
    r.do("m", CreateChannel("c1"))

    r.do("owner", SetPermission(role, P.MANAGE_CHANNELS, False))
    r.refused("m", CreateChannel("c2"), R.MISSING_PERMISSION)
    r.do("owner", SetPermission(role, P.MANAGE_CHANNELS, True))
    r.do("m", CreateChannel("c2"))

    r.do("owner", UnassignRole(m, role))
    r.refused("m", CreateChannel("c3"), R.MISSING_PERMISSION)
    r.do("owner", AssignRole(m, role))
    r.do("m", CreateChannel("c3"))

    r.do("owner", DeleteRole(role))
    assert role not in r["m"].state.members[m].roles
    r.refused("m", CreateChannel("c4"), R.MISSING_PERMISSION)
    assert {c.name for c in r.owner.state.channels.values()} == {"general", "c1", "c2", "c3"}
    r.converged()


def test_everyone_role_cannot_be_assigned_or_deleted() -> None:
    r = room("m")
    everyone = r.owner.state.everyone_role
    assert everyone == r.owner.server_id
    r.refused("owner", AssignRole(pk("m"), everyone), R.INVALID_TARGET)
    r.refused("owner", UnassignRole(pk("m"), everyone), R.INVALID_TARGET)
    r.refused("owner", DeleteRole(everyone), R.INVALID_TARGET)


# --- anti-escalation for Manage Roles ----------------------------------------------------------


@pytest.mark.parametrize("source", ["direct-grant", "role"])
def test_manage_roles_member_cannot_escalate(source: str) -> None:
    r = room("mod", "other")
    mod, other = pk("mod"), pk("other")
    if source == "direct-grant":
        r.do("owner", GrantPermission(mod, P.MANAGE_ROLES))
    else:
        mods = r.do("owner", CreateRole("mods")).id
        r.do("owner", SetPermission(mods, P.MANAGE_ROLES, True))
        r.do("owner", AssignRole(mod, mods))
        # Mod may not add to their own role what they lack.
        r.refused("mod", SetPermission(mods, P.MANAGE_CHANNELS, True), R.ESCALATION)
    powerful = r.do("owner", CreateRole("channel managers")).id
    r.do("owner", SetPermission(powerful, P.MANAGE_CHANNELS, True))
    r.do("owner", AssignRole(other, powerful))

    # A new role of their own is fine; adding a permission they lack to it is not.
    mine = r.do("mod", CreateRole("mine")).id
    r.refused("mod", SetPermission(mine, P.MANAGE_CHANNELS, True), R.ESCALATION)
    assert r.owner.state.roles[mine].permissions == NONE
    # Permissions they do hold (everyone's, and Manage Roles itself) may be handed on.
    r.do("mod", SetPermission(mine, P.SEND_MESSAGES, True))
    r.do("mod", SetPermission(mine, P.MANAGE_ROLES, True))
    r.do("mod", AssignRole(other, mine))
    r.do("mod", UnassignRole(other, mine))

    # A role carrying a permission they lack: no assign (to anyone), unassign, edit or delete.
    r.refused("mod", AssignRole(mod, powerful), R.ESCALATION)
    r.refused("mod", AssignRole(r.owner.identity.public_key, powerful), R.ESCALATION)
    r.refused("mod", UnassignRole(other, powerful), R.ESCALATION)
    r.refused("mod", SetPermission(powerful, P.MANAGE_CHANNELS, False), R.ESCALATION)
    r.refused("mod", SetPermission(powerful, P.SEND_MESSAGES, True), R.ESCALATION)
    r.refused("mod", DeleteRole(powerful), R.ESCALATION)

    for c in r.peers.values():
        assert powerful not in c.state.members[mod].roles
        assert powerful in c.state.members[other].roles
        assert c.state.roles[powerful].permissions == {P.MANAGE_CHANNELS}
        assert P.MANAGE_CHANNELS not in server_permissions(c.state, mod)
    # So they never got Manage Channels by way of a role.
    r.refused("mod", CreateChannel("mine"), R.MISSING_PERMISSION)
    r.converged()


def test_member_without_manage_roles_cannot_touch_roles() -> None:
    r = room("m")
    role = r.do("owner", CreateRole("plain")).id
    r.refused("m", CreateRole("x"), R.MISSING_PERMISSION)
    r.refused("m", AssignRole(pk("m"), role), R.MISSING_PERMISSION)
    r.refused("m", SetPermission(role, P.SEND_MESSAGES, True), R.MISSING_PERMISSION)
    r.refused("m", DeleteRole(role), R.MISSING_PERMISSION)


# --- channel overwrites ---------------------------------------------------------------------


def test_channel_overwrites_apply_in_discord_order() -> None:
    r = room("a", "b")
    a, b = pk("a"), pk("b")
    everyone = r.owner.state.everyone_role
    other_channel = r.do("owner", CreateChannel("other")).id
    r1 = r.do("owner", CreateRole("r1")).id
    r2 = r.do("owner", CreateRole("r2")).id
    r.do("owner", AssignRole(a, r1))
    send = frozenset({P.SEND_MESSAGES})

    # 1. everyone deny: nobody but admins sends here; elsewhere is unaffected.
    _overwrite(r, everyone, deny=send)
    r.refused("a", Message(r.channel, "x"), R.MISSING_PERMISSION)
    r.refused("b", Message(r.channel, "x"), R.MISSING_PERMISSION)
    r.do("b", Message(other_channel, "fine here"))
    r.do("owner", Message(r.channel, "admins are not bound"))

    # 2. a role allow beats the everyone deny, for holders of the role only.
    _overwrite(r, r1, allow=send)
    r.do("a", Message(r.channel, "r1 may speak"))
    r.refused("b", Message(r.channel, "x"), R.MISSING_PERMISSION)

    # 3. the member's own deny beats their role's allow.
    _overwrite(r, a, deny=send)
    r.refused("a", Message(r.channel, "x"), R.MISSING_PERMISSION)

    # 4. the member's own allow beats their role's deny.
    _overwrite(r, r1, deny=send)
    _overwrite(r, a, allow=send)
    r.do("a", Message(r.channel, "member allow wins"))

    # 5. among roles, allow beats deny (union of allows applied after union of denies).
    _overwrite(r, a)  # clear the member overwrite
    assert a not in r.owner.state.channels[r.channel].overwrites
    r.refused("a", Message(r.channel, "x"), R.MISSING_PERMISSION)
    _overwrite(r, r2, allow=send)
    r.do("owner", AssignRole(a, r2))
    r.do("a", Message(r.channel, "r2 allow beats r1 deny"))

    # 6. a channel allow grants what the server-wide permissions lack, in that channel only.
    _strip_everyone(r, P.ADD_REACTIONS)
    other_message = r.do("owner", Message(other_channel, "react?")).id
    _overwrite(r, everyone, allow=frozenset({P.ADD_REACTIONS}), deny=send)
    r.do("b", Reaction(r.message, "🎉"))
    r.refused("b", Reaction(other_message, "🎉"), R.MISSING_PERMISSION)

    state = r["b"].state
    assert P.SEND_MESSAGES not in channel_permissions(state, b, r.channel)
    assert P.ADD_REACTIONS in channel_permissions(state, b, r.channel)
    assert P.ADD_REACTIONS not in channel_permissions(state, b, other_channel)
    assert P.SEND_MESSAGES in channel_permissions(state, a, r.channel)

    # 7. within one overwrite the deny applies first, so naming a permission in both allows it.
    _overwrite(r, b, allow=send, deny=send)
    r.do("b", Message(r.channel, "allow applies after deny"))
    r.converged()


def test_overwrite_allowing_a_permission_the_author_lacks_is_escalation() -> None:
    r = room("mgr", "b")
    mgr, b = pk("mgr"), pk("b")
    everyone = r.owner.state.everyone_role
    other_channel = r.do("owner", CreateChannel("other")).id
    manage = frozenset({P.MANAGE_MESSAGES})

    r.refused(
        "b",
        SetChannelOverwrite(r.channel, OverwriteTarget.MEMBER, b, manage, NONE),
        R.MISSING_PERMISSION,
    )
    r.do("owner", GrantPermission(mgr, P.MANAGE_CHANNELS))
    for kind, target in (
        (OverwriteTarget.MEMBER, mgr),
        (OverwriteTarget.MEMBER, b),
        (OverwriteTarget.ROLE, everyone),
    ):
        r.refused("mgr", SetChannelOverwrite(r.channel, kind, target, manage, NONE), R.ESCALATION)
    assert r.owner.state.channels[r.channel].overwrites == {}
    # Denying what they lack is refused too (Discord's rule: you only set overwrites for
    # permissions you hold); allowing and denying what they hold is fine.
    r.refused(
        "mgr",
        SetChannelOverwrite(
            r.channel, OverwriteTarget.MEMBER, b, frozenset({P.SEND_MESSAGES}), manage
        ),
        R.ESCALATION,
    )
    r.do(
        "mgr",
        SetChannelOverwrite(
            r.channel,
            OverwriteTarget.MEMBER,
            b,
            frozenset({P.SEND_MESSAGES}),
            frozenset({P.ADD_REACTIONS}),
        ),
    )
    # Holding Manage Messages in one channel lets them pass it on there, not elsewhere.
    _overwrite(r, mgr, allow=manage)
    r.do("mgr", SetChannelOverwrite(r.channel, OverwriteTarget.MEMBER, b, manage, NONE))
    r.refused(
        "mgr",
        SetChannelOverwrite(other_channel, OverwriteTarget.MEMBER, b, manage, NONE),
        R.ESCALATION,
    )
    assert P.MANAGE_MESSAGES in channel_permissions(r.owner.state, b, r.channel)
    assert P.MANAGE_MESSAGES not in channel_permissions(r.owner.state, b, other_channel)
    r.converged()


def test_overwrite_target_must_exist() -> None:
    r = room("m")
    r.refused(
        "owner",
        SetChannelOverwrite(
            r.channel,
            OverwriteTarget.ROLE,
            seed_bytes("no-role"),
            NONE,
            frozenset({P.SEND_MESSAGES}),
        ),
        R.UNKNOWN_ROLE,
    )
    r.refused(
        "owner",
        SetChannelOverwrite(
            r.channel, OverwriteTarget.MEMBER, pk("stranger"), NONE, frozenset({P.SEND_MESSAGES})
        ),
        R.UNKNOWN_MEMBER,
    )


# --- admin-only kinds -------------------------------------------------------------------------


def test_non_admin_cannot_rename_describe_grant_propose_or_vote() -> None:
    r = room("admin", "m")
    m = pk("m")
    for permission in Permission:  # even holding every permission does not make one an admin
        r.do("owner", GrantPermission(m, permission))
    r.do("owner", Propose(GrantAdmin(pk("admin"))))
    pending = r.do("admin", Propose(GrantAdmin(pk("outsider")))).id
    assert pending in r.owner.state.proposals

    r.refused("m", RenameServer("pwned"), R.NOT_ADMIN)
    r.refused("m", SetServerDescription("pwned"), R.NOT_ADMIN)
    r.refused("m", GrantPermission(pk("outsider"), P.SEND_MESSAGES), R.NOT_ADMIN)
    r.refused("m", RevokePermission(pk("admin"), P.SEND_MESSAGES), R.NOT_ADMIN)
    r.refused("m", Propose(GrantAdmin(m)), R.NOT_ADMIN)
    r.refused("m", Vote(pending, True), R.NOT_ADMIN)

    for c in r.peers.values():
        state = c.state
        assert state.name == "Scenario"
        assert state.description == ""
        assert pk("outsider") not in state.members
        assert state.admins == {r.owner.identity.public_key, pk("admin")}
        assert state.proposals[pending].votes == {pk("admin"): True}
    r.do("owner", RenameServer("renamed"))
    r.do("owner", SetServerDescription("described"))
    assert (r["m"].state.name, r["m"].state.description) == ("renamed", "described")
    r.converged()


# --- messages -------------------------------------------------------------------------------


def test_edit_and_delete_of_other_peoples_messages() -> None:
    r = room("a", "b")
    other_channel = r.do("owner", CreateChannel("other")).id
    mine = r.do("b", Message(r.channel, "b's words")).id
    elsewhere = r.do("b", Message(other_channel, "b elsewhere")).id

    r.refused("a", EditMessage(mine, "a's words"), R.NOT_AUTHOR)
    r.refused("a", DeleteMessage(mine), R.NOT_AUTHOR)
    # Nobody edits someone else's words, not even an admin.
    r.refused("owner", EditMessage(mine, "owner's words"), R.NOT_AUTHOR)
    assert r.owner.state.messages[mine].body == "b's words"

    r.do("b", EditMessage(mine, "b's better words"))
    assert r["a"].state.messages[mine].body == "b's better words"
    assert r["a"].state.messages[mine].edited

    # Manage Messages in one channel allows deleting others' messages there.
    _overwrite(r, pk("a"), allow=frozenset({P.MANAGE_MESSAGES}))
    r.refused("a", DeleteMessage(elsewhere), R.NOT_AUTHOR)
    r.do("a", DeleteMessage(mine))
    r.refused("a", EditMessage(mine, "again"), R.UNKNOWN_MESSAGE)
    r.refused("b", EditMessage(mine, "again"), R.UNKNOWN_MESSAGE)
    for c in r.peers.values():
        message = c.state.messages[mine]
        assert message.deleted
        assert message.body == ""
        assert not c.state.messages[elsewhere].deleted
    r.converged()


def test_pin_and_unpin_need_manage_messages() -> None:
    r = room("m")
    m = pk("m")
    r.refused("m", PinMessage(r.channel, r.message), R.MISSING_PERMISSION)
    r.do("owner", GrantPermission(m, P.MANAGE_MESSAGES))
    r.do("m", PinMessage(r.channel, r.message))
    assert r.owner.state.channels[r.channel].pins[r.message].pinner == m
    r.do("m", UnpinMessage(r.channel, r.message))
    assert r.owner.state.channels[r.channel].pins == {}
    r.refused("m", UnpinMessage(r.channel, r.message), R.INVALID_TARGET)

    r.do("owner", PinMessage(r.channel, r.message))
    r.do("owner", RevokePermission(m, P.MANAGE_MESSAGES))
    r.refused("m", UnpinMessage(r.channel, r.message), R.MISSING_PERMISSION)
    r.refused("m", PinMessage(r.channel, r.message), R.MISSING_PERMISSION)
    assert set(r["m"].state.channels[r.channel].pins) == {r.message}
    r.converged()


# --- outsiders and kicked members -------------------------------------------------------------

MEMBER_GATED: dict[str, Callable[[Room], Payload]] = {
    "SetProfile": lambda r: SetProfile("Mallory"),
    "UpdateProfile": lambda r: UpdateProfile(ProfileDelta(bio=("hello",))),
    "PinMessage": lambda r: PinMessage(r.channel, r.message),
    "UnpinMessage": lambda r: UnpinMessage(r.channel, r.message),
    "ChannelRevive": lambda r: ChannelRevive(r.channel),
    "Message": lambda r: Message(r.channel, "hello"),
    "Reaction": lambda r: Reaction(r.message, "👍"),
    "RemoveReaction": lambda r: RemoveReaction(r.message, "👍"),
    "CreateThread": lambda r: CreateThread(r.channel, r.message, "thread"),
    "RenameChannel": lambda r: RenameChannel(r.channel, "mine"),
    "RotateChannelKey": lambda r: RotateChannelKey(r.channel, b"1" * 16, ()),
    "CreateInvite": lambda r: CreateInvite(invite_key(seed_bytes("x"))[0]),
    "Leave": lambda r: Leave(),
}


@pytest.mark.parametrize("kind", sorted(MEMBER_GATED))
@pytest.mark.parametrize("who", ["outsider", "kicked"])
def test_member_gated_kinds_rejected_for_outsiders_and_kicked(kind: str, who: str) -> None:
    r = room("m")
    m = pk("m")
    if who == "outsider":
        r.outsider("m2")
        label = "m2"
    else:
        # Give them everything a member can hold, then kick: none of it survives.
        for permission in Permission:
            r.do("owner", GrantPermission(m, permission))
        r.do("owner", PinMessage(r.channel, r.message))
        r.do("m", Reaction(r.message, "👍"))
        kick(r.owner, "m", r.clock)
        r.sync()
        assert m not in r["m"].state.members
        assert m not in r["m"].state.peer_permissions
        label = "m"
    before = r.owner.state
    profiles, pins = set(before.profiles), set(before.channels[r.channel].pins)
    r.refused(label, MEMBER_GATED[kind](r), R.NOT_MEMBER)
    after = r.owner.state
    assert set(after.profiles) == profiles
    assert set(after.channels[r.channel].pins) == pins
    assert after.channels[r.channel].name == "general"
    assert set(after.messages[r.message].reactions.get("👍", set())) == (
        {m} if who == "kicked" else set()
    )


def test_rotate_channel_key_needs_membership_view_and_a_sealed_channel() -> None:
    r = room("m")
    m = pk("m")
    sealed = r.do("owner", CreateSealedChannel("secret")).id
    shares = (KeyShare(m, b"\x01" * 80), KeyShare(r.owner.identity.public_key, b"\x02" * 80))
    r.outsider("stranger")
    r.refused("stranger", RotateChannelKey(sealed, b"1" * 16, shares), R.NOT_MEMBER)
    r.refused("m", RotateChannelKey(r.channel, b"1" * 16, shares), R.NOT_SEALED)
    r.do(
        "owner",
        SetChannelOverwrite(
            sealed, OverwriteTarget.MEMBER, m, frozenset(), frozenset({P.VIEW_CHANNEL})
        ),
    )
    r.refused("m", RotateChannelKey(sealed, b"1" * 16, shares), R.MISSING_PERMISSION)
    r.do("owner", SetChannelOverwrite(sealed, OverwriteTarget.MEMBER, m, frozenset(), frozenset()))
    r.do("m", RotateChannelKey(sealed, b"1" * 16, shares))
    for c in r.peers.values():
        epoch = c.state.channel_keys[sealed][b"1" * 16]
        assert epoch.shares[m] == b"\x01" * 80
        assert epoch.number == 1
    r.refused("m", RotateChannelKey(seed_bytes("no-channel"), b"2" * 16, shares), R.UNKNOWN_CHANNEL)
    r.refused("m", RotateChannelKey(sealed, b"1" * 16, shares), R.INVALID_TARGET)  # key reused
    r.converged()


def test_mute_is_not_gated_and_survives_a_kick() -> None:
    r = room("m")
    m = pk("m")
    r.outsider("stranger")
    stranger = pk("stranger")
    r.forced("stranger", MuteChannel(r.channel, True), None)
    r.forced("stranger", MuteGrove(True), None)
    assert stranger in r.owner.state.channel_mutes[r.channel]
    assert stranger in r.owner.state.grove_mutes

    r.do("m", MuteChannel(r.channel, True))
    r.do("m", MuteGrove(True))
    kick(r.owner, "m", r.clock)
    r.sync()
    for c in r.peers.values():
        assert m not in c.state.members
        assert m in c.state.channel_mutes[r.channel]
        assert m in c.state.grove_mutes
    # A kicked member may still (un)mute: it only concerns themselves.
    r.do("m", MuteGrove(False))
    assert m not in r.owner.state.grove_mutes
    r.converged()


# --- the client never burns a seq on a refusal --------------------------------------------------


def test_not_permitted_does_not_advance_seq() -> None:
    r = room("m")
    m = r["m"]
    me = m.identity.public_key
    head = m.dag.head(me)
    assert head is not None
    would_be = forge(m, m.identity, CreateChannel("nope"))
    assert would_be.seq == head.seq + 1
    for payload in (CreateChannel("nope"), RenameServer("nope"), PinMessage(r.channel, r.message)):
        with pytest.raises(NotPermitted):
            m.author(payload, r.clock())
        assert m.dag.head(me) == head
        assert len(m.dag.chains[me]) == head.seq
    ev = m.author(Message(r.channel, "this one is fine"), r.clock())
    assert (ev.seq, ev.prev) == (would_be.seq, head.id)
    receipt = r.owner.receive([ev], r.clock())
    assert [e.id for e in receipt.inserted] == [ev.id]
    assert receipt.buffered == 0
    assert not receipt.refused
    assert r.owner.managed.rejection(ev.id) is None
    r.converged()


# --- known core bugs ------------------------------------------------------------------------------


def test_clearing_a_deny_on_a_permission_the_author_lacks_is_escalation() -> None:
    r = room("mod", "b")
    everyone = r.owner.state.everyone_role
    view = frozenset({P.VIEW_CHANNEL})
    r.do("owner", GrantPermission(pk("mod"), P.MANAGE_CHANNELS))
    private = r.do("owner", CreateChannel("private")).id
    _overwrite(r, everyone, deny=view, channel=private)
    assert P.VIEW_CHANNEL not in channel_permissions(r.owner.state, pk("mod"), private)
    # Clearing the everyone deny gives the mod (and everyone) a permission the mod lacks here.
    cleared = SetChannelOverwrite(private, OverwriteTarget.ROLE, everyone, NONE, NONE)
    r.forced("mod", cleared, R.ESCALATION)


def test_revoked_permission_cannot_be_used_by_naming_old_parents() -> None:
    r = room("m")
    r.do("owner", GrantPermission(pk("m"), P.MANAGE_CHANNELS))
    for i in range(3):
        r.do("owner", Message(r.channel, f"chatter {i}"))
    r.do("owner", RevokePermission(pk("m"), P.MANAGE_CHANNELS))
    m = r["m"]
    # Signed after m has seen the revocation, but naming only m's own previous event.
    late = forge(m, m.identity, CreateChannel("after revoke"), deps=())
    assert inject(m, late, r.clock) == R.MISSING_PERMISSION

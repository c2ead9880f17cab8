"""What each page action does: parse the page's strings, then author events or change the view.

Page input is untrusted text (form fields, ``data-*`` attributes): ids are hex and checked for
length, numbers are parsed with bounds, and anything malformed raises ``LocalError`` with a
sentence the person can read (the app shows it as a toast). Authoring goes through
``App.author``, which refuses what replay would reject before anything is signed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from willow_core.errors import LocalError
from willow_core.invite import InviteLink, invite_key
from willow_core.kinds import (
    MAX_MESSAGE_CHARS,
    AssignRole,
    CreateChannel,
    CreateInvite,
    CreateRole,
    CreateSealedChannel,
    CreateSealedThread,
    CreateThread,
    DeleteChannel,
    DeleteMessage,
    EditMessage,
    GrantAdmin,
    HistoryVisibility,
    KickMember,
    Message,
    OverwriteTarget,
    PinMessage,
    Propose,
    Reaction,
    RemoveReaction,
    RenameChannel,
    RenameServer,
    RevokeAdmin,
    RevokeInvite,
    SealedEdit,
    SealedMessage,
    SetChannelOverwrite,
    SetPermission,
    SetProfile,
    SetServerDescription,
    SetVoteThreshold,
    Threshold,
    ThresholdMode,
    UnassignRole,
    UnbanMember,
    UnpinMessage,
    Vote,
)
from willow_core.permissions import Permission

if TYPE_CHECKING:
    from .app import App

__all__ = ["HANDLERS", "MAX_INVITE_USES", "MAX_INVITE_DAYS"]

Handler = Callable[["App", dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}

#: Bounds for the invite form (the event allows more; people do not need more).
MAX_INVITE_USES = 1000
MAX_INVITE_DAYS = 365
_DAY_MS = 86_400_000
_NAME = re.compile(r"@([^\s@<>]{1,64})")


def action(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


def _id(msg: dict[str, Any], key: str = "id") -> bytes:
    text = str(msg.get(key, ""))
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise LocalError(f"bad {key}") from None
    if len(value) != 32:
        raise LocalError(f"bad {key}")
    return value


def _text(msg: dict[str, Any], key: str, limit: int) -> str:
    value = str(msg.get(key, "") or "").strip()
    if len(value) > limit:
        raise LocalError(f"That is too long ({len(value)} characters; at most {limit}).")
    return value


def _int(msg: dict[str, Any], key: str, low: int, high: int) -> int:
    raw = str(msg.get(key, "") or "0").strip() or "0"
    try:
        value = int(raw)
    except ValueError:
        raise LocalError(f"{key} must be a number") from None
    if not low <= value <= high:
        raise LocalError(f"{key} must be between {low} and {high}")
    return value


def _server(app: App) -> bytes:
    server = app.ui.community
    if server is None or app.state is None:
        raise LocalError("Open a community first.")
    return server


def _close(app: App) -> None:
    app.ui.modal = None
    app.ui.modal_args = {}
    app.ui.picker_for = None


# --- identity and navigation --------------------------------------------------------------


@action("create-identity")
def _create_identity(app: App, msg: dict[str, Any]) -> None:
    app.create_identity(_text(msg, "name", 64))


@action("select-community")
def _select_community(app: App, msg: dict[str, Any]) -> None:
    server = _id(msg)
    if app.node is None or server not in app.node.communities:
        raise LocalError("unknown community")
    app.ui.community = server
    app.ui.thread = app.ui.reply_to = app.ui.editing = None
    app.ui.window = 80
    app.ui.pins_open = False


@action("select-channel")
def _select_channel(app: App, msg: dict[str, Any]) -> None:
    server = _server(app)
    channel = _id(msg)
    if channel not in app.state.channels:  # type: ignore[union-attr]
        raise LocalError("unknown channel")
    app.ui.channel[server] = channel
    app.ui.thread = app.ui.reply_to = app.ui.editing = None
    app.ui.window = 80
    app.ui.pins_open = False


@action("step-channel")
def _step_channel(app: App, msg: dict[str, Any]) -> None:
    state = app.state
    if state is None or not state.channels:
        return
    ids = list(state.channels)
    here = app.channel_id
    index = ids.index(here) if here in ids else 0
    delta = 1 if str(msg.get("delta")) == "1" else -1
    app.ui.channel[_server(app)] = ids[(index + delta) % len(ids)]
    app.ui.thread = app.ui.reply_to = app.ui.editing = None


@action("step-community")
def _step_community(app: App, msg: dict[str, Any]) -> None:
    if app.node is None or not app.node.communities:
        return
    ids = list(app.node.communities)
    index = ids.index(app.ui.community) if app.ui.community in ids else 0
    delta = 1 if str(msg.get("delta")) == "1" else -1
    app.ui.community = ids[(index + delta) % len(ids)]
    app.ui.thread = app.ui.reply_to = app.ui.editing = None


@action("open-modal")
def _open_modal(app: App, msg: dict[str, Any]) -> None:
    name = str(msg.get("modal", ""))
    if name not in {
        "create",
        "join",
        "settings",
        "invite",
        "shortcuts",
        "profile",
        "thread-new",
        "member",
    }:
        raise LocalError("unknown dialog")
    if name in {"settings", "invite"}:
        _server(app)
    app.ui.modal = name
    app.ui.modal_args = {k: v for k, v in msg.items() if k not in {"action", "type", "modal"}}
    if name == "settings":
        app.ui.settings_tab = str(msg.get("tab") or "overview")


@action("close")
def _close_action(app: App, msg: dict[str, Any]) -> None:
    if app.ui.modal == "welcome":
        return
    if app.ui.modal or app.ui.picker_for:
        _close(app)
    elif app.ui.editing:
        app.ui.editing = None
    elif app.ui.reply_to:
        app.ui.reply_to = None
    elif app.ui.thread:
        app.ui.thread = None
    elif app.ui.pins_open:
        app.ui.pins_open = False


@action("settings-tab")
def _settings_tab(app: App, msg: dict[str, Any]) -> None:
    app.ui.settings_tab = str(msg.get("tab", "overview"))
    app.ui.modal_args = {k: v for k, v in msg.items() if k not in {"action", "type", "tab"}}


@action("toggle-members")
def _toggle_members(app: App, msg: dict[str, Any]) -> None:
    app.ui.members_open = not app.ui.members_open


@action("toggle-pins")
def _toggle_pins(app: App, msg: dict[str, Any]) -> None:
    app.ui.pins_open = not app.ui.pins_open


@action("load-older")
def _load_older(app: App, msg: dict[str, Any]) -> None:
    app.ui.window += 80


@action("dismiss-toasts")
def _dismiss_toasts(app: App, msg: dict[str, Any]) -> None:
    app.ui.toasts.clear()


# --- communities and profile -------------------------------------------------------------


@action("create-community")
def _create_community(app: App, msg: dict[str, Any]) -> None:
    app.create_community(_text(msg, "name", 100))
    _close(app)


@action("join")
def _join(app: App, msg: dict[str, Any]) -> None:
    app.join(str(msg.get("link", ""))[:8192])
    _close(app)


@action("set-name")
def _set_name(app: App, msg: dict[str, Any]) -> None:
    name = _text(msg, "name", 64)
    if not name:
        raise LocalError("Pick a display name.")
    assert app.identity is not None
    app.display_name = name
    app.store.save_profile(app.identity.seed, name)
    for server, community in (app.node.communities if app.node else {}).items():
        if community.ready and app.me in community.state.members:
            app.author(server, SetProfile(name))
    _close(app)


# --- messages ------------------------------------------------------------------------------


def _mentions(app: App, body: str) -> str:
    """``@Display Name`` -> ``<@key>`` for members whose name matches (longest name first)."""
    state = app.state
    if state is None or "@" not in body:
        return body
    names: list[tuple[str, bytes]] = []
    for peer in state.members:
        profile = state.profiles.get(peer)
        if profile is not None and profile.display_name:
            names.append((profile.display_name, peer))
    names.sort(key=lambda item: -len(item[0]))
    for name, peer in names:
        body = body.replace("@" + name, f"<@{peer.hex()}>")
    return body


@action("send")
def _send(app: App, msg: dict[str, Any]) -> None:
    server = _server(app)
    body = str(msg.get("text", "")).strip()
    if not body:
        return
    if len(body) > MAX_MESSAGE_CHARS:
        raise LocalError(f"Messages are at most {MAX_MESSAGE_CHARS} characters.")
    in_thread = str(msg.get("target", "")) == "thread"
    thread = app.ui.thread if in_thread else None
    channel = app.channel_id
    if thread is not None:
        channel = app.state.threads[thread].channel  # type: ignore[union-attr]
    if channel is None:
        raise LocalError("Pick a channel first.")
    reply_to = None if in_thread else app.ui.reply_to
    text = _mentions(app, body)
    if app.state.channels[channel].sealed:  # type: ignore[union-attr]
        sealed = app.seal(server, channel, text, "message")
        app.author(server, SealedMessage(channel, sealed, thread, reply_to))
    else:
        app.author(server, Message(channel, text, thread, reply_to))
    if not in_thread:
        app.ui.reply_to = None


@action("reply")
def _reply(app: App, msg: dict[str, Any]) -> None:
    app.ui.reply_to = _id(msg)
    app.ui.editing = None
    app.io.post({"type": "focus", "target": "composer"})


@action("edit")
def _edit(app: App, msg: dict[str, Any]) -> None:
    app.ui.editing = _id(msg)
    app.ui.reply_to = None


@action("edit-last")
def _edit_last(app: App, msg: dict[str, Any]) -> None:
    state, channel = app.state, app.channel_id
    if state is None or channel is None:
        return
    for message_id in reversed(state.channels[channel].messages):
        message = state.messages[message_id]
        if message.author == app.me and not message.deleted:
            app.ui.editing = message_id
            return


@action("save-edit")
def _save_edit(app: App, msg: dict[str, Any]) -> None:
    message_id = _id(msg)
    body = _text(msg, "text", MAX_MESSAGE_CHARS)
    app.ui.editing = None
    message = app.state.messages.get(message_id) if app.state else None
    if not body:
        raise LocalError("A message cannot be empty; delete it instead.")
    if message is None:
        return
    server = _server(app)
    if message.sealed is not None:
        community = app.community
        assert community is not None
        if community.keyring.open_message(community.state, message).text != body:
            sealed = app.seal(server, message.channel, _mentions(app, body), "edit")
            app.author(server, SealedEdit(message_id, sealed))
    elif message.body != body:
        app.author(server, EditMessage(message_id, _mentions(app, body)))


@action("delete")
def _delete(app: App, msg: dict[str, Any]) -> None:
    app.ui.modal = "confirm-delete"
    app.ui.modal_args = {"id": str(msg.get("id", ""))}


@action("confirm-delete")
def _confirm_delete(app: App, msg: dict[str, Any]) -> None:
    message_id = _id(msg)
    _close(app)
    app.author(_server(app), DeleteMessage(message_id))


@action("react")
def _react(app: App, msg: dict[str, Any]) -> None:
    message_id = _id(msg)
    emoji = str(msg.get("emoji", ""))
    if not emoji or len(emoji.encode()) > 32:
        raise LocalError("pick an emoji")
    state = app.state
    app.ui.picker_for = None
    message = state.messages.get(message_id) if state else None
    if message is None:
        raise LocalError("That message is gone.")
    if app.me in message.reactions.get(emoji, set()):
        app.author(_server(app), RemoveReaction(message_id, emoji))
    else:
        app.author(_server(app), Reaction(message_id, emoji))


@action("picker")
def _picker(app: App, msg: dict[str, Any]) -> None:
    message_id = _id(msg)
    app.ui.picker_for = None if app.ui.picker_for == message_id else message_id


@action("pin")
def _pin(app: App, msg: dict[str, Any]) -> None:
    message_id = _id(msg)
    state = app.state
    message = state.messages.get(message_id) if state else None
    if message is None:
        raise LocalError("That message is gone.")
    channel = state.channels[message.channel]  # type: ignore[union-attr]
    if message_id in channel.pins:
        app.author(_server(app), UnpinMessage(message.channel, message_id))
    else:
        app.author(_server(app), PinMessage(message.channel, message_id))


@action("open-thread")
def _open_thread(app: App, msg: dict[str, Any]) -> None:
    app.ui.thread = _id(msg)
    app.ui.pins_open = False


@action("close-thread")
def _close_thread(app: App, msg: dict[str, Any]) -> None:
    app.ui.thread = None


@action("create-thread")
def _create_thread(app: App, msg: dict[str, Any]) -> None:
    root = _id(msg)
    name = _text(msg, "name", 100)
    state = app.state
    message = state.messages.get(root) if state else None
    if message is None:
        raise LocalError("That message is gone.")
    server = _server(app)
    if not name:
        name = "Thread"
    if state.channels[message.channel].sealed:  # type: ignore[union-attr]
        sealed = app.seal(server, message.channel, name, "thread")
        ev = app.author(server, CreateSealedThread(message.channel, root, sealed))
    else:
        ev = app.author(server, CreateThread(message.channel, root, name))
    app.ui.thread = ev.id
    _close(app)


# --- community settings --------------------------------------------------------------------


@action("save-overview")
def _save_overview(app: App, msg: dict[str, Any]) -> None:
    server = _server(app)
    state = app.state
    assert state is not None
    name = _text(msg, "name", 100)
    description = _text(msg, "description", 1024)
    if name and name != state.name:
        app.author(server, RenameServer(name))
    if description != state.description:
        app.author(server, SetServerDescription(description))
    app.toast("Saved.")


@action("create-channel")
def _create_channel(app: App, msg: dict[str, Any]) -> None:
    server = _server(app)
    name = _text(msg, "name", 100).lower().replace(" ", "-").lstrip("#")
    if not name:
        raise LocalError("Give the channel a name.")
    history = (
        HistoryVisibility.SINCE_JOINING
        if str(msg.get("history")) == "since-joining"
        else HistoryVisibility.FULL
    )
    topic = _text(msg, "topic", 1024)
    if str(msg.get("sealed", "1")) == "0":
        ev = app.author(server, CreateChannel(name, topic=topic))
    else:
        app.key_work(server)
        ev = app.author(server, CreateSealedChannel(name, topic, history))
    app.ui.channel[server] = ev.id
    if app.ui.modal == "create-channel":
        _close(app)


@action("rename-channel")
def _rename_channel(app: App, msg: dict[str, Any]) -> None:
    name = _text(msg, "name", 100).lower().replace(" ", "-").lstrip("#")
    if not name:
        raise LocalError("Give the channel a name.")
    app.author(_server(app), RenameChannel(_id(msg), name, _text(msg, "topic", 1024)))
    app.toast("Channel saved.")


@action("delete-channel")
def _delete_channel(app: App, msg: dict[str, Any]) -> None:
    app.author(_server(app), DeleteChannel(_id(msg)))


@action("create-role")
def _create_role(app: App, msg: dict[str, Any]) -> None:
    name = _text(msg, "name", 100)
    if not name:
        raise LocalError("Give the role a name.")
    color = str(msg.get("color", "#99aab5")).lstrip("#")
    try:
        value = int(color, 16) if color else 0
    except ValueError:
        value = 0
    ev = app.author(_server(app), CreateRole(name, value & 0xFFFFFF))
    app.ui.modal_args = {"role": ev.id.hex()}


@action("role-permission")
def _role_permission(app: App, msg: dict[str, Any]) -> None:
    role = _id(msg, "role")
    permission = Permission(_int(msg, "perm", 0, max(Permission)))
    state = app.state
    assert state is not None
    granted = permission not in state.roles[role].permissions
    app.author(_server(app), SetPermission(role, permission, granted))
    app.ui.modal_args = {"role": role.hex()}


@action("assign-role")
def _assign_role(app: App, msg: dict[str, Any]) -> None:
    role, peer = _id(msg, "role"), _id(msg, "peer")
    state = app.state
    member = state.members.get(peer) if state else None
    if member is None:
        raise LocalError("not a member")
    if role in member.roles:
        app.author(_server(app), UnassignRole(peer, role))
    else:
        app.author(_server(app), AssignRole(peer, role))


@action("overwrite")
def _overwrite(app: App, msg: dict[str, Any]) -> None:
    """Cycle one permission of one target in one channel: inherit -> allow -> deny -> inherit."""
    channel, target = _id(msg, "channel"), _id(msg, "target")
    kind = OverwriteTarget.MEMBER if str(msg.get("kind")) == "member" else OverwriteTarget.ROLE
    permission = Permission(_int(msg, "perm", 0, max(Permission)))
    state = app.state
    assert state is not None
    current = state.channels[channel].overwrites.get(target)
    allow = set(current.allow) if current else set()
    deny = set(current.deny) if current else set()
    if permission in allow:
        allow.discard(permission)
        deny.add(permission)
    elif permission in deny:
        deny.discard(permission)
    else:
        allow.add(permission)
    app.author(
        _server(app),
        SetChannelOverwrite(channel, kind, target, frozenset(allow), frozenset(deny)),
    )
    app.ui.modal_args = {"channel": channel.hex()}


@action("create-invite")
def _create_invite(app: App, msg: dict[str, Any]) -> None:
    server = _server(app)
    uses = _int(msg, "max_uses", 0, MAX_INVITE_USES)
    days = _int(msg, "days", 0, MAX_INVITE_DAYS)
    seed = app.io.random(32)
    expires = app.io.now_ms() + days * _DAY_MS if days else 0
    ev = app.author(server, CreateInvite(invite_key(seed)[0], uses, expires))
    app.ui.invites[ev.id] = seed
    app.ui.modal = "invite"
    app.ui.modal_args = {"invite": ev.id.hex()}


@action("revoke-invite")
def _revoke_invite(app: App, msg: dict[str, Any]) -> None:
    app.author(_server(app), RevokeInvite(_id(msg)))


@action("copy-invite")
def _copy_invite(app: App, msg: dict[str, Any]) -> None:
    invite = _id(msg)
    seed = app.ui.invites.get(invite)
    if seed is None:
        raise LocalError("Only the person who made an invite holds its link.")
    link = InviteLink(_server(app), invite, seed, tuple(app.relay_hints()))
    app.io.post({"type": "copy", "text": link.encode()})
    app.toast("Invite link copied.")


@action("propose")
def _propose(app: App, msg: dict[str, Any]) -> None:
    kind = str(msg.get("kind", ""))
    server = _server(app)
    proposal: Any
    if kind == "threshold":
        mode = str(msg.get("mode", "majority"))
        if mode == "count":
            proposal = SetVoteThreshold(
                Threshold(ThresholdMode.COUNT, _int(msg, "required", 1, 1000))
            )
        elif mode == "unanimous":
            proposal = SetVoteThreshold(Threshold(ThresholdMode.UNANIMOUS))
        else:
            proposal = SetVoteThreshold(Threshold(ThresholdMode.MAJORITY))
    else:
        peer = _id(msg, "peer")
        choices: dict[str, Any] = {
            "grant-admin": GrantAdmin(peer),
            "revoke-admin": RevokeAdmin(peer),
            "kick": KickMember(peer, False),
            "ban": KickMember(peer, True),
            "unban": UnbanMember(peer),
        }
        if kind not in choices:
            raise LocalError("unknown proposal")
        proposal = choices[kind]
    ev = app.author(server, Propose(proposal))
    state = app.state
    if state is not None and ev.id in state.proposals:
        app.toast("Proposal opened: the other admins can vote on it now.")
    else:
        app.toast("Done.")


@action("vote")
def _vote(app: App, msg: dict[str, Any]) -> None:
    accept = str(msg.get("accept")) == "1"
    app.author(_server(app), Vote(_id(msg), accept))


@action("open-member")
def _open_member(app: App, msg: dict[str, Any]) -> None:
    _id(msg, "peer")
    app.ui.modal = "member"
    app.ui.modal_args = {"peer": str(msg.get("peer"))}


@action("verify")
def _verify(app: App, msg: dict[str, Any]) -> None:
    peer = _id(msg, "peer")
    if str(msg.get("on", "1")) == "1":
        app.ui.verified.add(peer)
        app.toast("Marked as verified.")
    else:
        app.ui.verified.discard(peer)


@action("leave")
def _leave(app: App, msg: dict[str, Any]) -> None:
    from willow_core.kinds import Leave

    server = _server(app)
    app.author(server, Leave())
    _close(app)

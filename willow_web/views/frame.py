"""The frame around the chat: community rail, channel sidebar, member list, status banner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from willow_core.permissions import Permission
from willow_core.state import ServerState

from ..html import Markup, attrs, esc
from ..markdown import mentions_of
from .common import ago, avatar, can, name_of, opened

if TYPE_CHECKING:
    from ..app import App

__all__ = ["rail", "sidebar", "members", "banner", "toasts", "ACTIVE_MS"]

#: A member counts as active if they authored something this recently.
ACTIVE_MS = 5 * 60_000
#: Members listed per group before "and N more".
MAX_LISTED = 200


def _initials(name: str) -> str:
    words = [w for w in name.split() if w]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def rail(app: App) -> Markup:
    node = app.node
    items = []
    for server, community in node.communities.items() if node else ():
        state = community.view
        name = state.name if state is not None else "Joining…"
        active = " active" if server == app.ui.community else ""
        unread = _community_unread(app, state) if state is not None else (0, 0)
        badge = ""
        if unread[1]:
            badge = f'<span class="badge">{unread[1]}</span>'
        elif unread[0]:
            badge = '<span class="dot"></span>'
        items.append(
            f"<button {attrs(class_='rail-item' + active, data_action='select-community', data_id=server.hex(), title=name, aria_label=name)}>"
            f"{esc(_initials(name))}{badge}</button>"
        )
    return Markup(
        '<div class="rail-home" title="Willow">🌿</div><div class="rail-sep"></div>'
        + "".join(items)
        + f"<button {attrs(class_='rail-item add', data_action='open-modal', data_modal='create', title='Create a community', aria_label='Create a community')}>+</button>"
        + f"<button {attrs(class_='rail-item add', data_action='open-modal', data_modal='join', title='Join with an invite', aria_label='Join with an invite')}>⤵</button>"
    )


def _unread(app: App, state: ServerState, channel: bytes) -> tuple[int, int]:
    """``(unread messages, unread mentions of me)`` in one channel (own messages excluded)."""
    ids = state.channels[channel].messages
    seen = app.ui.read.get(channel, 0)
    if seen >= len(ids):
        return 0, 0
    count = mentions = 0
    for message_id in ids[seen:]:
        message = state.messages.get(message_id)
        if message is None or message.author == app.me or message.deleted:
            continue
        count += 1
        if app.me in mentions_of(opened(app, message).text or ""):
            mentions += 1
    return count, mentions


def _community_unread(app: App, state: ServerState) -> tuple[int, int]:
    count = mentions = 0
    for channel in state.channels:
        c, m = _unread(app, state, channel)
        count += c
        mentions += m
    return count, mentions


def sidebar(app: App) -> Markup:
    state = app.state
    me = app.me
    user = (
        f'<div class="user-panel">{avatar(state, me) if app.identity else ""}'
        f'<div class="user-meta"><b>{esc(app.display_name)}</b>'
        f'<span class="muted small conn-{esc(app.connection)}">● {esc(app.connection)}</span></div>'
        f"<button {attrs(class_='icon-btn', data_action='open-modal', data_modal='profile', title='Your profile', aria_label='Your profile')}>⚙</button></div>"
    )
    if state is None:
        return Markup(f'<div class="side-head">Willow</div><div class="channel-list"></div>{user}')
    channels = []
    for channel_id, channel in state.channels.items():
        if not _visible(app, state, channel_id):
            continue
        active = channel_id == app.channel_id
        count, mentions = (0, 0) if active else _unread(app, state, channel_id)
        classes = "channel" + (" active" if active else "") + (" unread" if count else "")
        badge = f'<span class="badge">{mentions}</span>' if mentions else ""
        channels.append(
            f"<button {attrs(class_=classes, data_action='select-channel', data_id=channel_id.hex())}>"
            f'<span class="hash">#</span><span class="cname">{esc(channel.name)}</span>{badge}</button>'
        )
    add = ""
    if can(app, Permission.MANAGE_CHANNELS):
        add = f"<button {attrs(class_='icon-btn', data_action='open-modal', data_modal='settings', data_tab='channels', title='Create channel', aria_label='Create channel')}>+</button>"
    invite = ""
    if can(app, Permission.CREATE_INVITE):
        invite = f"<button {attrs(class_='btn small primary invite-btn', data_action='open-modal', data_modal='settings', data_tab='invites')}>Invite people</button>"
    return Markup(
        f"<button {attrs(class_='side-head', data_action='open-modal', data_modal='settings', title='Community settings')}>"
        f'<span class="server-name">{esc(state.name)}</span><span class="caret">⚙</span></button>'
        f"{invite}"
        f'<div class="section-label">Text channels {add}</div>'
        f'<nav class="channel-list">{"".join(channels)}</nav>{user}'
    )


def _visible(app: App, state: ServerState, channel: bytes) -> bool:
    from willow_core.permissions import has_channel_permission

    return (
        has_channel_permission(state, app.me, channel, Permission.VIEW_CHANNEL)
        or app.me not in state.members
    )


def members(app: App) -> Markup:
    state = app.state
    if state is None or not app.ui.members_open:
        return Markup("")
    now = app.io.now_ms()
    dag = app.community.dag if app.community is not None else None
    groups: dict[str, list[str]] = {}
    order: list[str] = ["Admins"]
    roles = sorted(
        (r for r in state.roles.values() if r.id != state.everyone_role),
        key=lambda r: r.name.lower(),
    )
    order += [r.name for r in roles]
    order += ["Members", "Services"]
    services = {key: role for role, key in app.services()}
    for peer, member in sorted(state.members.items(), key=lambda kv: name_of(state, kv[0]).lower()):
        head = dag.head(peer) if dag is not None else None
        last = head.ts if head is not None else member.joined_at
        active = now - last < ACTIVE_MS
        status = "active now" if active else f"seen {ago(now, last)}"
        badges = ""
        if peer == state.owner:
            badges += '<span class="crown" title="Founder">👑</span>'
        member_roles = [state.roles[r] for r in sorted(member.roles) if r in state.roles]
        chips = "".join(
            f'<span class="role-chip" style="--role:#{r.color:06x}">{esc(r.name)}</span>'
            for r in member_roles
        )
        you = ' <span class="muted">(you)</span>' if peer == app.me else ""
        if peer in app.ui.verified:
            badges += '<span class="verified" title="Safety number verified">✓</span>'
        row = (
            f"<div {attrs(class_='member' + (' active' if active else ''), data_peer=peer.hex(), data_action='open-member')}>"
            f'<span class="presence">{avatar(state, peer)}<i class="status-dot"></i></span>'
            f'<div class="member-meta"><span class="mname">{esc(name_of(state, peer))}{you}{badges}</span>'
            f'<span class="small muted">{esc(status)}</span><span class="chips">{chips}</span></div></div>'
        )
        if peer in services or Permission.SYNC_PROVIDER in state.peer_permissions.get(peer, ()):
            group = "Services"
        elif peer in state.admins:
            group = "Admins"
        elif member_roles:
            group = sorted(member_roles, key=lambda r: r.name.lower())[0].name
        else:
            group = "Members"
        groups.setdefault(group, []).append(row)
    out = []
    for name in order:
        rows = groups.get(name)
        if rows:
            more = (
                f'<div class="muted small">and {len(rows) - MAX_LISTED} more</div>'
                if len(rows) > MAX_LISTED
                else ""
            )
            out.append(
                f'<div class="section-label">{esc(name)} — {len(rows)}</div>{"".join(rows[:MAX_LISTED])}{more}'
            )
    return Markup("".join(out))


def banner(app: App) -> Markup:
    if app.node is None:
        return Markup("")
    if app.connection == "offline":
        retry = ""
        if app.retry_at is not None:
            seconds = max(0, (app.retry_at - app.io.now_ms() + 999) // 1000)
            retry = f" Retrying in {seconds} s." if seconds else " Retrying…"
        return Markup(
            f'<div class="banner offline" role="status">You are offline. Messages you send are kept and delivered when the connection returns.{retry}</div>'
        )
    if app.connection == "connecting":
        return Markup('<div class="banner connecting" role="status">Connecting to the relay…</div>')
    catching = [s for s in app.catching if app.node.communities.get(s) is not None]
    if catching:
        total = sum(app.node.progress[s].events for s in catching if s in app.node.progress)
        return Markup(
            # The count is the progress indicator: no spinner, whose endless animation keeps
            # the page drawing 60 frames a second while it catches up (keystrokes then wait
            # for a frame slot on a busy processor).
            f'<div class="banner syncing" role="status">Catching up… {total} events received</div>'
        )
    return Markup("")


def toasts(app: App) -> Markup:
    if not app.ui.toasts:
        return Markup("")
    items = "".join(
        f'<div class="toast" role="alert">{esc(text)}</div>' for _, text in app.ui.toasts
    )
    return Markup(f'<div class="toasts" data-action="dismiss-toasts">{items}</div>')

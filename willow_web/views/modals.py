"""Dialogs: first run, create/join, invites with QR codes, settings, confirmations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from willow_core.invite import InviteLink
from willow_core.kinds import ThresholdMode
from willow_core.permissions import Permission
from willow_core.state import ServerState

from ..html import Markup, attrs, esc
from ..qr import qr_svg
from .common import avatar, can, clock, name_of

if TYPE_CHECKING:
    from ..app import App

__all__ = ["overlay", "PERMISSION_LABELS", "SETTINGS_TABS"]

PERMISSION_LABELS: dict[Permission, str] = {
    Permission.VIEW_CHANNEL: "View channels",
    Permission.SEND_MESSAGES: "Send messages",
    Permission.ADD_REACTIONS: "Add reactions",
    Permission.CREATE_THREADS: "Create threads",
    Permission.ATTACH_FILES: "Attach files",
    Permission.CREATE_INVITE: "Create invites",
    Permission.MANAGE_MESSAGES: "Manage messages (pin, delete others')",
    Permission.MANAGE_CHANNELS: "Manage channels",
    Permission.MANAGE_ROLES: "Manage roles",
    Permission.MANAGE_EMOJI: "Manage emoji",
    Permission.SYNC_PROVIDER: "Serve history (storage workers)",
}
#: Permissions a channel overwrite can change (the others are community-wide).
CHANNEL_PERMISSIONS = (
    Permission.VIEW_CHANNEL,
    Permission.SEND_MESSAGES,
    Permission.ADD_REACTIONS,
    Permission.CREATE_THREADS,
    Permission.ATTACH_FILES,
    Permission.MANAGE_MESSAGES,
)
SETTINGS_TABS = (
    ("overview", "Overview"),
    ("channels", "Channels"),
    ("roles", "Roles"),
    ("members", "Members"),
    ("invites", "Invites"),
    ("governance", "Governance"),
)


def _modal(
    title: str, body: str, *, wide: bool = False, closable: bool = True, name: str = ""
) -> Markup:
    close = (
        f"<button {attrs(class_='icon-btn modal-close', data_action='close', title='Close', aria_label='Close')}>✕</button>"
        if closable
        else ""
    )
    size = " wide" if wide else ""
    return Markup(
        f'<div class="backdrop" data-action="{"close" if closable else ""}"></div>'
        f'<div class="modal{size}" role="dialog" aria-modal="true" aria-label="{esc(title)}" data-modal="{esc(name)}">'
        f'<header><h2>{esc(title)}</h2>{close}</header><div class="modal-body">{body}</div></div>'
    )


def overlay(app: App) -> Markup:
    name = app.ui.modal
    if name is None:
        return Markup("")
    render = _MODALS.get(name)
    return render(app, app.ui.modal_args) if render else Markup("")


def _welcome(app: App, args: dict[str, Any]) -> Markup:
    body = (
        '<p class="lead">Willow is chat without accounts: you are a key kept on this device, '
        "and communities live on their members' devices, end to end.</p>"
        '<form class="stack" data-action="create-identity">'
        '<label>What should people call you?<input name="name" maxlength="64" autocomplete="nickname" required data-autofocus placeholder="Display name"></label>'
        '<button class="btn primary" type="submit">Continue</button></form>'
    )
    return _modal("Welcome to Willow", body, closable=False, name="welcome")


def _create(app: App, args: dict[str, Any]) -> Markup:
    body = (
        '<form class="stack" data-action="create-community">'
        '<label>Community name<input name="name" maxlength="100" required data-autofocus placeholder="My community"></label>'
        '<p class="muted small">You will be its founder and first admin. A #general channel is created for you.</p>'
        '<button class="btn primary" type="submit">Create</button></form>'
        f'<p class="muted small">Have an invite? <button {attrs(class_="link-btn", data_action="open-modal", data_modal="join")}>Join a community</button></p>'
    )
    return _modal("Create a community", body, name="create")


def _join(app: App, args: dict[str, Any]) -> Markup:
    link = str(args.get("link", ""))
    body = (
        '<form class="stack" data-action="join">'
        f'<label>Invite link<textarea name="link" rows="3" required data-autofocus placeholder="willow:join:…">{esc(link)}</textarea></label>'
        '<button class="btn primary" type="submit">Join</button></form>'
    )
    return _modal("Join a community", body, name="join")


def _invite_row(app: App, state: ServerState, invite_id: bytes) -> str:
    invite = state.invites[invite_id]
    now = app.io.now_ms()
    uses = f"{invite.uses}/{invite.max_uses}" if invite.max_uses else f"{invite.uses}/∞"
    if invite.revoked:
        status = "revoked"
    elif invite.expires_at and invite.expires_at <= now:
        status = "expired"
    elif invite.max_uses and invite.uses >= invite.max_uses:
        status = "used up"
    else:
        status = "active"
    expiry = (
        "never expires"
        if not invite.expires_at
        else ("expires " + clock(app, invite.expires_at) + " " + _date(invite.expires_at))
    )
    buttons = ""
    if invite_id in app.ui.invites and status == "active":
        buttons += f"<button {attrs(class_='btn small', data_action='settings-tab', data_tab='invites', data_invite=invite_id.hex())}>Show link</button>"
    if status == "active" and (invite.creator == app.me or app.me in state.admins):
        buttons += f"<button {attrs(class_='btn small danger', data_action='revoke-invite', data_id=invite_id.hex())}>Revoke</button>"
    return (
        f'<tr data-invite="{invite_id.hex()}"><td>{esc(name_of(state, invite.creator))}</td><td>{esc(uses)}</td>'
        f'<td>{esc(expiry)}</td><td><span class="status-{status.replace(" ", "-")}">{esc(status)}</span></td><td>{buttons}</td></tr>'
    )


def _date(ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def _link_box(app: App, state: ServerState, invite_id: bytes) -> str:
    seed = app.ui.invites.get(invite_id)
    if seed is None or invite_id not in state.invites:
        return ""
    link = InviteLink(state.server_id, invite_id, seed, tuple(app.relay_hints())).encode()
    url = app.invite_url(link)
    return (
        '<div class="invite-box">'
        f'<div class="qr" role="img" aria-label="QR code of the invite">{qr_svg(url)}</div>'
        '<div class="stack">'
        '<label>Invite link<textarea class="invite-link" readonly rows="4">'
        + str(esc(link))
        + "</textarea></label>"
        f'<label>Web address<input class="invite-url" readonly value="{esc(url)}"></label>'
        f"<button {attrs(class_='btn primary', data_action='copy-invite', data_id=invite_id.hex())}>Copy link</button>"
        "</div></div>"
    )


def _invites_tab(app: App, state: ServerState, args: dict[str, Any]) -> str:
    shown = str(args.get("invite", ""))
    box = ""
    try:
        invite_id = bytes.fromhex(shown)
        box = _link_box(app, state, invite_id)
    except ValueError:
        pass
    form = ""
    if can(app, Permission.CREATE_INVITE):
        form = (
            '<form class="row wrap" data-action="create-invite">'
            '<label>Max uses<select name="max_uses"><option value="0">No limit</option><option value="1">1 use</option>'
            '<option value="5">5 uses</option><option value="10">10 uses</option><option value="25">25 uses</option><option value="100">100 uses</option></select></label>'
            '<label>Expires after<select name="days"><option value="0">Never</option><option value="1">1 day</option>'
            '<option value="7" selected>7 days</option><option value="30">30 days</option></select></label>'
            '<button class="btn primary" type="submit">Create invite</button></form>'
        )
    rows = "".join(_invite_row(app, state, i) for i in state.invites)
    table = (
        f'<table class="table"><thead><tr><th>Made by</th><th>Uses</th><th>Expiry</th><th>Status</th><th></th></tr></thead><tbody>{rows}</tbody></table>'
        if rows
        else '<p class="muted">No invites yet.</p>'
    )
    return f"{box}{form}<h3>Invites</h3>{table}"


def _overview_tab(app: App, state: ServerState, args: dict[str, Any]) -> str:
    admin = app.me in state.admins
    disabled = "" if admin else " disabled"
    leave = (
        f"<button {attrs(class_='btn danger', data_action='leave')}>Leave community</button>"
        if app.me in state.members and app.me != state.owner
        else ""
    )
    return (
        '<form class="stack" data-action="save-overview">'
        f'<label>Community name<input name="name" maxlength="100" value="{esc(state.name)}"{disabled}></label>'
        f'<label>Description<textarea name="description" rows="3" maxlength="1024"{disabled}>{esc(state.description)}</textarea></label>'
        + (
            '<button class="btn primary" type="submit">Save changes</button>'
            if admin
            else '<p class="muted small">Only admins can change these.</p>'
        )
        + f'</form><p class="muted small">Community id <code>{state.server_id.hex()[:16]}…</code> · founded by {esc(name_of(state, state.owner))}</p>{leave}'
    )


def _channels_tab(app: App, state: ServerState, args: dict[str, Any]) -> str:
    manage = can(app, Permission.MANAGE_CHANNELS)
    out = []
    if manage:
        out.append(
            '<form class="row wrap" data-action="create-channel">'
            '<label>New channel<input name="name" maxlength="100" required placeholder="channel-name"></label>'
            '<label>Topic<input name="topic" maxlength="1024" placeholder="What it is for"></label>'
            '<label>Encryption<select name="sealed"><option value="1">End-to-end encrypted</option><option value="0">Not encrypted (relays can read)</option></select></label>'
            '<label>New members see<select name="history"><option value="full">Full history</option><option value="since-joining">Only messages after they join</option></select></label>'
            '<button class="btn primary" type="submit">Create channel</button></form>'
        )
    selected = str(args.get("channel", ""))
    for channel_id, channel in state.channels.items():
        open_ = channel_id.hex() == selected
        head = (
            f'<div class="row between"><b>#{esc(channel.name)}</b>'
            f"<button {attrs(class_='btn small', data_action='settings-tab', data_tab='channels', data_channel='' if open_ else channel_id.hex())}>{'Close' if open_ else 'Edit'}</button></div>"
        )
        body = ""
        if open_ and manage:
            body = (
                f'<form class="row wrap" data-action="rename-channel" data-id="{channel_id.hex()}">'
                f'<label>Name<input name="name" value="{esc(channel.name)}" maxlength="100"></label>'
                f'<label>Topic<input name="topic" value="{esc(channel.topic)}" maxlength="1024"></label>'
                '<button class="btn" type="submit">Save</button>'
                f"<button {attrs(class_='btn danger', type='button', data_action='delete-channel', data_id=channel_id.hex())}>Delete channel</button></form>"
                + _overwrites(app, state, channel_id)
            )
        out.append(f'<div class="card" data-channel="{channel_id.hex()}">{head}{body}</div>')
    return "".join(out)


def _overwrites(app: App, state: ServerState, channel_id: bytes) -> str:
    channel = state.channels[channel_id]
    header = "".join(
        f"<th>{esc(PERMISSION_LABELS[p].split(' (')[0])}</th>" for p in CHANNEL_PERMISSIONS
    )
    rows = []
    targets: list[tuple[str, bytes, str]] = [
        ("role", r.id, "@" + r.name) for r in state.roles.values()
    ]
    targets += [("member", p, name_of(state, p)) for p in state.members if p in channel.overwrites]
    for kind, target, label in targets:
        ow = channel.overwrites.get(target)
        cells = []
        for p in CHANNEL_PERMISSIONS:
            value = (
                "allow" if ow and p in ow.allow else "deny" if ow and p in ow.deny else "inherit"
            )
            symbol = {"allow": "✓", "deny": "✕", "inherit": "/"}[value]
            cells.append(
                f"<td><button {attrs(class_='ow ' + value, data_action='overwrite', data_channel=channel_id.hex(), data_target=target.hex(), data_kind=kind, data_perm=int(p), title=value)}>{symbol}</button></td>"
            )
        rows.append(f"<tr><th>{esc(label)}</th>{''.join(cells)}</tr>")
    return (
        '<h4>Permission overwrites</h4><p class="muted small">Click to cycle: / inherit → ✓ allow → ✕ deny.</p>'
        f'<div class="scroll-x"><table class="table overwrites"><thead><tr><th></th>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def _roles_tab(app: App, state: ServerState, args: dict[str, Any]) -> str:
    manage = can(app, Permission.MANAGE_ROLES)
    out = []
    if manage:
        out.append(
            '<form class="row wrap" data-action="create-role">'
            '<label>New role<input name="name" maxlength="100" required placeholder="Moderators"></label>'
            '<label>Colour<input name="color" type="color" value="#5865f2"></label>'
            '<button class="btn primary" type="submit">Create role</button></form>'
        )
    selected = str(args.get("role", ""))
    for role_id, role in state.roles.items():
        open_ = role_id.hex() == selected
        label = "@everyone" if role_id == state.everyone_role else role.name
        holders = sum(1 for m in state.members.values() if role_id in m.roles)
        head = (
            f'<div class="row between"><span class="role-chip" style="--role:#{role.color:06x}">{esc(label)}</span>'
            f'<span class="muted small">{holders if role_id != state.everyone_role else len(state.members)} members</span>'
            f"<button {attrs(class_='btn small', data_action='settings-tab', data_tab='roles', data_role='' if open_ else role_id.hex())}>{'Close' if open_ else 'Edit'}</button></div>"
        )
        body = ""
        if open_:
            toggles = []
            for p, text in PERMISSION_LABELS.items():
                on = p in role.permissions
                toggles.append(
                    f'<label class="toggle"><button {attrs(class_="switch" + (" on" if on else ""), role="switch", aria_checked="true" if on else "false", data_action="role-permission", data_role=role_id.hex(), data_perm=int(p), disabled=not manage)}></button>{esc(text)}</label>'
                )
            body = f'<div class="toggles">{"".join(toggles)}</div>'
        out.append(f'<div class="card" data-role="{role_id.hex()}">{head}{body}</div>')
    return "".join(out)


def _members_tab(app: App, state: ServerState, args: dict[str, Any]) -> str:
    manage_roles = can(app, Permission.MANAGE_ROLES)
    admin = app.me in state.admins
    roles = [r for r in state.roles.values() if r.id != state.everyone_role]
    rows = []
    for peer, member in sorted(state.members.items(), key=lambda kv: name_of(state, kv[0]).lower()):
        chips = []
        for role in roles:
            has = role.id in member.roles
            chips.append(
                f"<button {attrs(class_='role-chip toggle-chip' + (' on' if has else ''), style=f'--role:#{role.color:06x}', data_action='assign-role', data_role=role.id.hex(), data_peer=peer.hex(), disabled=not manage_roles, aria_pressed='true' if has else 'false')}>{esc(role.name)}</button>"
            )
        actions = ""
        if admin and peer != app.me:
            if peer in state.admins:
                actions += f"<button {attrs(class_='btn small', data_action='propose', data_kind='revoke-admin', data_peer=peer.hex())}>Remove admin</button>"
            else:
                actions += f"<button {attrs(class_='btn small', data_action='propose', data_kind='grant-admin', data_peer=peer.hex())}>Make admin</button>"
            actions += f"<button {attrs(class_='btn small danger', data_action='propose', data_kind='kick', data_peer=peer.hex())}>Kick</button>"
            actions += f"<button {attrs(class_='btn small danger', data_action='propose', data_kind='ban', data_peer=peer.hex())}>Ban</button>"
        tag = " (admin)" if peer in state.admins else ""
        rows.append(
            f'<div class="card member-row" data-peer="{peer.hex()}"><div class="row between">'
            f'<span class="row">{avatar(state, peer, "sm")}<b>{esc(name_of(state, peer))}</b><span class="muted small">{tag}</span></span>'
            f'<span class="row">{actions}</span></div><div class="chips">{"".join(chips)}</div></div>'
        )
    banned = "".join(
        f'<div class="row between"><span>{esc(name_of(state, p))}</span>'
        + (
            f"<button {attrs(class_='btn small', data_action='propose', data_kind='unban', data_peer=p.hex())}>Unban</button>"
            if admin
            else ""
        )
        + "</div>"
        for p in sorted(state.banned)
    )
    note = '<p class="muted small">Admin changes, kicks and bans are proposals: they happen once enough admins vote yes (the founder\'s proposals apply at once).</p>'
    return note + "".join(rows) + (f"<h3>Banned</h3>{banned}" if banned else "")


def _action_text(state: ServerState, action: Any) -> str:
    kind = type(action).__name__
    peer = getattr(action, "peer", None)
    who = name_of(state, peer) if isinstance(peer, bytes) else ""
    if kind == "KickMember":
        return f"{'Ban' if action.ban else 'Kick'} {who}"
    if kind == "GrantAdmin":
        return f"Make {who} an admin"
    if kind == "RevokeAdmin":
        return f"Remove {who} as admin"
    if kind == "UnbanMember":
        return f"Unban {who}"
    if kind == "SetVoteThreshold":
        mode = action.threshold.mode
        if mode is ThresholdMode.COUNT:
            return f"Require {action.threshold.required} admin votes"
        return f"Require a {mode.name.lower()} of admins"
    return kind


def _governance_tab(app: App, state: ServerState, args: dict[str, Any]) -> str:
    admin = app.me in state.admins
    mode = state.threshold.mode
    threshold = (
        f"{state.threshold.required} admin votes"
        if mode is ThresholdMode.COUNT
        else f"{mode.name.lower()} of admins"
    )
    out = [
        f"<p>Decisions need a <b>{esc(threshold)}</b>. Admins: "
        + ", ".join(esc(name_of(state, a)) for a in sorted(state.admins))
        + ".</p>"
    ]
    proposals = []
    for proposal_id, proposal in sorted(state.proposals.items()):
        yes = sum(1 for p, v in proposal.votes.items() if v and p in state.admins)
        no = sum(1 for p, v in proposal.votes.items() if not v and p in state.admins)
        mine = proposal.votes.get(app.me)
        buttons = ""
        if admin:
            buttons = (
                f"<button {attrs(class_='btn small primary' + (' on' if mine is True else ''), data_action='vote', data_id=proposal_id.hex(), data_accept='1')}>Vote yes</button>"
                f"<button {attrs(class_='btn small danger' + (' on' if mine is False else ''), data_action='vote', data_id=proposal_id.hex(), data_accept='0')}>Vote no</button>"
            )
        proposals.append(
            f'<div class="card proposal" data-proposal="{proposal_id.hex()}"><div class="row between">'
            f'<b>{esc(_action_text(state, proposal.action))}</b><span class="muted small">proposed by {esc(name_of(state, proposal.proposer))}</span></div>'
            f'<div class="row between"><span class="votes">{yes} yes · {no} no</span><span class="row">{buttons}</span></div></div>'
        )
    out.append(
        "<h3>Open proposals</h3>" + ("".join(proposals) or '<p class="muted">None open.</p>')
    )
    if admin:
        out.append(
            '<h3>Voting rule</h3><form class="row wrap" data-action="propose" data-kind="threshold">'
            '<select name="mode"><option value="majority">Majority</option><option value="unanimous">Unanimous</option><option value="count">A number of votes</option></select>'
            '<input name="required" type="number" min="1" max="1000" value="2" aria-label="Votes needed">'
            '<button class="btn" type="submit">Propose</button></form>'
        )
    return "".join(out)


_TABS = {
    "overview": _overview_tab,
    "channels": _channels_tab,
    "roles": _roles_tab,
    "members": _members_tab,
    "invites": _invites_tab,
    "governance": _governance_tab,
}


def _settings(app: App, args: dict[str, Any]) -> Markup:
    state = app.state
    if state is None:
        return Markup("")
    tab = app.ui.settings_tab if app.ui.settings_tab in _TABS else "overview"
    nav = "".join(
        f"<button {attrs(class_='tab' + (' active' if key == tab else ''), data_action='settings-tab', data_tab=key)}>{label}</button>"
        for key, label in SETTINGS_TABS
    )
    body = f'<nav class="tabs">{nav}</nav><section class="tab-body" data-tab="{tab}">{_TABS[tab](app, state, args)}</section>'
    return _modal(f"{state.name} settings", body, wide=True, name="settings")


def _invite(app: App, args: dict[str, Any]) -> Markup:
    app.ui.settings_tab = "invites"
    return _settings(app, args)


def _confirm_delete(app: App, args: dict[str, Any]) -> Markup:
    message_id = str(args.get("id", ""))
    body = (
        "<p>Delete this message for everyone? This cannot be undone.</p>"
        f'<div class="row end"><button {attrs(class_="btn", data_action="close")}>Cancel</button>'
        f"<button {attrs(class_='btn danger', data_action='confirm-delete', data_id=message_id)}>Delete</button></div>"
    )
    return _modal("Delete message", body, name="confirm-delete")


def _thread_new(app: App, args: dict[str, Any]) -> Markup:
    body = (
        f'<form class="stack" data-action="create-thread" data-id="{esc(args.get("id", ""))}">'
        '<label>Thread name<input name="name" maxlength="100" data-autofocus placeholder="What is it about?"></label>'
        '<button class="btn primary" type="submit">Create thread</button></form>'
    )
    return _modal("Create a thread", body, name="thread-new")


def _profile(app: App, args: dict[str, Any]) -> Markup:
    key = app.me.hex()
    fingerprint = " ".join(key[i : i + 4] for i in range(0, 32, 4))
    body = (
        '<form class="stack" data-action="set-name">'
        f'<label>Display name<input name="name" maxlength="64" value="{esc(app.display_name)}" data-autofocus></label>'
        '<button class="btn primary" type="submit">Save</button></form>'
        f'<p class="muted small">Your key (people can compare it with what they see): <code>{esc(fingerprint)}…</code></p>'
        '<p class="muted small">Your identity lives only in this browser. Clearing site data deletes it.</p>'
    )
    return _modal("Your profile", body, name="profile")


def _shortcuts(app: App, args: dict[str, Any]) -> Markup:
    keys = [
        ("Enter", "Send message"),
        ("Shift + Enter", "New line"),
        ("↑ in an empty composer", "Edit your last message"),
        ("Alt + ↑ / ↓", "Previous / next channel"),
        ("Ctrl + Alt + ↑ / ↓", "Previous / next community"),
        ("Escape", "Close dialog, cancel reply or edit"),
        ("Ctrl + /", "Show these shortcuts"),
    ]
    rows = "".join(f"<tr><td><kbd>{esc(k)}</kbd></td><td>{esc(v)}</td></tr>" for k, v in keys)
    return _modal("Keyboard shortcuts", f'<table class="table">{rows}</table>', name="shortcuts")


def _member(app: App, args: dict[str, Any]) -> Markup:
    from willow_core.safety import safety_number

    state = app.state
    try:
        peer = bytes.fromhex(str(args.get("peer", "")))
    except ValueError:
        return Markup("")
    if state is None or len(peer) != 32:
        return Markup("")
    name = name_of(state, peer)
    if peer == app.me:
        body = f"<p>This is you. Your key: <code>{peer.hex()[:32]}…</code></p>"
        return _modal(name, body, name="member")
    number = safety_number(app.me, peer)
    rows = "".join(f"<span>{esc(group)}</span>" for group in number.split())
    verified = peer in app.ui.verified
    button = (
        f"<button {attrs(class_='btn', data_action='verify', data_peer=peer.hex(), data_on='0')}>Remove verification</button>"
        if verified
        else f"<button {attrs(class_='btn primary', data_action='verify', data_peer=peer.hex(), data_on='1')}>Mark as verified</button>"
    )
    status = (
        '<p class="verified-line">✓ You verified this person.</p>'
        if verified
        else f'<p class="muted">Compare these numbers with {esc(name)} in person or on a call. If they match, nobody is in the middle.</p>'
    )
    has_key = peer in state.member_keys
    key_note = (
        ""
        if has_key
        else '<p class="muted small">They have not published an encryption key yet.</p>'
    )
    body = (
        f'<div class="member-card">{avatar(state, peer)}<div><b>{esc(name)}</b>'
        f'<div class="muted small"><code>{peer.hex()[:16]}…</code></div></div></div>'
        f'<h3>Safety number</h3><div class="safety-number">{rows}</div>{status}{key_note}'
        f'<div class="row end">{button}</div>'
    )
    return _modal(f"{name}", body, name="member")


_MODALS = {
    "member": _member,
    "welcome": _welcome,
    "create": _create,
    "join": _join,
    "settings": _settings,
    "invite": _invite,
    "confirm-delete": _confirm_delete,
    "thread-new": _thread_new,
    "profile": _profile,
    "shortcuts": _shortcuts,
}

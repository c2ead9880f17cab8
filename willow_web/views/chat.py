"""The channel: its header, the message list (with day separators, grouping, replies, threads,
reactions, pins and inline edits), the thread panel and the reply bar."""

from __future__ import annotations

from typing import TYPE_CHECKING

from willow_core.permissions import Permission
from willow_core.state import ChatMessage, ServerState

from ..html import Markup, attrs, esc, tag
from ..markdown import SHORTCODES, Context, mentions_of, render
from .common import avatar, can_in, clock, day, md_context, name_of, opened, thread_name

if TYPE_CHECKING:
    from ..app import App

__all__ = ["header", "message_list", "thread_panel", "reply_bar", "GROUP_MS", "SLACK"]

#: Consecutive messages of one author within this span share one header (as in Discord).
GROUP_MS = 7 * 60_000
#: New messages are appended to the rendered window until it is this much over its size, so
#: live traffic patches the list by appending instead of re-rendering it.
SLACK = 200
#: Rendered message fragments kept for re-use (a render re-uses unchanged ones).
MAX_CACHED_FRAGMENTS = 4_000
#: Characters of a replied-to message shown above a reply.
REPLY_PREVIEW_CHARS = 90


def header(app: App) -> Markup:
    state, channel_id = app.state, app.channel_id
    if state is None:
        return Markup("")
    channel = state.channels.get(channel_id) if channel_id else None
    if channel is None:
        return Markup('<div class="chat-title muted">No channels yet</div>')
    pins = ""
    if app.ui.pins_open:
        pins = _pins_popover(app, state, channel_id)  # type: ignore[arg-type]
    topic = tag("span", channel.topic, class_="chat-topic") if channel.topic else ""
    lock = (
        '<span class="e2ee" title="End-to-end encrypted: only members who can read this channel hold its keys">🔒</span>'
        if channel.sealed
        else '<span class="e2ee open" title="Not encrypted: relays and storage can read this channel">🔓</span>'
    )
    waiting = _waiting(app, state, channel_id)  # type: ignore[arg-type]
    return Markup(
        f'<div class="chat-title"><span class="hash">#</span>{esc(channel.name)}{lock}</div>{topic}{waiting}'
        '<div class="chat-tools">'
        f'<button {attrs(class_="icon-btn" + (" on" if app.ui.pins_open else ""), title="Pinned messages", data_action="toggle-pins", aria_label="Pinned messages")}>📌<span class="count">{len(channel.pins) or ""}</span></button>'
        f"<button {attrs(class_='icon-btn' + (' on' if app.ui.members_open else ''), title='Member list', data_action='toggle-members', aria_label='Member list')}>👥</button>"
        f"</div>{pins}"
    )


def _waiting(app: App, state: ServerState, channel_id: bytes) -> str:
    """How many messages here cannot be read yet, and why (never a silent failure)."""
    community = app.community
    if community is None or not community.ready:
        return ""
    counts: dict[str, int] = {}
    for message_id in state.channels[channel_id].messages:
        message = state.messages.get(message_id)
        if message is None or message.sealed is None or message.deleted:
            continue
        result = opened(app, message)
        if result.reason is not None:
            counts[result.reason.value] = counts.get(result.reason.value, 0) + 1
    if not counts:
        return ""
    total = sum(counts.values())
    why = "; ".join(f"{n}: {reason}" for reason, n in counts.items())
    return f'<span class="undecryptable-count" title="{esc(why)}">🔒 {total} unreadable</span>'


def _body(app: App, message: ChatMessage, ctx: Context) -> str:
    result = opened(app, message)
    if result.text is not None:
        return str(render(result.text, ctx))
    assert result.reason is not None
    return (
        f'<span class="undecryptable" data-reason="{result.reason.name.lower()}">'
        f"🔒 {esc(result.reason.value)}</span>"
    )


def _pins_popover(app: App, state: ServerState, channel_id: bytes) -> str:
    channel = state.channels[channel_id]
    ctx = md_context(app)
    items = []
    for message_id, _pin in sorted(channel.pins.items(), key=lambda kv: -kv[1].pinned_at):
        message = state.messages.get(message_id)
        if message is None:
            continue
        items.append(
            f'<li class="pin" data-msg="{message_id.hex()}">'
            f'<div class="pin-head">{avatar(state, message.author, "sm")}'
            f"<b>{esc(name_of(state, message.author))}</b> <time>{esc(clock(app, message.ts))}</time></div>"
            f'<div class="pin-body">{_body(app, message, ctx) if not message.deleted else "<i>deleted</i>"}</div>'
            f"<button {attrs(class_='link-btn', data_action='pin', data_id=message_id.hex())}>Unpin</button></li>"
        )
    body = "".join(items) or '<li class="empty">Nothing pinned here yet.</li>'
    return f'<div class="popover pins-panel" role="dialog" aria-label="Pinned messages"><h3>Pinned messages</h3><ul>{body}</ul></div>'


def _window(app: App, channel_id: bytes, total: int) -> int:
    """Where the rendered window starts: anchored, so live messages append."""
    anchors = app.view_cache.anchors
    start = anchors.get(channel_id)
    window = app.ui.window
    if (
        start is None
        or start > total
        or total - start > window + SLACK
        or total - start < min(window, total)
    ):
        start = max(0, total - window)
        anchors[channel_id] = start
    return start


def message_list(app: App) -> tuple[Markup, Markup]:
    """``(already shown part, new part)``: the app appends the new part when it can."""
    state, channel_id = app.state, app.channel_id
    if state is None or channel_id is None or channel_id not in state.channels:
        return Markup(_empty(app)), Markup("")
    channel = state.channels[channel_id]
    ids = channel.messages
    start = _window(app, channel_id, len(ids))
    shown = ids[start:]
    intro = (
        f'<div class="channel-intro"><div class="intro-icon">#</div><h2>Welcome to #{esc(channel.name)}!</h2>'
        f"<p>This is the start of the #{esc(channel.name)} channel.</p></div>"
        if start == 0
        else f"<button {attrs(class_='load-older', data_action='load-older')}>Load older messages</button>"
    )
    fragments = [intro, *_fragments(app, state, shown, channel_id)]
    key = (channel_id, start)
    previous = app.view_cache.lists.get(key)
    app.view_cache.lists = {key: fragments}
    if (
        previous is not None
        and len(previous) < len(fragments)
        and fragments[: len(previous)] == previous
    ):
        n = len(previous)
        return Markup("".join(fragments[:n])), Markup("".join(fragments[n:]))
    return Markup("".join(fragments)), Markup("")


def _empty(app: App) -> str:
    if app.node is None:
        return ""
    if app.ui.community is not None and app.ui.community in app.ui.joining:
        return '<div class="placeholder"><div class="spinner"></div><p>Joining… fetching the community\'s history.</p></div>'
    if app.state is None:
        return (
            '<div class="placeholder"><h2>Welcome to Willow</h2>'
            "<p>Communities live on their members' devices: no accounts, no company server.</p>"
            f'<div class="row"><button {attrs(class_="btn primary", data_action="open-modal", data_modal="create")}>Create a community</button>'
            f"<button {attrs(class_='btn', data_action='open-modal', data_modal='join')}>Join with an invite</button></div></div>"
        )
    return '<div class="placeholder"><p>This community has no channels yet.</p></div>'


def _fragments(
    app: App, state: ServerState, ids: list[bytes], channel_id: bytes | None
) -> list[str]:
    ctx = md_context(app)
    threads = {t.root: t for t in state.threads.values()}
    pinned = state.channels[channel_id].pins if channel_id in state.channels else {}
    pending = app.pending_ids()
    out: list[str] = []
    prev: ChatMessage | None = None
    cache = app.view_cache.fragments
    for message_id in ids:
        message = state.messages.get(message_id)
        if message is None:
            continue
        new_day = prev is None or day(app, prev.ts) != day(app, message.ts)
        grouped = (
            prev is not None
            and not new_day
            and prev.author == message.author
            and message.reply_to is None
            and message.ts - prev.ts < GROUP_MS
            and not prev.deleted
        )
        thread = threads.get(message_id)
        reply = state.messages.get(message.reply_to) if message.reply_to else None
        result = opened(app, message)
        reply_text = opened(app, reply).text if reply is not None else None
        key = (
            message_id,
            message.body,
            result,
            reply_text,
            message.author in app.ui.verified,
            thread_name(app, thread) if thread else None,
            message.edited,
            message.deleted,
            tuple(sorted((e, len(p), app.me in p) for e, p in message.reactions.items())),
            message_id in pinned,
            (thread.id, thread.name, len(thread.messages)) if thread else None,
            grouped,
            new_day,
            app.ui.editing == message_id,
            app.ui.picker_for == message_id,
            message_id in pending,
            (reply.body, reply.deleted, name_of(state, reply.author)) if reply else None,
            name_of(state, message.author),
            message.author in state.members,
            len(ctx.emoji),
        )
        html = cache.get(key)
        if html is None:
            html = ""
            if new_day:
                html += f'<div class="day-sep" role="separator"><span>{esc(day(app, message.ts))}</span></div>'
            html += _message(
                app, state, message, ctx, grouped, thread, reply, message_id in pending, channel_id
            )
            if len(cache) > MAX_CACHED_FRAGMENTS:
                cache.clear()
            cache[key] = html
        out.append(html)
        prev = message
    return out


def _message(
    app: App,
    state: ServerState,
    m: ChatMessage,
    ctx: Context,
    grouped: bool,
    thread: object,
    reply: ChatMessage | None,
    pending: bool,
    channel_id: bytes | None,
) -> str:
    hexid = m.id.hex()
    classes = ["msg"]
    if not grouped:
        classes.append("group-start")
    if m.deleted:
        classes.append("deleted")
    if app.me in mentions_of(opened(app, m).text or ""):
        classes.append("mentioned")
    if pending:
        classes.append("pending")
    parts = [f"<div {attrs(class_=' '.join(classes), id='m-' + hexid, data_msg=hexid)}>"]
    if m.reply_to is not None:
        if reply is None:
            preview = '<span class="muted">Original message was not received yet</span>'
        elif reply.deleted:
            preview = '<span class="muted">Original message was deleted</span>'
        else:
            text = opened(app, reply).text or "🔒 encrypted message"
            snippet = text[:REPLY_PREVIEW_CHARS] + ("…" if len(text) > REPLY_PREVIEW_CHARS else "")
            preview = f"<b>@{esc(name_of(state, reply.author))}</b> {esc(snippet)}"
        parts.append(
            f'<div class="reply-ref" data-action="jump" data-id="{m.reply_to.hex()}">↱ {preview}</div>'
        )
    if grouped:
        parts.append(f'<time class="gutter-time">{esc(clock(app, m.ts))}</time>')
    else:
        parts.append(avatar(state, m.author))
    parts.append('<div class="msg-main">')
    if not grouped:
        left = "" if m.author in state.members else ' <span class="tag">left</span>'
        parts.append(
            f'<div class="msg-head"><span class="author" style="--hue:{(m.author[0] << 8 | m.author[1]) % 360}">'
            f"{esc(name_of(state, m.author))}</span>{_badge(app, m.author)}{left}"
            f' <time title="{esc(day(app, m.ts))}">{esc(clock(app, m.ts))}</time></div>'
        )
    if m.deleted:
        parts.append('<div class="content muted"><i>This message was deleted.</i></div>')
    elif app.ui.editing == m.id:
        parts.append(
            f'<form class="edit-form" data-action="save-edit" data-id="{hexid}">'
            f'<textarea name="text" class="edit-input" rows="2" data-autofocus>{esc(opened(app, m).text or "")}</textarea>'
            '<div class="hint">escape to <a data-action="close">cancel</a> • enter to <button class="link-btn" type="submit">save</button></div></form>'
        )
    else:
        edited = ' <span class="edited">(edited)</span>' if m.edited else ""
        parts.append(f'<div class="content">{_body(app, m, ctx)}{edited}</div>')
    if m.reactions and not m.deleted:
        chips = []
        for emoji, peers in m.reactions.items():
            mine = " mine" if app.me in peers else ""
            shown = _emoji(emoji, ctx)
            who = ", ".join(name_of(state, p) for p in sorted(peers)[:10])
            chips.append(
                f"<button {attrs(class_='reaction' + mine, data_action='react', data_id=hexid, data_emoji=emoji, title=who)}>"
                f'{shown}<span class="n">{len(peers)}</span></button>'
            )
        parts.append(f'<div class="reactions">{"".join(chips)}</div>')
    if thread is not None:
        t = thread
        count = len(t.messages)  # type: ignore[attr-defined]
        parts.append(
            f"<button {attrs(class_='thread-chip', data_action='open-thread', data_id=t.id.hex())}>"  # type: ignore[attr-defined]
            f"🧵 <b>{esc(thread_name(app, t))}</b> · {count} {'reply' if count == 1 else 'replies'}</button>"  # type: ignore[arg-type]
        )
    parts.append("</div>")
    if not m.deleted and channel_id is not None:
        parts.append(_toolbar(app, state, m, thread is not None, channel_id))
    if app.ui.picker_for == m.id:
        parts.append(_picker(hexid, ctx))
    parts.append("</div>")
    return "".join(parts)


def _badge(app: App, peer: bytes) -> str:
    if peer in app.ui.verified:
        return (
            ' <span class="verified" title="You compared safety numbers with this person">✓</span>'
        )
    return ""


def _emoji(emoji: str, ctx: Context) -> str:
    if emoji.startswith(":") and emoji.endswith(":") and emoji[1:-1] in ctx.emoji:
        return f'<img class="emoji" alt="{esc(emoji)}" src="{esc(ctx.emoji[emoji[1:-1]])}">'
    return str(esc(emoji))


def _toolbar(
    app: App, state: ServerState, m: ChatMessage, has_thread: bool, channel_id: bytes
) -> str:
    hexid = m.id.hex()
    buttons = []

    def button(label: str, icon: str, action: str) -> None:
        buttons.append(
            f"<button {attrs(class_='tool', title=label, aria_label=label, data_action=action, data_id=hexid)}>{icon}</button>"
        )

    if can_in(app, channel_id, Permission.ADD_REACTIONS):
        button("Add reaction", "😊", "picker")
    if can_in(app, channel_id, Permission.SEND_MESSAGES):
        button("Reply", "↩", "reply")
    if not has_thread and m.thread is None and can_in(app, channel_id, Permission.CREATE_THREADS):
        buttons.append(
            f"<button {attrs(class_='tool', title='Create thread', aria_label='Create thread', data_action='open-modal', data_modal='thread-new', data_id=hexid)}>🧵</button>"
        )
    if can_in(app, channel_id, Permission.MANAGE_MESSAGES):
        pinned = m.id in state.channels[channel_id].pins
        button("Unpin" if pinned else "Pin", "📌", "pin")
    if m.author == app.me:
        button("Edit", "✎", "edit")
    if m.author == app.me or can_in(app, channel_id, Permission.MANAGE_MESSAGES):
        button("Delete", "🗑", "delete")
    return f'<div class="toolbar" role="toolbar">{"".join(buttons)}</div>'


def _picker(hexid: str, ctx: Context) -> str:
    items = [
        f"<button {attrs(class_='pick', data_action='react', data_id=hexid, data_emoji=char, title=':' + name + ':')}>{char}</button>"
        for name, char in SHORTCODES.items()
    ]
    for name, url in sorted(ctx.emoji.items()):
        items.append(
            f"<button {attrs(class_='pick', data_action='react', data_id=hexid, data_emoji=':' + name + ':', title=':' + name + ':')}>"
            f'<img class="emoji" alt=":{esc(name)}:" src="{esc(url)}"></button>'
        )
    return f'<div class="popover picker" role="dialog" aria-label="Pick an emoji">{"".join(items)}</div>'


def thread_panel(app: App) -> Markup:
    state, thread_id = app.state, app.ui.thread
    if state is None or thread_id is None or thread_id not in state.threads:
        return Markup("")
    thread = state.threads[thread_id]
    root = state.messages.get(thread.root)
    fragments = _fragments(
        app, state, ([thread.root] if root else []) + thread.messages, thread.channel
    )
    return Markup(
        f'<div class="thread-head"><span>🧵 {esc(thread_name(app, thread))}</span>'
        f"<button {attrs(class_='icon-btn', data_action='close-thread', title='Close thread', aria_label='Close thread')}>✕</button></div>"
        f'<div class="thread-list">{"".join(fragments)}</div>'
    )


def reply_bar(app: App) -> Markup:
    state = app.state
    if state is None or app.ui.reply_to is None:
        return Markup("")
    message = state.messages.get(app.ui.reply_to)
    who = name_of(state, message.author) if message else "a message"
    return Markup(
        f'<div class="reply-bar">Replying to <b>{esc(who)}</b>'
        f"<button {attrs(class_='icon-btn', data_action='close', title='Cancel reply', aria_label='Cancel reply')}>✕</button></div>"
    )

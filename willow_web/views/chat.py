"""The channel: its header, the message list (with day separators, grouping, replies, threads,
reactions, pins and inline edits), the thread panel and the reply bar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from willow_core.event import Event
from willow_core.kinds import Kind
from willow_core.permissions import Permission
from willow_core.state import ChatMessage, ServerState, Thread

from ..html import Markup, attrs, esc, tag
from ..markdown import SHORTCODES, Context, mentions_of, render
from .common import (
    avatar,
    can_in,
    clock,
    day,
    day_number,
    md_context,
    name_of,
    opened,
    thread_name,
    unreadable,
)

if TYPE_CHECKING:
    from ..app import App

__all__ = [
    "header",
    "message_list",
    "ListHtml",
    "thread_panel",
    "reply_bar",
    "ListMemo",
    "WaitingMemo",
    "GROUP_MS",
    "SLACK",
]

#: Consecutive messages of one author within this span share one header (as in Discord).
GROUP_MS = 7 * 60_000
#: New messages are appended to the rendered window until it is this much over its size, so
#: live traffic patches the list by appending instead of re-rendering it.
SLACK = 20
#: Rendered message fragments kept for re-use (a render re-uses unchanged ones).
MAX_CACHED_FRAGMENTS = 4_000
#: Rows the page may patch in place; more changes than this redraw the list.
MAX_PATCHES = 24
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


@dataclass(slots=True)
class WaitingMemo:
    """Unreadable counts of one channel, as of ``counted`` of its messages."""

    state: ServerState
    stamp: tuple[object, ...]
    order_len: int
    counted: int
    counts: dict[str, int]


def _waiting(app: App, state: ServerState, channel_id: bytes) -> str:
    """How many messages here cannot be read yet, and why (never a silent failure).

    Counted once per channel, then only over new messages while the events since the last
    count are of kinds that cannot change an older message's readability (``_touched``)."""
    community = app.community
    if community is None or not community.ready:
        return ""
    managed = community.managed
    messages = state.channels[channel_id].messages
    stamp = (managed.rewinds, channel_id, app.ui.community, len(app.view_cache.corrupt))
    memo = app.view_cache.waiting
    if (
        memo is None
        or memo.state is not state
        or memo.stamp != stamp
        or len(messages) < memo.counted
        or _touched(state, managed.order[memo.order_len :]) is None
    ):
        memo = WaitingMemo(state, stamp, 0, 0, {})
    counts = memo.counts
    for message_id in messages[memo.counted :]:
        message = state.messages.get(message_id)
        if message is None or message.sealed is None or message.deleted:
            continue
        reason = unreadable(app, message)
        if reason is not None:
            counts[reason.value] = counts.get(reason.value, 0) + 1
    memo.counted, memo.order_len = len(messages), len(managed.order)
    app.view_cache.waiting = memo
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


class ListHtml(NamedTuple):
    """The message list for the app to post: ``whole`` is the list. When the page holds the
    previous one, ``shown`` is that very string, and the page gets to ``whole`` by dropping the
    first ``trim`` message rows (the window moved on), replacing the rows in ``patches``
    (``(row key, row html)``; the key is a message id in hex, or ``intro``) and appending
    ``new``. Otherwise ``shown`` is ``whole`` and there is nothing else. The app tells the cases
    apart by the identity of ``shown`` and what it posted last."""

    shown: str
    new: str
    whole: str
    patches: list[tuple[str, str]]
    trim: int = 0


def message_list(app: App) -> ListHtml:
    state, channel_id = app.state, app.channel_id
    if state is None or channel_id is None or channel_id not in state.channels:
        empty = str(_empty(app))
        return ListHtml(empty, "", empty, [])
    channel = state.channels[channel_id]
    ids = channel.messages
    start = _window(app, channel_id, len(ids))
    intro = (
        f'<div class="channel-intro"><div class="intro-icon">#</div><h2>Welcome to #{esc(channel.name)}!</h2>'
        f"<p>This is the start of the #{esc(channel.name)} channel.</p></div>"
        if start == 0
        else f"<button {attrs(class_='load-older', data_action='load-older')}>Load older messages</button>"
    )
    intro = f'<div class="msg-row" data-row="intro">{intro}</div>'
    shown_ids = ids[start:]
    previous = app.view_cache.memo
    if previous is not None and previous.channel != channel_id:
        previous = None
    memo = _list_fragments(app, state, channel_id, start, shown_ids)
    memo.intro = intro
    fragments = [intro, *memo.fragments]
    if previous is not None and previous.intro == intro and previous.fragments == memo.fragments:
        memo.whole = previous.whole
        return ListHtml(previous.whole, "", previous.whole, [])
    trim = start - previous.start if previous is not None else -1
    if previous is not None and 0 <= trim <= len(previous.ids):
        kept = previous.ids[trim:]
        before = [previous.intro, *previous.fragments[trim:]]
        if len(before) <= len(fragments) and shown_ids[: len(kept)] == kept:
            # the same messages in the same places after the trimmed ones; some may have
            # changed, more may follow
            changed = [i for i in range(len(before)) if fragments[i] is not before[i]]
            changed = [i for i in changed if fragments[i] != before[i]]
            if len(changed) <= MAX_PATCHES:
                extra = "".join(fragments[len(before) :])
                whole = "".join(fragments) if changed or trim else previous.whole + extra
                memo.whole = whole
                patches = [
                    ("intro" if i == 0 else shown_ids[i - 1].hex(), fragments[i]) for i in changed
                ]
                return ListHtml(previous.whole, extra, whole, patches, trim)
    memo.whole = "".join(fragments)
    return ListHtml(memo.whole, "", memo.whole, [])


@dataclass(slots=True)
class ListMemo:
    """What the last message list was drawn from, so that the next one redraws only the
    messages that events since then can have changed (see ``_touched``)."""

    state: ServerState
    #: everything besides the events that the fragments depend on
    stamp: tuple[object, ...]
    #: the community's applied-event count then
    order_len: int
    ids: list[bytes]
    fragments: list[str]
    pending: frozenset[bytes]
    channel: bytes
    #: where the window starts in the channel's messages
    start: int
    #: the row above the messages (channel intro or "load older"), and the whole list's HTML:
    #: what the page was last given (``message_list`` fills them in)
    intro: str = ""
    whole: str = ""


#: Event kinds whose effect on the message list is confined to the messages ``_touched``
#: names. Any other kind (names, roles, membership, keys, edits, deletes, emoji...) may
#: change any message's look, so the list is recomputed in full.
_LOCAL_KINDS = frozenset(
    {
        Kind.MESSAGE,
        Kind.SEALED_MESSAGE,
        Kind.FILE_MESSAGE,
        Kind.SEALED_FILE_MESSAGE,
        Kind.REACTION,
        Kind.REMOVE_REACTION,
        Kind.PIN_MESSAGE,
        Kind.UNPIN_MESSAGE,
        Kind.CREATE_THREAD,
        Kind.CREATE_SEALED_THREAD,
    }
)


def _touched(state: ServerState, events: list[Event]) -> set[bytes] | None:
    """The messages whose fragment ``events`` (applied in order at the end) may have changed,
    or None when they may have changed anything."""
    out: set[bytes] = set()
    for ev in events:
        kind, payload = ev.kind, ev.payload
        if kind not in _LOCAL_KINDS:
            return None
        if kind in (Kind.CREATE_THREAD, Kind.CREATE_SEALED_THREAD):
            out.add(payload.root)
        elif hasattr(payload, "message"):
            out.add(payload.message)
        else:  # a new message; one in a thread changes its root's reply count
            out.add(ev.id)
            thread = state.threads.get(payload.thread) if payload.thread else None
            if thread is not None:
                out.add(thread.root)
    return out


def _list_fragments(
    app: App, state: ServerState, channel_id: bytes, start: int, ids: list[bytes]
) -> ListMemo:
    """One HTML fragment per message of ``ids`` (the new memo's ``fragments``): those that can
    have changed since the last list are recomputed, the others re-used (live chat costs
    O(new), not O(window))."""
    community = app.community
    assert community is not None
    managed = community.managed
    pending = frozenset(app.pending_ids())
    stamp = (
        managed.rewinds,
        app.ui.community,
        channel_id,
        start,
        app.ui.editing,
        app.ui.picker_for,
        frozenset(app.ui.verified),
        app.config.get("tz_offset_min"),
        app.me,
        community.ready,
    )
    memo = app.view_cache.memo
    env = _Env(app, state, channel_id)
    dirty: set[bytes] | None = None
    if (
        memo is not None
        and memo.state is state
        and memo.stamp == stamp
        and len(managed.order) >= memo.order_len
        and len(ids) >= len(memo.ids)
        and ids[: len(memo.ids)] == memo.ids
    ):
        dirty = _touched(state, managed.order[memo.order_len :])
    if memo is None or dirty is None:
        out = _fragments(env, ids)
    else:
        dirty |= memo.pending ^ pending
        out = list(memo.fragments)
        messages = state.messages
        for i, message_id in enumerate(memo.ids):
            if message_id in dirty:
                prev = messages.get(ids[i - 1]) if i else None
                out[i] = env.fragment(message_id, prev)
        out += _fragments(
            env, ids[len(memo.ids) :], messages.get(memo.ids[-1]) if memo.ids else None
        )
    memo = ListMemo(state, stamp, len(managed.order), list(ids), out, pending, channel_id, start)
    app.view_cache.memo = memo
    return memo


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


class _Env:
    """What every fragment of one list render shares, built on first use."""

    def __init__(self, app: App, state: ServerState, channel_id: bytes) -> None:
        self.app = app
        self.state = state
        self.channel_id = channel_id
        self._ctx: Context | None = None
        self._threads: dict[bytes, Thread] | None = None
        self._names: int | None = None

    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            self._ctx = md_context(self.app)
        return self._ctx

    @property
    def names(self) -> int:
        """A fingerprint of every display name (reactions list who reacted by name)."""
        if self._names is None:
            profiles = self.state.profiles
            self._names = hash(tuple((k, p.display_name) for k, p in profiles.items()))
        return self._names

    @property
    def threads(self) -> dict[bytes, Thread]:
        if self._threads is None:
            self._threads = {t.root: t for t in self.state.threads.values()}
        return self._threads

    def fragment(self, message_id: bytes, prev: ChatMessage | None) -> str:
        """The HTML of one message (``prev``: the one above it), from the cache when every
        input to it is unchanged."""
        app, state, channel_id = self.app, self.state, self.channel_id
        message = state.messages.get(message_id)
        if message is None:
            return ""
        new_day = prev is None or day_number(app, prev.ts) != day_number(app, message.ts)
        grouped = (
            prev is not None
            and not new_day
            and prev.author == message.author
            and message.reply_to is None
            and message.ts - prev.ts < GROUP_MS
            and not prev.deleted
        )
        thread = self.threads.get(message_id) if state.threads else None
        reply = state.messages.get(message.reply_to) if message.reply_to else None
        result = opened(app, message)
        channel = state.channels.get(channel_id)
        pinned = channel is not None and message_id in channel.pins
        pending = message_id in app.pending_ids()
        key = (
            message_id,
            message.body,
            result,
            opened(app, reply).text if reply is not None else None,
            message.author in app.ui.verified,
            thread_name(app, thread) if thread else None,
            message.edited,
            message.deleted,
            tuple(sorted((e, frozenset(p)) for e, p in message.reactions.items()))
            if message.reactions
            else (),
            pinned,
            (thread.id, thread.name, len(thread.messages)) if thread else None,
            grouped,
            new_day,
            app.ui.editing == message_id,
            app.ui.picker_for == message_id,
            pending,
            (reply.body, reply.deleted, name_of(state, reply.author)) if reply else None,
            name_of(state, message.author),
            message.author in state.members,
            len(self.ctx.emoji),
            self.names,
        )
        cache = app.view_cache.fragments
        html = cache.get(key)
        if html is None:
            # One row per message (``display: contents``): the unit the page patches in place.
            html = f'<div class="msg-row" data-row="{message_id.hex()}">'
            if new_day:
                html += f'<div class="day-sep" role="separator"><span>{esc(day(app, message.ts))}</span></div>'
            html += _message(
                app, state, message, self.ctx, grouped, thread, reply, pending, channel_id
            )
            html += "</div>"
            if len(cache) > MAX_CACHED_FRAGMENTS:
                cache.clear()
            cache[key] = html
        return html


def _fragments(env: _Env, ids: list[bytes], prev: ChatMessage | None = None) -> list[str]:
    out: list[str] = []
    messages = env.state.messages
    for message_id in ids:
        out.append(env.fragment(message_id, prev))
        message = messages.get(message_id)
        if message is not None:
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


#: A tool button's HTML up to its message id, per (label, icon, action, extra attributes): the
#: same few strings for every message shown, so they are written once.
_TOOL_OPEN: dict[tuple[str, ...], str] = {}


def _tool(label: str, icon: str, action: str, hexid: str, **extra: str) -> str:
    key = (label, icon, action, *(f"{name}={value}" for name, value in extra.items()))
    head = _TOOL_OPEN.get(key)
    if head is None:
        a = attrs(class_="tool", title=label, aria_label=label, data_action=action, **extra)
        head = _TOOL_OPEN[key] = f"<button {a} "
    return f'{head}data-id="{hexid}">{icon}</button>'


def _toolbar(
    app: App, state: ServerState, m: ChatMessage, has_thread: bool, channel_id: bytes
) -> str:
    hexid = m.id.hex()  # hex digits: nothing to escape
    buttons = []
    if can_in(app, channel_id, Permission.ADD_REACTIONS):
        buttons.append(_tool("Add reaction", "😊", "picker", hexid))
    if can_in(app, channel_id, Permission.SEND_MESSAGES):
        buttons.append(_tool("Reply", "↩", "reply", hexid))
    if not has_thread and m.thread is None and can_in(app, channel_id, Permission.CREATE_THREADS):
        buttons.append(_tool("Create thread", "🧵", "open-modal", hexid, data_modal="thread-new"))
    if can_in(app, channel_id, Permission.MANAGE_MESSAGES):
        pinned = m.id in state.channels[channel_id].pins
        buttons.append(_tool("Unpin" if pinned else "Pin", "📌", "pin", hexid))
    if m.author == app.me:
        buttons.append(_tool("Edit", "✎", "edit", hexid))
    if m.author == app.me or can_in(app, channel_id, Permission.MANAGE_MESSAGES):
        buttons.append(_tool("Delete", "🗑", "delete", hexid))
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
    ids = ([thread.root] if root else []) + thread.messages
    fragments = _fragments(_Env(app, state, thread.channel), ids)
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

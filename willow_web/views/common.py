"""Small pieces every view uses: names, avatars, times, permission checks."""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING

from willow_core.keyring import Opened, Unreadable
from willow_core.permissions import Permission, has_channel_permission, has_permission
from willow_core.state import ChatMessage, ServerState, Thread

from ..html import Markup, attrs, esc, hue_of
from ..markdown import Context

if TYPE_CHECKING:
    from ..app import App

__all__ = [
    "name_of",
    "avatar",
    "clock",
    "day",
    "day_number",
    "can",
    "can_in",
    "md_context",
    "emoji_urls",
    "ago",
    "opened",
    "unreadable",
    "thread_name",
    "ALLOWED_EMOJI_MIME",
]

#: Image types a custom emoji may render as (anything else is shown as its :name:).
ALLOWED_EMOJI_MIME = frozenset({"image/png", "image/gif", "image/webp", "image/jpeg"})


#: Names for the relay operator's workers (keys from the capability document), set by the app.
SERVICE_NAMES: dict[bytes, str] = {}


def name_of(state: ServerState | None, peer: bytes) -> str:
    service = SERVICE_NAMES.get(peer)
    if service is not None:
        return service
    if state is not None:
        profile = state.profiles.get(peer)
        if profile is not None and profile.display_name:
            return profile.display_name
    return "user-" + peer[:3].hex()


def avatar(state: ServerState | None, peer: bytes, size: str = "") -> Markup:
    name = name_of(state, peer)
    initial = name[:1].upper() or "?"
    return Markup(
        f"<span {attrs(class_=('avatar ' + size).strip(), style=f'--hue:{hue_of(peer)}')}"
        f' aria-hidden="true">{esc(initial)}</span>'
    )


def _offset_ms(app: App) -> int:
    """The page's time-zone offset (minutes west of UTC, as JavaScript gives it) in ms."""
    return int(app.config.get("tz_offset_min", 0) or 0) * 60_000


def _local(app: App, ms: int) -> time.struct_time:
    return time.gmtime((ms - _offset_ms(app)) / 1000)


def clock(app: App, ms: int) -> str:
    return time.strftime("%H:%M", _local(app, ms))


def day_number(app: App, ms: int) -> int:
    """Which local day ``ms`` falls on (cheap: no calendar), for day separators."""
    return (ms - _offset_ms(app)) // 86_400_000


def day(app: App, ms: int) -> str:
    t = _local(app, ms)
    return time.strftime("%A, %d %B %Y", t)


def ago(now_ms: int, ms: int) -> str:
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def can(app: App, permission: Permission) -> bool:
    state = app.state
    return state is not None and has_permission(state, app.me, permission)


def can_in(app: App, channel: bytes, permission: Permission) -> bool:
    state = app.state
    return (
        state is not None
        and channel in state.channels
        and has_channel_permission(state, app.me, channel, permission)
    )


def emoji_urls(state: ServerState | None) -> dict[str, str]:
    if state is None:
        return {}
    out = {}
    for e in state.emoji.values():
        if e.mime in ALLOWED_EMOJI_MIME:
            out[e.name] = f"data:{e.mime};base64,{base64.b64encode(e.image).decode()}"
    return out


def opened(app: App, message: ChatMessage) -> Opened:
    """A message's text, or why it cannot be read (sealed channels)."""
    community = app.community
    if message.sealed is None or community is None or not community.ready:
        return Opened(message.body)
    result = community.keyring.open_message(community.state, message)
    if result.reason is Unreadable.CORRUPT:
        app.view_cache.corrupt.add((message.id, message.sealed.box))
    return result


def unreadable(app: App, message: ChatMessage) -> Unreadable | None:
    """Why a sealed message cannot be read, without decrypting it: its epoch key's status, or
    CORRUPT if opening it failed before. So counting a channel's unreadable messages costs no
    decryption (a catch-up of thousands stays cheap); a box that is corrupt under a key we hold
    is counted once it has been opened (shown)."""
    community = app.community
    sealed = message.sealed
    if sealed is None or community is None or not community.ready:
        return None
    if (message.id, sealed.box) in app.view_cache.corrupt:
        return Unreadable.CORRUPT
    value = community.keyring.key(community.state, message.channel, sealed.key)
    return value if isinstance(value, Unreadable) else None


def thread_name(app: App, thread: Thread) -> str:
    community = app.community
    if thread.sealed is None or community is None or not community.ready:
        return thread.name
    result = community.keyring.open_thread(community.state, thread)
    return result.text if result.text is not None else "🔒 encrypted thread"


def md_context(app: App) -> Context:
    state = app.state
    return Context(name_of=lambda key: name_of(state, key), emoji=emoji_urls(state), me=app.me)

"""Views: pure functions from the app's state to HTML per screen region.

``render_regions`` returns the HTML of every region (the app posts only those that changed),
the message list as a ``ListHtml`` so live messages are appended and changed ones patched rather
than the list re-rendered,
and the composer's state (placeholder, enabled), which the page applies to its own text box so
typing never waits for the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from willow_core.permissions import Permission

from .chat import (
    ListHtml,
    ListMemo,
    WaitingMemo,
    header,
    message_list,
    reply_bar,
    thread_panel,
)
from .common import can_in
from .frame import banner, members, rail, sidebar, toasts
from .modals import overlay

if TYPE_CHECKING:
    from ..app import App

__all__ = ["render_regions", "ViewCache"]


@dataclass(slots=True)
class ViewCache:
    """Rendering memory: message fragments, window anchors, the last list (``memo``: what it
    was drawn from and what the page was given), the unreadable count, corrupt boxes."""

    fragments: dict[tuple[Any, ...], str] = field(default_factory=dict)
    #: channel -> where its message window starts
    anchors: dict[bytes, int] = field(default_factory=dict)
    memo: ListMemo | None = None
    waiting: WaitingMemo | None = None
    #: (message id, sealed box) found corrupt when opened
    corrupt: set[tuple[bytes, bytes]] = field(default_factory=set)


def render_regions(
    app: App, *, with_list: bool = True
) -> tuple[dict[str, str], dict[str, ListHtml], dict[str, Any]]:
    """``with_list=False``: the page keeps its message list this time, so it is not computed."""
    lists: dict[str, ListHtml] = {"message-list": message_list(app)} if with_list else {}
    regions: dict[str, str] = {
        "rail": rail(app),
        "sidebar": sidebar(app),
        "chat-header": header(app),
        "reply-bar": reply_bar(app),
        "thread": thread_panel(app),
        "members": members(app),
        "overlay": overlay(app),
        "banner": banner(app),
        "toasts": toasts(app),
    }
    return regions, lists, composer(app)


def composer(app: App) -> dict[str, Any]:
    state, channel = app.state, app.channel_id
    ready = (
        app.node is not None and state is not None and channel in (state.channels if state else {})
    )
    can_send = bool(ready and can_in(app, channel, Permission.SEND_MESSAGES))  # type: ignore[arg-type]
    if not ready:
        placeholder = "Pick or create a community to start chatting"
    elif not can_send:
        placeholder = "You do not have permission to send messages here"
    else:
        placeholder = f"Message #{state.channels[channel].name}"  # type: ignore[union-attr,index]
    thread = None
    if ready and app.ui.thread is not None and app.ui.thread in state.threads:  # type: ignore[union-attr]
        thread = f"Reply in {state.threads[app.ui.thread].name}"  # type: ignore[union-attr]
    return {
        "enabled": can_send,
        "placeholder": placeholder,
        "key": (channel or b"").hex(),
        "thread": thread,
        "layout": {
            "members": app.ui.members_open and state is not None,
            "thread": thread is not None,
        },
    }

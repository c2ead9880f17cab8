"""Run browser-app controllers under CPython: a fake ``Io`` and an in-memory relay.

The relay here is the topic rule only (envelopes go to every app subscribed to their topic);
the real relay, workers and browsers are exercised by tests/browser.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from willow_core.state import ServerState
from willow_web.app import App


class FakeIo:
    def __init__(self, clock: list[int]) -> None:
        self.clock = clock
        self.posted: list[dict[str, Any]] = []
        self.persists = 0

    def now_ms(self) -> int:
        return self.clock[0]

    def random(self, n: int) -> bytes:
        return os.urandom(n)

    def post(self, message: dict[str, Any]) -> None:
        self.posted.append(message)

    def persist(self) -> None:
        self.persists += 1

    def persist_later(self) -> None:
        self.persists += 1

    def wake(self) -> None:
        pass


class Net:
    """Apps on one pretend relay; ``settle`` delivers until nobody has anything to send."""

    def __init__(self, services: list[dict[str, str]] | None = None) -> None:
        self.clock = [1_800_000_000_000]
        self.apps: list[App] = []
        self.offline: set[int] = set()
        self.config: dict[str, Any] = {
            "services": services or [],
            "origin": "http://127.0.0.1:8080",
        }

    def app(self, root: Path, name: str | None = None) -> App:
        app = App(FakeIo(self.clock), _store(root), dict(self.config))
        app.start()
        if name is not None:
            act(app, "create-identity", name=name)
        self.apps.append(app)
        return app

    def reload(self, old: App, root: Path) -> App:
        index = self.apps.index(old)
        app = App(FakeIo(self.clock), _store(root), dict(self.config))
        app.start()
        self.apps[index] = app
        return app

    def settle(self, rounds: int = 50, ticks: int = 4) -> None:
        """Deliver until quiet, let every app tick (key work is staggered by rank, so time
        passes between ticks), and repeat until nothing more happens."""
        for _ in range(ticks):
            self._deliver(rounds)
            for app in self.apps:
                app.tick()
            self.clock[0] += 3_000
        self._deliver(rounds)
        for app in self.apps:
            app.render()

    def _deliver(self, rounds: int) -> None:
        for _ in range(rounds):
            moved = False
            for i, app in enumerate(self.apps):
                if app.node is None or i in self.offline:
                    continue
                for envelope in app.node.drain():
                    moved = True
                    self._route(app, envelope)
            self.clock[0] += 10
            if not moved:
                break

    def _route(self, sender: App, envelope: bytes) -> None:
        from willow_core.wire import open_envelope

        topic = open_envelope(envelope).topic
        for i, app in enumerate(self.apps):
            if app is sender or app.node is None or i in self.offline:
                continue
            if topic in app.node.topics():
                app.node.receive(envelope, self.clock[0])


def _store(root: Path) -> Any:
    from willow_web.store import Store

    return Store(root)


#: Toasts that report success rather than a failure.
_FINE = ("Saved", "Done", "Proposal", "Invite", "Channel", "Marked")


def act(app: App, action: str, **fields: Any) -> None:
    """Do what a click or form would, and fail on any error the person would be shown."""
    app.handle({"type": "action", "action": action, **fields})
    errors = [t for _, t in app.ui.toasts if not t.startswith(_FINE)]
    assert not errors, errors


def text(app: App, message_id: bytes) -> str | None:
    """What the app shows for a message (sealed ones opened with the app's keys)."""
    community = app.community
    assert community is not None
    return community.keyring.open_message(st(app), st(app).messages[message_id]).text


def st(app: App) -> ServerState:
    state = app.state
    assert state is not None
    return state


def regions(app: App) -> dict[str, str]:
    """The latest HTML of every region the app posted."""
    out: dict[str, str] = {}
    for message in app.io.posted:  # type: ignore[attr-defined]
        if message["type"] == "render":
            for key, html in message["regions"]:
                out[key] = html
            for key, count in message["trims"]:
                out[key] = _trim(out[key], count)
            for key, row, html in message["patches"]:
                out[key] = _patch(out[key], row, html)
            for key, html in message["appends"]:
                out[key] = out.get(key, "") + html
    return out


def _row_end(region: str, begin: int) -> int:
    """Where the row starting at ``begin`` ends (our HTML nests only divs inside a row, and
    escaped text holds no ``<div``)."""
    depth, pos = 0, begin
    while True:
        opening, closing = region.find("<div", pos), region.find("</div>", pos)
        if opening != -1 and opening < closing:
            depth, pos = depth + 1, opening + 4
        else:
            depth, pos = depth - 1, closing + 6
            if depth == 0:
                return pos


def _patch(region: str, row: str, html: str) -> str:
    """Replace the row ``data-row="row"`` in ``region`` as the page does."""
    begin = region.index(f'<div class="msg-row" data-row="{row}">')
    return region[:begin] + html + region[_row_end(region, begin) :]


def _trim(region: str, count: int) -> str:
    """Drop the first ``count`` message rows (not the intro row) as the page does."""
    row = '<div class="msg-row" data-row="'
    for _ in range(count):
        begin = region.index(row)
        while region.startswith(row + 'intro"', begin):
            begin = region.index(row, begin + 1)
        region = region[:begin] + region[_row_end(region, begin) :]
    return region

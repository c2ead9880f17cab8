"""The message list during a catch-up: a large jump waits for the end (one redraw instead of one
per batch), live chat and the person's own actions are drawn at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from willow_core.invite import InviteLink
from willow_web.app import CATCH_UP_QUIET_MS, LIST_JUMP, App

from .harness import Net, act, regions, st


class Posts:
    """What an app posts to the page, read in steps."""

    def __init__(self, app: App) -> None:
        self.posted: list[dict[str, Any]] = app.io.posted  # type: ignore[attr-defined]
        self.seen = len(self.posted)

    def list_renders(self) -> list[dict[str, Any]]:
        """Renders since the last call that changed the message list."""
        new, self.seen = self.posted[self.seen :], len(self.posted)
        return [
            m
            for m in new
            if m["type"] == "render"
            and any(key == "message-list" for key, _ in m["regions"] + m["appends"])
        ]


def _pair(tmp_path: Path) -> tuple[Net, App, App]:
    net = Net()
    alice = net.app(tmp_path / "a", "Alice")
    bob = net.app(tmp_path / "b", "Bob")
    act(alice, "create-community", name="Team")
    act(alice, "create-invite", max_uses="0", days="0")
    invite_id = next(iter(alice.ui.invites))
    server = alice.ui.community
    assert server is not None
    act(bob, "join", link=InviteLink(server, invite_id, alice.ui.invites[invite_id]).encode())
    net.settle()
    act(alice, "send", text="before")
    net.settle()
    assert "before" in regions(bob)["message-list"]
    return net, alice, bob


def _missed(net: Net, alice: App, texts: list[str]) -> list[bytes]:
    """Alice sends ``texts`` while Bob is away; returns the envelopes he missed."""
    assert alice.node is not None
    envelopes = []
    for text in texts:
        act(alice, "send", text=text)
        envelopes += alice.node.drain()
    return envelopes


def _arrive(net: Net, app: App, envelopes: list[bytes]) -> None:
    assert app.node is not None
    for envelope in envelopes:
        app.node.receive(envelope, net.clock[0])
    app.render()  # what the shell does after frames arrive


def test_a_catch_up_draws_the_list_once_at_its_end(tmp_path: Path) -> None:
    net, alice, bob = _pair(tmp_path)
    missed = _missed(net, alice, [f"missed {i}" for i in range(3 * LIST_JUMP)])
    posts = Posts(bob)
    bob._on_link_ready()  # a new session: bob catches up on what he missed
    half = len(missed) // 2
    _arrive(net, bob, missed[:half])
    _arrive(net, bob, missed[half:])
    general = bob.channel_id
    assert general is not None
    assert len(st(bob).channels[general].messages) == 3 * LIST_JUMP + 1
    assert posts.list_renders() == []  # held, while the banner counts what arrives
    assert "Catching up" in regions(bob)["banner"]

    net.clock[0] += CATCH_UP_QUIET_MS + 1
    bob.tick()  # nothing more came: the catch-up is over, the list is drawn once
    assert not bob.catching
    assert len(posts.list_renders()) == 1
    assert "missed 59" in regions(bob)["message-list"]


def test_live_chat_and_own_actions_are_drawn_at_once(tmp_path: Path) -> None:
    net, alice, bob = _pair(tmp_path)
    posts = Posts(bob)
    bob._on_link_ready()  # catching up, with nothing missed
    _arrive(net, bob, _missed(net, alice, ["live while catching up"]))
    assert len(posts.list_renders()) == 1  # a small change is drawn even during a catch-up
    assert "live while catching up" in regions(bob)["message-list"]

    _arrive(net, bob, _missed(net, alice, [f"burst {i}" for i in range(2 * LIST_JUMP)]))
    assert posts.list_renders() == []
    act(bob, "send", text="mine")  # what the person does is drawn at once, the jump with it
    assert len(posts.list_renders()) == 1
    html = regions(bob)["message-list"]
    assert "mine" in html
    assert "burst 39" in html

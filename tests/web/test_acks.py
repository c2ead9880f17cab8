"""Own messages show as pending until a storage worker acknowledges them: the row turns as
the acknowledgement arrives (not on the next tick), and the list of own events kept for
re-sending stays bounded behind a relay that has no storage at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from willow_web import app as app_module

from .harness import Net, act, regions, st

STORAGE = {"role": "storage", "key": "ab" * 32}


def _classes(app: app_module.App, message_id: bytes) -> list[str]:
    """The class list of the message's element in the list the page was last given."""
    html = regions(app)["message-list"]
    at = html.index(f'id="m-{message_id.hex()}"')
    opening = html.rindex('class="', 0, at) + len('class="')
    return html[opening : html.index('"', opening)].split()


def test_a_message_turns_from_pending_as_its_acknowledgement_arrives(tmp_path: Path) -> None:
    net = Net(services=[STORAGE])
    alice = net.app(tmp_path / "a", "Alice")
    act(alice, "create-community", name="Acks")
    act(alice, "send", text="first")
    act(alice, "send", text="second")
    server = alice.ui.community
    assert server is not None
    channel = alice.channel_id
    assert channel is not None
    first, second = st(alice).channels[channel].messages[-2:]
    assert {first, second} <= alice.pending_ids()
    assert "pending" in _classes(alice, first)

    assert alice.node is not None
    alice.node.stored[first] = {bytes.fromhex(STORAGE["key"])}  # its acknowledgement came
    assert alice.notice_acks()
    alice.render()
    assert first not in alice.pending_ids()
    assert second in alice.pending_ids()
    assert "pending" not in _classes(alice, first)
    assert "pending" in _classes(alice, second)
    assert not alice.notice_acks()  # nothing new
    alice.node.stored[second] = {bytes.fromhex(STORAGE["key"])}  # and the next one
    assert alice.notice_acks()
    assert not alice.pending_ids() & {first, second}


def test_unacknowledged_own_events_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "MAX_UNACKED", 8)
    net = Net()  # a relay without storage: nothing is ever acknowledged
    alice = net.app(tmp_path / "a", "Alice")
    act(alice, "create-community", name="No storage")
    server = alice.ui.community
    assert server is not None
    for i in range(20):
        act(alice, "send", text=f"message {i}")
    kept = alice.ui.unacked[server]
    assert len(kept) <= 8
    channel = alice.channel_id
    assert channel is not None
    newest = st(alice).channels[channel].messages[-1]
    assert newest in kept  # the newest are what a reconnect re-sends

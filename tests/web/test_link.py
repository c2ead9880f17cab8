"""The browser's relay session, sans I/O: handshake, subscriptions, queued publishes, pinning."""

from __future__ import annotations

import pytest

from willow_core.errors import DecodeError
from willow_core.node import Node
from willow_core.testing import identity
from willow_core.wire import FrameType, hello_frame, parse_frame, ready_frame
from willow_web.link import LinkState, RelayLink

RELAY = identity("link/relay").public_key


def test_handshake_then_subscribe_then_publish_what_was_queued() -> None:
    node = Node(identity("link/me"))
    readied: list[int] = []
    link = RelayLink(node, on_ready=lambda: readied.append(1))
    node.create("Queued while offline", 1_800_000_000_000)
    assert link.flush() == []  # not connected: held
    link.opened()
    (auth,) = link.receive(hello_frame(RELAY, b"c" * 32), 0)
    assert parse_frame(auth)[0] is FrameType.AUTH
    out = link.receive(ready_frame(), 0)
    assert link.state is LinkState.READY
    assert readied == [1]
    kinds = [parse_frame(f)[0] for f in out]
    assert kinds[0] is FrameType.SUBSCRIBE
    assert FrameType.PUBLISH in kinds


def test_a_relay_with_another_key_is_refused() -> None:
    link = RelayLink(Node(identity("link/me")))
    link.pinned_key = identity("link/other").public_key
    link.opened()
    with pytest.raises(DecodeError):
        link.receive(hello_frame(RELAY, b"c" * 32), 0)


def test_frames_out_of_place_are_protocol_errors() -> None:
    link = RelayLink(Node(identity("link/me")))
    link.opened()
    with pytest.raises(DecodeError):
        link.receive(ready_frame(), 0)  # READY before HELLO

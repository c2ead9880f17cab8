"""One relay session, sans I/O: the browser shell moves bytes, this decides what they mean.

The same session as the native ``relay.peer.PeerConnection`` (HELLO, AUTH, READY, SUBSCRIBE,
PUBLISH), written without a socket so the Pyodide shell (``js.WebSocket``) and CPython tests
drive it alike. Envelopes the node produces while no session is ready wait in a bounded queue;
overflowing it drops the oldest, which loses nothing: the events stay in the node's DAG and the
app republishes whatever storage has not acknowledged on the next session.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import Enum

from willow_core.errors import DecodeError
from willow_core.node import Node
from willow_core.wire import (
    FrameType,
    auth_frame,
    parse_frame,
    publish_frame,
    subscribe_frame,
    unsubscribe_frame,
)

__all__ = ["RelayLink", "LinkState", "MAX_QUEUED_ENVELOPES", "TOPICS_PER_FRAME"]

#: Envelopes held while not connected (events themselves stay in the DAG).
MAX_QUEUED_ENVELOPES = 5_000
#: Topics per SUBSCRIBE frame (the relay's per-frame bound is larger).
TOPICS_PER_FRAME = 64


class LinkState(Enum):
    CLOSED = "closed"
    HANDSHAKE = "handshake"
    READY = "ready"


class RelayLink:
    """Frames in, frames out, for the node's one relay session at a time."""

    def __init__(self, node: Node, on_ready: Callable[[], None] | None = None) -> None:
        self.node = node
        self.on_ready = on_ready
        self.state = LinkState.CLOSED
        self.relay_key: bytes | None = None
        #: the relay key this client expects (from the signed capability document), if known
        self.pinned_key: bytes | None = None
        self.sessions = 0
        self.errors: list[str] = []
        self._queue: deque[bytes] = deque(maxlen=MAX_QUEUED_ENVELOPES)
        self._subscribed: set[bytes] = set()

    @property
    def ready(self) -> bool:
        return self.state is LinkState.READY

    def opened(self) -> None:
        """The socket is open; the relay speaks first (HELLO)."""
        self.state = LinkState.HANDSHAKE
        self.relay_key = None

    def closed(self) -> None:
        self.state = LinkState.CLOSED
        self._subscribed = set()

    def receive(self, frame: bytes, now_ms: int) -> list[bytes]:
        """Handle one frame from the relay; returns frames to send back.

        Raises:
            DecodeError: the relay broke the protocol (the shell closes and reconnects).
        """
        frame_type, fields = parse_frame(frame)
        if frame_type is FrameType.PUBLISH and self.state is LinkState.READY:
            envelope = fields[0]
            assert isinstance(envelope, bytes)
            self.node.receive(envelope, now_ms)
            return self.flush()
        if frame_type is FrameType.HELLO and self.state is LinkState.HANDSHAKE:
            relay_key, challenge = fields
            assert isinstance(relay_key, bytes)
            assert isinstance(challenge, bytes)
            if self.pinned_key is not None and relay_key != self.pinned_key:
                raise DecodeError("the relay's key is not the one its capability document names")
            self.relay_key = relay_key
            return [auth_frame(self.node.identity, relay_key, challenge)]
        if frame_type is FrameType.READY and self.state is LinkState.HANDSHAKE and self.relay_key:
            self.state = LinkState.READY
            self.sessions += 1
            if self.on_ready is not None:
                self.on_ready()
            return self.flush()
        if frame_type is FrameType.ERROR:
            self.errors.append(" ".join(str(f) for f in fields))
            del self.errors[:-20]
            return []
        raise DecodeError(f"unexpected {frame_type.name} in state {self.state.value}")

    def flush(self) -> list[bytes]:
        """Frames for new subscriptions and everything the node wants published."""
        self._queue.extend(self.node.drain())
        if self.state is not LinkState.READY:
            return []
        out: list[bytes] = []
        wanted = set(self.node.topics())
        new = sorted(wanted - self._subscribed)
        old = sorted(self._subscribed - wanted)
        for i in range(0, len(new), TOPICS_PER_FRAME):
            out.append(subscribe_frame(new[i : i + TOPICS_PER_FRAME]))
        for i in range(0, len(old), TOPICS_PER_FRAME):
            out.append(unsubscribe_frame(old[i : i + TOPICS_PER_FRAME]))
        self._subscribed = wanted
        while self._queue:
            out.append(publish_frame(self._queue.popleft()))
        return out

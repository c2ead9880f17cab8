"""One connection's side of the relay protocol, independent of the transport.

A transport (``relay.ws``, ``relay.tcp``) delivers whole frames to ``Session.on_frame`` and
implements ``Link`` (send a frame, close after an error, report its outgoing buffer). Phases::

    AUTH ──AUTH ok──> READY ──(error that closes, transport lost, shutdown)──> CLOSED
      └── AUTH bad / timeout / any other frame ──> CLOSED

On connect the relay sends ``HELLO(relay_key, challenge)`` (32 random bytes per connection); the
client answers ``AUTH(key, signature over wire.auth_message(relay_key, challenge))`` within
``Limits.auth_timeout_s``; the relay answers ``READY``. Then ``SUBSCRIBE``/``UNSUBSCRIBE`` and
``PUBLISH`` in any order. Frames are handled in arrival order and each is checked cheapest
first, so rejecting junk never costs a signature verification:

1. size (the transport refuses an over-cap frame before reading or decoding it);
2. the connection's frame budget (over it: ERROR ``FLOODING``, disconnect);
3. frame decoding and shape (``wire.parse_frame``; bad: ERROR ``MALFORMED``, disconnect);
4. for ``PUBLISH``: the key's publish budget, the envelope's shape, sender == authenticated key,
   then the envelope signature. Any failure drops that publish with an ERROR; the connection
   stays. Only then are the *exact frame bytes received* handed to the bus for fan-out.

Envelope bodies are opaque here: the relay never looks inside one (events, sync requests, heads
summaries, ciphertext are all the same to it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, cast

from willow_core import crypto
from willow_core.errors import DecodeError
from willow_core.wire import (
    MAX_FRAME_BYTES,
    FrameType,
    auth_message,
    error_frame,
    hello_frame,
    open_envelope,
    parse_frame,
    ready_frame,
    verify_envelope,
)

from .bus import FanOut
from .codes import ErrorCode
from .limits import TokenBucket

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["Link", "Phase", "Session", "CHALLENGE_BYTES"]

#: Fresh random bytes per connection; a signature over them proves the key is present now.
CHALLENGE_BYTES = 32


class Link(Protocol):
    """What a session needs from its transport. Every method is synchronous and non-blocking."""

    @property
    def fan_out(self) -> FanOut: ...

    @property
    def sink(self) -> Any: ...

    def send(self, frame: bytes) -> None:
        """Queue one frame (a no-op once the connection is closing)."""

    def close(self, code: ErrorCode, text: str) -> None:
        """Close after the ERROR frame already sent; abort if not done within the grace time."""

    def buffered(self) -> int:
        """Bytes waiting in the outgoing buffer (not yet taken by the kernel)."""


class Phase(Enum):
    AUTH = "auth"
    READY = "ready"
    CLOSED = "closed"


class Session:
    """One connection: handshake, subscriptions, checked publishes."""

    __slots__ = ("hub", "link", "fan_out", "sink", "key", "challenge", "phase", "frames", "_timer")

    def __init__(self, hub: Hub, link: Link) -> None:
        self.hub = hub
        self.link = link
        # The bus reads these two on every membership change; copied once from the link.
        self.fan_out: FanOut = link.fan_out
        self.sink: Any = link.sink
        self.key: bytes | None = None
        self.challenge = os.urandom(CHALLENGE_BYTES)
        self.phase = Phase.AUTH
        limits = hub.limits
        self.frames = TokenBucket(limits.conn_frames_per_s, limits.conn_frame_burst, hub.clock())
        self._timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        who = self.key.hex()[:16] if self.key else "unauthenticated"
        return f"Session({who}, {self.phase.value})"

    def is_closed(self) -> bool:
        return self.phase is Phase.CLOSED

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Greet the peer (or turn it away) and start the authentication clock."""
        hub = self.hub
        if not hub.accepting:
            self.fail(ErrorCode.SHUTTING_DOWN, "relay is shutting down")
            return
        if len(hub.sessions) > hub.limits.max_connections:
            self.fail(ErrorCode.RELAY_FULL, "relay is at its connection limit")
            return
        self.link.send(hello_frame(hub.key, self.challenge))
        self._timer = hub.loop.call_later(hub.limits.auth_timeout_s, self._auth_expired)

    def _auth_expired(self) -> None:
        self._timer = None
        if self.phase is Phase.AUTH:
            self.fail(ErrorCode.AUTH_TIMEOUT, "no AUTH in time")

    def fail(self, code: ErrorCode, text: str) -> None:
        """Send ERROR and close the connection (idempotent)."""
        if self.phase is Phase.CLOSED:
            return
        self._teardown()
        self.hub.count_error(code)
        self.link.send(error_frame(int(code), text))
        self.link.close(code, text)

    def lost(self) -> None:
        """The transport is gone (peer closed, reset, or our close completed)."""
        if self.phase is not Phase.CLOSED:
            self._teardown()

    def _teardown(self) -> None:
        self.phase = Phase.CLOSED
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        hub = self.hub
        hub.bus.drop(self)
        hub.sessions.discard(self)
        if self.key is not None:
            hub.access.release(self.key, hub.clock())

    def overflow(self) -> None:
        """The outgoing buffer passed its bound: the slow-consumer policy (see relay.server)."""
        self.fail(ErrorCode.SLOW_CONSUMER, "outgoing buffer over its bound: read faster")

    def reject(self, code: ErrorCode, text: str) -> None:
        """Refuse one frame; the connection stays."""
        self.hub.count_error(code)
        self.link.send(error_frame(int(code), text))

    # --- frames ---------------------------------------------------------------------------

    def on_frame(self, data: bytes) -> None:
        """Handle one whole frame from the peer. Never raises for bad input."""
        if self.phase is Phase.CLOSED:
            return
        if len(data) > MAX_FRAME_BYTES:  # transports check first; this guards any other caller
            self.fail(ErrorCode.TOO_LARGE, f"frame over {MAX_FRAME_BYTES} bytes")
            return
        if not self.frames.take(self.hub.clock()):
            self.fail(ErrorCode.FLOODING, "too many frames per second")
            return
        try:
            frame_type, fields = parse_frame(data)
        except DecodeError as exc:
            self.fail(ErrorCode.MALFORMED, str(exc))
            return
        if self.phase is Phase.READY:
            if frame_type is FrameType.PUBLISH:
                self._publish(data, cast("bytes", fields[0]))  # parse_frame checked the shapes
            elif frame_type is FrameType.SUBSCRIBE:
                self._subscribe(cast("list[bytes]", fields[0]))
            elif frame_type is FrameType.UNSUBSCRIBE:
                self.hub.bus.unsubscribe(self, cast("list[bytes]", fields[0]))
            else:
                self.fail(ErrorCode.PROTOCOL, f"a client does not send {frame_type.name}")
        elif frame_type is FrameType.AUTH:
            self._auth(cast("bytes", fields[0]), cast("bytes", fields[1]))
        else:
            self.fail(ErrorCode.NOT_AUTHENTICATED, f"{frame_type.name} before AUTH")

    def _auth(self, key: bytes, signature: bytes) -> None:
        hub = self.hub
        if not crypto.ed25519_verify(key, auth_message(hub.key, self.challenge), signature):
            self.fail(ErrorCode.AUTH_FAILED, "AUTH signature does not verify")
            return
        if not hub.access.acquire(key, hub.clock()):
            self.fail(ErrorCode.TOO_MANY_CONNECTIONS, "this key holds too many connections")
            return
        self.key = key
        self.phase = Phase.READY
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.link.send(ready_frame())

    def _subscribe(self, topics: Sequence[bytes]) -> None:
        hub = self.hub
        key = self.key
        assert key is not None
        mine = hub.bus.topics_of(self)
        new = [t for t in topics if t not in mine]
        if not new:
            return
        forbidden = sum(1 for t in new if not hub.access.may_subscribe(key, t))
        if forbidden:
            self.reject(ErrorCode.FORBIDDEN_TOPIC, f"{forbidden} topic(s): another key's inbox")
            return
        limits = hub.limits
        if len(mine) + len(new) > limits.max_topics_per_connection:
            self.reject(
                ErrorCode.TOO_MANY_TOPICS,
                f"at most {limits.max_topics_per_connection} topics per connection",
            )
            return
        fresh = sum(1 for t in new if not hub.bus.has_topic(t))
        if hub.bus.topic_count + fresh > limits.max_topics:
            self.reject(ErrorCode.TOO_MANY_TOPICS, "relay topic table is full")
            return
        hub.bus.subscribe(self, new)

    def _publish(self, frame: bytes, payload: bytes) -> None:
        hub = self.hub
        key = self.key
        assert key is not None
        if not hub.access.budget(key).take(hub.clock(), len(frame)):
            self.reject(ErrorCode.RATE_LIMITED, "publish budget spent for this key")
            return
        try:
            envelope = open_envelope(payload)
        except DecodeError as exc:
            self.reject(ErrorCode.BAD_ENVELOPE, str(exc))
            return
        if envelope.sender != key:
            self.reject(ErrorCode.WRONG_SENDER, "envelope sender is not this connection's key")
            return
        if not verify_envelope(envelope):
            self.reject(ErrorCode.BAD_SIGNATURE, "envelope signature does not verify")
            return
        hub.publishes += 1
        hub.bus.publish(envelope.topic, frame, self)

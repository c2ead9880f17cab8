"""Every bound the relay enforces, as named constants with the reason for each, and token buckets.

ARCHITECTURE.md section 3: connections, topics per connection, messages per second per key, queue
depth per connection. Each default below is a module constant (so a reader finds the number and
its reason in one place); ``Limits`` bundles them so an operator (or a test) can change one without
editing code. The capability document (``relay.http``) publishes the values a relay runs with.

Rates are whole units per second: the capability document is canonical CBOR, which has no floats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from willow_core import wire

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_KEY",
    "MAX_TOPICS_PER_CONNECTION",
    "MAX_TOPICS",
    "AUTH_TIMEOUT_S",
    "CONN_FRAMES_PER_S",
    "CONN_FRAME_BURST",
    "KEY_PUBLISHES_PER_S",
    "KEY_PUBLISH_BURST",
    "KEY_BYTES_PER_S",
    "KEY_BYTE_BURST",
    "SEND_BUFFER_BYTES",
    "INBOUND_QUEUE_FRAMES",
    "CLOSE_GRACE_S",
    "KEEPALIVE_S",
    "KNOWN_INBOXES",
    "Limits",
    "TokenBucket",
]

#: One frame on either transport, checked before any decoding (the wire protocol's own cap).
MAX_FRAME_BYTES = wire.MAX_FRAME_BYTES
#: Open connections, authenticated or not. An idle WebSocket costs about 14 KiB in `websockets`
#: without compression plus our session (~1 KiB), so 10,000 idle peers stay near 150 MB; the
#: worst case (every connection at its send-buffer bound) is this times ``SEND_BUFFER_BYTES``.
MAX_CONNECTIONS = 10_000
#: Connections one key may hold at once: a person's tabs and devices, or a worker's small pool.
#: Stops one key from hoarding the relay's connection slots and multiplying its topic budget.
MAX_CONNECTIONS_PER_KEY = 16
#: Topics one connection may subscribe to: its inbox plus the communities it carries. A client
#: in more communities (or a worker carrying many) opens another connection.
MAX_TOPICS_PER_CONNECTION = 256
#: Distinct topics with at least one subscriber, relay-wide (a topic entry costs a few hundred
#: bytes); stops a swarm of keys from filling memory with one-subscriber topics.
MAX_TOPICS = 200_000
#: Time from connect to a valid AUTH. Signing one challenge takes well under a millisecond; ten
#: seconds covers a slow phone on a slow link and still frees a silent socket quickly.
AUTH_TIMEOUT_S = 10
#: Frames of any type one connection may send per second (sustained) and in one burst. Far above
#: any honest client (publishes are limited per key below); a connection over it is flooding and
#: is disconnected. Checked before a frame is decoded, so a flood costs O(1) per frame.
CONN_FRAMES_PER_S = 500
CONN_FRAME_BURST = 2_000
#: Envelopes one key may publish per second across all its connections, and in one burst. A
#: person chats at a few per second; the burst covers a sync answer (a burst of batches to one
#: inbox). Over the limit a publish is dropped with ERROR ``RATE_LIMITED`` (the connection stays).
KEY_PUBLISHES_PER_S = 200
KEY_PUBLISH_BURST = 1_000
#: Bytes one key may publish per second and in one burst: 32 MiB is a large sync answer (about
#: 100,000 events); the sustained rate keeps one key from taking a relay's whole uplink.
KEY_BYTES_PER_S = 8 * 1024 * 1024
KEY_BYTE_BURST = 32 * 1024 * 1024
#: Slow-consumer bound: bytes waiting in one connection's outgoing buffer (beyond what the kernel
#: accepted). Four maximum-size frames; a reader that falls this far behind is disconnected with
#: ERROR ``SLOW_CONSUMER`` instead of letting the relay's memory grow. Sync answers come one
#: window (``willow_core.sync.WINDOW_BYTES`` = 384 KiB) at a time per exchange, so a reader busy
#: verifying a catch-up stays well within it; only a reader that really stops reading crosses it.
SEND_BUFFER_BYTES = 1024 * 1024
#: Received WebSocket messages queued before the relay stops reading that socket (the relay
#: handles each message synchronously, so the queue is normally empty).
INBOUND_QUEUE_FRAMES = 4
#: After the relay closes a connection (error, slow consumer, shutdown), the peer gets this long
#: to read the ERROR and acknowledge; then the socket is aborted.
CLOSE_GRACE_S = 2
#: WebSocket keepalive: an idle peer is pinged this often and dropped if no pong comes back
#: within the same time, so dead connections (a closed laptop lid) free their slot and buffers.
KEEPALIVE_S = 20
#: Departed keys whose publish budgets are still refilling (relay.access); beyond this the
#: oldest are forgotten. About 100 bytes each.
KNOWN_INBOXES = 100_000


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds one relay runs with (defaults: the module constants above)."""

    max_connections: int = MAX_CONNECTIONS
    max_connections_per_key: int = MAX_CONNECTIONS_PER_KEY
    max_topics_per_connection: int = MAX_TOPICS_PER_CONNECTION
    max_topics: int = MAX_TOPICS
    auth_timeout_s: float = AUTH_TIMEOUT_S
    conn_frames_per_s: int = CONN_FRAMES_PER_S
    conn_frame_burst: int = CONN_FRAME_BURST
    key_publishes_per_s: int = KEY_PUBLISHES_PER_S
    key_publish_burst: int = KEY_PUBLISH_BURST
    key_bytes_per_s: int = KEY_BYTES_PER_S
    key_byte_burst: int = KEY_BYTE_BURST
    send_buffer_bytes: int = SEND_BUFFER_BYTES
    inbound_queue_frames: int = INBOUND_QUEUE_FRAMES
    close_grace_s: float = CLOSE_GRACE_S
    keepalive_s: float = KEEPALIVE_S
    known_inboxes: int = KNOWN_INBOXES

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"limit {name} must be positive, got {value}")
        if self.key_byte_burst < MAX_FRAME_BYTES:
            raise ValueError("key_byte_burst must admit at least one maximum-size frame")
        if self.known_inboxes <= self.max_connections:
            raise ValueError("known_inboxes must exceed max_connections (live keys are kept)")

    def document(self) -> dict[str, int]:
        """The limits a client should respect, for the capability document (integers only)."""
        return {
            "max_frame_bytes": MAX_FRAME_BYTES,
            "max_body_bytes": wire.MAX_BODY_BYTES,
            "max_topics_per_frame": wire.MAX_TOPICS_PER_FRAME,
            "max_topics_per_connection": self.max_topics_per_connection,
            "max_connections_per_key": self.max_connections_per_key,
            "auth_timeout_ms": round(self.auth_timeout_s * 1000),
            "conn_frames_per_s": self.conn_frames_per_s,
            "conn_frame_burst": self.conn_frame_burst,
            "key_publishes_per_s": self.key_publishes_per_s,
            "key_publish_burst": self.key_publish_burst,
            "key_bytes_per_s": self.key_bytes_per_s,
            "key_byte_burst": self.key_byte_burst,
            "send_buffer_bytes": self.send_buffer_bytes,
        }


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; starts full. Time is passed in (seconds)."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are that many; report whether it did."""
        self._refill(now)
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def full(self, now: float) -> bool:
        """Whether the bucket is back at its burst (forgetting it then loses nothing)."""
        self._refill(now)
        return self.tokens >= self.burst

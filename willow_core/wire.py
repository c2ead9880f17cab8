"""Envelopes and relay frames: everything that crosses a socket, sans I/O.

Two layers, both canonical CBOR arrays:

* A **frame** is what a client and a relay exchange over one connection (WebSocket message or
  length-prefixed TCP frame): ``[frame_type, ...]``. The relay reads frames; it never reads
  envelope bodies.
* An **envelope** is what peers send *each other* through the relay's topics: a topic, a message
  kind, an opaque body and the sender's signature over all of them (domain-separated). The relay
  checks the signature, the size and that the sender is the connection's authenticated key,
  then forwards the ``PUBLISH`` frame bytes unchanged to the topic's subscribers.

Topics are 32 bytes: a type byte (``0x00`` a community, ``0x01`` an inbox) and 31 bytes of a
personalized BLAKE2b hash. One topic per community (``community_topic``) and one inbox per key
(``inbox_topic``). Because the type is visible, a relay refuses a subscription to any inbox but
the authenticated key's own: only you can listen to your inbox; anyone can post to it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from . import crypto
from .encoding import decode, encode
from .errors import DecodeError
from .identity import Identity

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_BODY_BYTES",
    "MAX_TOPICS_PER_FRAME",
    "ENVELOPE_TAG",
    "AUTH_TAG",
    "FrameType",
    "MessageKind",
    "Envelope",
    "COMMUNITY_TOPIC",
    "INBOX_TOPIC",
    "community_topic",
    "inbox_topic",
    "seal",
    "open_envelope",
    "verify_envelope",
    "hello_frame",
    "auth_frame",
    "auth_message",
    "ready_frame",
    "subscribe_frame",
    "unsubscribe_frame",
    "publish_frame",
    "error_frame",
    "parse_frame",
]

#: One frame on any transport (ARCHITECTURE.md section 3), checked before decoding.
MAX_FRAME_BYTES = 256 * 1024
#: An envelope body leaves room for the envelope and frame around it.
MAX_BODY_BYTES = MAX_FRAME_BYTES - 512
#: Topics named in one (un)subscribe frame.
MAX_TOPICS_PER_FRAME = 64

ENVELOPE_TAG = "willow/envelope/v1"
AUTH_TAG = "willow/relay-auth/v1"


class FrameType(IntEnum):
    HELLO = 0  # relay -> client: [0, relay_key, challenge]
    AUTH = 1  # client -> relay: [1, key, signature over auth_message]
    READY = 2  # relay -> client: [2]
    SUBSCRIBE = 3  # client -> relay: [3, [topic...]]
    UNSUBSCRIBE = 4  # client -> relay: [4, [topic...]]
    PUBLISH = 5  # both ways: [5, envelope bytes]
    ERROR = 6  # relay -> client: [6, code, text]


class MessageKind(IntEnum):
    """What an envelope body is; the relay forwards every kind alike."""

    EVENTS = 1  # [event wire...] new events, on a community topic
    SYNC_REQUEST = 2
    SYNC_BATCH = 3
    SYNC_DONE = 4
    SNAPSHOT_REQUEST = 5
    SNAPSHOT_CHUNK = 6
    STORED = 7  # storage acknowledgement: [server, [event id...]]
    SERVE = 8  # ask a worker to carry a community: [server]
    HISTORY_REQUEST = 9
    HISTORY_PAGE = 10


class Envelope(NamedTuple):
    topic: bytes
    kind: MessageKind
    body: bytes
    sender: bytes
    sig: bytes
    raw: bytes

    def signed_bytes(self) -> bytes:
        return _signed_bytes(self.topic, self.kind, self.body, self.sender)


COMMUNITY_TOPIC = 0x00
INBOX_TOPIC = 0x01


def community_topic(server_id: bytes) -> bytes:
    return bytes([COMMUNITY_TOPIC]) + crypto.blake2b(
        server_id, digest_size=31, person=b"willow-server"
    )


def inbox_topic(public_key: bytes) -> bytes:
    return bytes([INBOX_TOPIC]) + crypto.blake2b(public_key, digest_size=31, person=b"willow-inbox")


def _signed_bytes(topic: bytes, kind: int, body: bytes, sender: bytes) -> bytes:
    return encode([ENVELOPE_TAG, topic, int(kind), body, sender])


def seal(identity: Identity, topic: bytes, kind: MessageKind, body: bytes) -> bytes:
    """Sign an envelope from ``identity``; returns its bytes."""
    if len(body) > MAX_BODY_BYTES:
        raise DecodeError(f"envelope body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
    sig = identity.sign(_signed_bytes(topic, kind, body, identity.public_key))
    return encode([topic, int(kind), body, identity.public_key, sig])


def open_envelope(data: bytes) -> Envelope:
    """Decode an envelope (the signature is *not* checked here: see ``verify_envelope``)."""
    value = decode(data, max_bytes=MAX_FRAME_BYTES)
    if type(value) is not list or len(value) != 5:
        raise DecodeError("an envelope is [topic, kind, body, sender, signature]")
    topic, kind, body, sender, sig = value
    if type(topic) is not bytes or len(topic) != 32:
        raise DecodeError("topic must be 32 bytes")
    if type(body) is not bytes or len(body) > MAX_BODY_BYTES:
        raise DecodeError("body must be bytes within the cap")
    if type(sender) is not bytes or len(sender) != 32:
        raise DecodeError("sender must be a 32-byte key")
    if type(sig) is not bytes or len(sig) != 64:
        raise DecodeError("signature must be 64 bytes")
    try:
        message_kind = MessageKind(kind)
    except ValueError:
        raise DecodeError(f"unknown message kind {kind!r}") from None
    return Envelope(topic, message_kind, body, sender, sig, data)


def verify_envelope(envelope: Envelope) -> bool:
    return crypto.ed25519_verify(envelope.sender, envelope.signed_bytes(), envelope.sig)


# --- frames -------------------------------------------------------------------------------


def auth_message(relay_key: bytes, challenge: bytes) -> bytes:
    """What a client signs to prove its key to one relay for one connection."""
    return encode([AUTH_TAG, relay_key, challenge])


def hello_frame(relay_key: bytes, challenge: bytes) -> bytes:
    return encode([int(FrameType.HELLO), relay_key, challenge])


def auth_frame(identity: Identity, relay_key: bytes, challenge: bytes) -> bytes:
    sig = identity.sign(auth_message(relay_key, challenge))
    return encode([int(FrameType.AUTH), identity.public_key, sig])


def ready_frame() -> bytes:
    return encode([int(FrameType.READY)])


def subscribe_frame(topics: list[bytes]) -> bytes:
    return encode([int(FrameType.SUBSCRIBE), sorted(set(topics))])


def unsubscribe_frame(topics: list[bytes]) -> bytes:
    return encode([int(FrameType.UNSUBSCRIBE), sorted(set(topics))])


def publish_frame(envelope: bytes) -> bytes:
    return encode([int(FrameType.PUBLISH), envelope])


def error_frame(code: int, text: str) -> bytes:
    return encode([int(FrameType.ERROR), code, text[:200]])


Frame = tuple[FrameType, list[object]]


def parse_frame(data: bytes) -> tuple[FrameType, list[object]]:
    """Decode and shape-check one frame; returns its type and remaining fields.

    Raises:
        DecodeError: over the cap, malformed, or fields of the wrong type.
    """
    if len(data) > MAX_FRAME_BYTES:
        raise DecodeError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    value = decode(data, max_bytes=MAX_FRAME_BYTES)
    if type(value) is not list or not value or type(value[0]) is not int:
        raise DecodeError("a frame is [type, ...]")
    try:
        frame_type = FrameType(value[0])
    except ValueError:
        raise DecodeError(f"unknown frame type {value[0]}") from None
    fields = value[1:]
    _check_frame(frame_type, fields)
    return frame_type, fields


def _is_key(value: object) -> bool:
    return type(value) is bytes and len(value) == 32


def _check_frame(frame_type: FrameType, fields: list[object]) -> None:
    ok: bool
    if frame_type is FrameType.HELLO:
        ok = len(fields) == 2 and _is_key(fields[0]) and _is_key(fields[1])
    elif frame_type is FrameType.AUTH:
        ok = (
            len(fields) == 2
            and _is_key(fields[0])
            and type(fields[1]) is bytes
            and len(fields[1]) == 64
        )
    elif frame_type is FrameType.READY:
        ok = not fields
    elif frame_type in (FrameType.SUBSCRIBE, FrameType.UNSUBSCRIBE):
        topics = fields[0] if len(fields) == 1 else None
        ok = (
            type(topics) is list
            and len(topics) <= MAX_TOPICS_PER_FRAME
            and all(_is_key(t) for t in topics)
        )
    elif frame_type is FrameType.PUBLISH:
        ok = len(fields) == 1 and type(fields[0]) is bytes
    else:
        ok = (
            len(fields) == 2
            and type(fields[0]) is int
            and type(fields[1]) is str
            and len(fields[1]) <= 200
        )
    if not ok:
        raise DecodeError(f"malformed {frame_type.name} frame")

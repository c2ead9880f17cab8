"""The relay's ERROR codes: what went wrong, and whether the connection survives it.

An ERROR frame is ``[6, code, text]`` (``willow_core.wire.error_frame``). Codes marked *close*
are followed by the relay closing the connection: on WebSocket with close code ``4000 + code``
and the same text as reason, on TCP by closing the socket after the ERROR frame. The other
codes reject one frame and the connection stays usable. (One exception: a WebSocket message over
the frame cap is refused by the WebSocket layer itself, before it is read, with the standard close
code 1009 "message too big".)
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ErrorCode", "CLOSING", "ws_close_code"]


class ErrorCode(IntEnum):
    MALFORMED = 1  # close: not a frame (bad CBOR, wrong shape, text WebSocket message)
    TOO_LARGE = 2  # close: over the frame cap (TCP: refused from the length prefix alone)
    NOT_AUTHENTICATED = 3  # close: a frame other than AUTH before READY
    AUTH_FAILED = 4  # close: AUTH signature does not verify for this relay and challenge
    AUTH_TIMEOUT = 5  # close: no AUTH within the timeout
    PROTOCOL = 6  # close: a frame a client never sends (HELLO, READY, ERROR, a second AUTH)
    FLOODING = 7  # close: over the per-connection frame rate
    SLOW_CONSUMER = 8  # close: outgoing buffer over its bound (the peer does not read)
    RELAY_FULL = 9  # close: the relay is at its connection limit
    TOO_MANY_CONNECTIONS = 10  # close: this key holds its maximum number of connections
    SHUTTING_DOWN = 11  # close: the relay is stopping
    BAD_ENVELOPE = 20  # drop: the PUBLISH payload is not an envelope
    WRONG_SENDER = 21  # drop: envelope sender is not the connection's authenticated key
    BAD_SIGNATURE = 22  # drop: envelope signature does not verify
    RATE_LIMITED = 23  # drop: the key's publish budget (count or bytes) is spent
    TOO_MANY_TOPICS = 24  # drop: the (un)subscribe would exceed a topic limit; nothing changed
    FORBIDDEN_TOPIC = 25  # drop: another key's inbox; or such a subscription was removed


#: Codes after which the relay closes the connection.
CLOSING = frozenset(code for code in ErrorCode if code < 20)


def ws_close_code(code: ErrorCode) -> int:
    """The WebSocket close code sent after a closing ERROR (private-use range 4000-4999)."""
    return 4000 + int(code)

"""Signed events (D3): the canonical signable bytes, the event id, and the wire form.

Signable bytes are the canonical CBOR array::

    ["willow/event/v1", server_id | null, author, seq, prev, [deps...], ts_ms, kind, [payload...]]

The leading text is the domain-separation tag, so an event signature can never be confused with
a signature made for another purpose. ``server_id`` (the genesis event's id) is bound into every
non-genesis event, so one community's events cannot be replayed into another. The event id is
SHA-256 of the signable bytes (never of the signature, which a signer could vary). On the wire an
event is the canonical array ``[signable_bytes, signature]``.

Structural rules that need no other event are checked here, at decode; rules that need the DAG
(signature, seq continuity, server binding) are in ``dag``.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from . import crypto
from .encoding import decode_unchecked, encode
from .errors import DecodeError, LocalError
from .kinds import PAYLOAD_KINDS, PAYLOAD_SPECS, Kind, Payload

__all__ = [
    "Event",
    "EVENT_TAG",
    "ZERO_ID",
    "MAX_EVENT_BYTES",
    "MAX_DEPS",
    "decode_event",
    "sign_event",
    "verify_event",
    "payload_to_cbor",
]

EVENT_TAG = "willow/event/v1"
#: ``prev`` of an author's first event.
ZERO_ID = bytes(32)
#: An event must fit in one 256 KiB frame with its envelope around it.
MAX_EVENT_BYTES = 240 * 1024
#: Cross-author dependencies per event; more buys nothing and costs every peer (SEC #236).
MAX_DEPS = 64
_FIELDS = 9

_sha256 = hashlib.sha256


class Event(NamedTuple):
    """A decoded, structurally valid event. Immutable; ``id`` is its content hash."""

    id: bytes
    server: bytes | None
    author: bytes
    seq: int
    prev: bytes
    deps: tuple[bytes, ...]
    ts: int
    kind: Kind
    payload: Any
    signable: bytes
    sig: bytes

    @property
    def wire(self) -> bytes:
        """The bytes that travel and are stored: ``[signable, signature]``."""
        return encode([self.signable, self.sig])

    @property
    def parents(self) -> tuple[bytes, ...]:
        """Every event this one names: ``prev`` (when not the zero id) and ``deps``."""
        if self.seq == 1:
            return self.deps
        return (self.prev, *self.deps)


def payload_to_cbor(payload: Payload) -> tuple[Kind, list[Any]]:
    """Return ``(kind, payload array)`` for a payload dataclass."""
    kind = PAYLOAD_KINDS.get(type(payload))
    if kind is None:
        raise LocalError(f"{type(payload).__name__} is not an event payload")
    return kind, PAYLOAD_SPECS[kind].encode(payload)


def _check_structure(
    server: bytes | None, seq: int, prev: bytes, deps: tuple[bytes, ...], kind: Kind
) -> None:
    if len(deps) > MAX_DEPS:
        raise DecodeError(f"{len(deps)} deps exceeds the cap of {MAX_DEPS}")
    if any(a >= b for a, b in zip(deps, deps[1:])):
        raise DecodeError("deps must be strictly ascending")
    if seq < 1:
        raise DecodeError("seq starts at 1")
    if (seq == 1) != (prev == ZERO_ID):
        raise DecodeError("prev is the zero id exactly when seq is 1")
    if prev in deps:
        raise DecodeError("prev must not repeat in deps")
    if kind is Kind.CREATE_SERVER:
        if server is not None or seq != 1 or deps:
            raise DecodeError("genesis has no server id, seq 1 and no deps")
    else:
        if server is None:
            raise DecodeError("only genesis may omit the server id")
        if seq == 1 and not deps:
            # Anchors every chain to the community: an author's first event must name
            # something already in it, so every event descends from genesis.
            raise DecodeError("an author's first event must have at least one dep")


def decode_event(wire: bytes) -> Event:
    """Parse and structurally validate an event from its wire bytes.

    Raises:
        DecodeError: over ``MAX_EVENT_BYTES``, not canonical, or any field malformed.
    """
    outer = decode_unchecked(wire, max_bytes=MAX_EVENT_BYTES)
    if type(outer) is not list or len(outer) != 2:
        raise DecodeError("an event is [signable, signature]")
    signable, sig = outer
    if type(signable) is not bytes or type(sig) is not bytes or len(sig) != 64:
        raise DecodeError("an event is [signable bytes, 64-byte signature]")
    fields = decode_unchecked(signable, max_bytes=MAX_EVENT_BYTES)
    if type(fields) is not list or len(fields) != _FIELDS or fields[0] != EVENT_TAG:
        raise DecodeError("not a willow/event/v1 signable array")
    _, server, author, seq, prev, deps, ts, kind_value, payload_raw = fields
    if server is not None and (type(server) is not bytes or len(server) != 32):
        raise DecodeError("server id must be 32 bytes or null")
    if type(author) is not bytes or len(author) != 32:
        raise DecodeError("author must be a 32-byte public key")
    if type(prev) is not bytes or len(prev) != 32:
        raise DecodeError("prev must be 32 bytes")
    for value in (seq, ts, kind_value):
        if type(value) is not int or not 0 <= value < 2**63:
            raise DecodeError("seq, ts and kind are unsigned integers")
    if type(deps) is not list or any(type(d) is not bytes or len(d) != 32 for d in deps):
        raise DecodeError("deps must be an array of 32-byte ids")
    try:
        kind = Kind(kind_value)
    except ValueError:
        raise DecodeError(f"unknown event kind {kind_value}") from None
    deps_t = tuple(deps)
    _check_structure(server, seq, prev, deps_t, kind)
    payload = PAYLOAD_SPECS[kind].decode(payload_raw)
    return Event(
        _sha256(signable).digest(),
        server,
        author,
        seq,
        prev,
        deps_t,
        ts,
        kind,
        payload,
        signable,
        sig,
    )


def sign_event(
    *,
    secret_key: bytes,
    author: bytes,
    server: bytes | None,
    seq: int,
    prev: bytes,
    deps: tuple[bytes, ...] | list[bytes],
    ts: int,
    payload: Payload,
) -> Event:
    """Build, sign and return an event; raises ``LocalError`` if it would not decode."""
    kind, payload_raw = payload_to_cbor(payload)
    sorted_deps = tuple(sorted(set(deps)))
    try:
        _check_structure(server, seq, prev, sorted_deps, kind)
        # Decode what we encode, so a local event is identical to the same event received.
        payload = PAYLOAD_SPECS[kind].decode(payload_raw)
    except DecodeError as exc:
        raise LocalError(f"invalid event: {exc}") from None
    signable = encode(
        [EVENT_TAG, server, author, seq, prev, list(sorted_deps), ts, int(kind), payload_raw]
    )
    if len(signable) + 80 > MAX_EVENT_BYTES:
        raise LocalError("event is over the size cap")
    sig = crypto.ed25519_sign(secret_key, signable)
    return Event(
        _sha256(signable).digest(),
        server,
        author,
        seq,
        prev,
        sorted_deps,
        ts,
        kind,
        payload,
        signable,
        sig,
    )


def verify_event(event: Event) -> bool:
    """Whether the event's signature is valid for its author."""
    return crypto.ed25519_verify(event.author, event.signable, event.sig)

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
from operator import lt as _lt
from typing import Any, NamedTuple

import cbor2

from . import crypto
from .encoding import canonical_length, decode_parts, encode
from .errors import DecodeError, LocalError
from .kinds import PAYLOAD_KINDS, PAYLOAD_SPECS, Kind, Payload

__all__ = [
    "Event",
    "EVENT_TAG",
    "ZERO_ID",
    "MAX_EVENT_BYTES",
    "MAX_DEPS",
    "decode_event",
    "decode_stored",
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
_UINT_LIMIT = 2**63
#: array head + tag text + author + prev, the parts of every event with a fixed length
_FIXED_LENGTH = 1 + canonical_length(EVENT_TAG) + 34 + 34


def _HEAD_LENGTH(n: int) -> int:
    """An unsigned integer's canonical encoding is exactly its head."""
    return 1 if n < 24 else 2 if n < 256 else 3 if n < 65536 else 5 if n < 4294967296 else 9


_GENESIS_KIND = Kind.CREATE_SERVER  # enum members read as module constants: a class lookup
_sha256 = hashlib.sha256
_new = tuple.__new__


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
    #: every event this one names: ``prev`` (unless it is the zero id) and ``deps``; derived
    #: once here because insert, ordering and walks all read it
    parents: tuple[bytes, ...] = ()

    @property
    def wire(self) -> bytes:
        """The bytes that travel and are stored: ``[signable, signature]``."""
        return _wire(self.signable, self.sig)


def _is_key(value: object) -> bool:
    return type(value) is bytes and len(value) == 32


def _wire(signable: bytes, sig: bytes) -> bytes:
    size = len(signable)
    if size < 24:
        head = bytes([0x40 + size])
    elif size < 256:
        head = bytes([0x58, size])
    elif size < 65536:
        head = b"\x59" + size.to_bytes(2, "big")
    else:
        head = b"\x5a" + size.to_bytes(4, "big")
    return b"\x82" + head + signable + b"\x58\x40" + sig


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
    if len(deps) > 1 and not all(map(_lt, deps, deps[1:])):
        raise DecodeError("deps must be strictly ascending")
    if seq < 1:
        raise DecodeError("seq starts at 1")
    if (seq == 1) != (prev == ZERO_ID):
        raise DecodeError("prev is the zero id exactly when seq is 1")
    if prev in deps:
        raise DecodeError("prev must not repeat in deps")
    if kind is _GENESIS_KIND:
        if server is not None or seq != 1 or deps:
            raise DecodeError("genesis has no server id, seq 1 and no deps")
    else:
        if server is None:
            raise DecodeError("only genesis may omit the server id")
        if seq == 1 and not deps:
            # Anchors every chain to the community: an author's first event must name
            # something already in it, so every event descends from genesis.
            raise DecodeError("an author's first event must have at least one dep")


def _split_wire(wire: bytes) -> tuple[bytes, bytes]:
    """Parse ``[bstr signable, bstr(64) sig]`` by hand, accepting only its canonical form.

    Equivalent to a canonical decode of the outer array, without re-encoding the event.
    """
    if type(wire) is not bytes:
        raise DecodeError("an event is bytes")
    if len(wire) > MAX_EVENT_BYTES:
        raise DecodeError(f"{len(wire)} bytes exceeds the cap of {MAX_EVENT_BYTES}")
    if len(wire) < 70 or wire[0] != 0x82:
        raise DecodeError("an event is the array [signable, signature]")
    head = wire[1]
    if 0x40 <= head < 0x58:
        size, start = head - 0x40, 2
    elif head == 0x58:
        size, start, least = wire[2], 3, 24
    elif head == 0x59:
        size, start, least = int.from_bytes(wire[2:4], "big"), 4, 256
    elif head == 0x5A:
        size, start, least = int.from_bytes(wire[2:6], "big"), 6, 65536
    else:
        raise DecodeError("signable must be a definite byte string")
    if head >= 0x58 and size < least:
        raise DecodeError("not canonical CBOR: overlong length")
    end = start + size
    if len(wire) != end + 66 or wire[end : end + 2] != b"\x58\x40":
        raise DecodeError("an event ends with its 64-byte signature")
    return wire[start:end], wire[end + 2 :]


_KIND_BY_VALUE = {int(k): k for k in Kind}
_CREATE_SERVER = Kind.CREATE_SERVER


def decode_event(wire: bytes) -> Event:
    """Parse and structurally validate an event from its wire bytes.

    Raises:
        DecodeError: over ``MAX_EVENT_BYTES``, not canonical, or any field malformed.
    """
    signable, sig = _split_wire(wire)
    fields = decode_parts(signable, max_bytes=MAX_EVENT_BYTES)
    if type(fields) is not list or len(fields) != _FIELDS or fields[0] != EVENT_TAG:
        raise DecodeError("not a willow/event/v1 signable array")
    _, server, author, seq, prev, deps, ts, kind_value, payload_raw = fields
    if (
        type(author) is not bytes
        or len(author) != 32
        or type(prev) is not bytes
        or len(prev) != 32
        or (server is not None and (type(server) is not bytes or len(server) != 32))
    ):
        raise DecodeError("server, author and prev are 32-byte strings")
    if (
        type(seq) is not int
        or type(ts) is not int
        or not 0 < seq < _UINT_LIMIT
        or not 0 <= ts < _UINT_LIMIT
    ):
        raise DecodeError("seq and ts are unsigned integers, seq from 1")
    kind = _KIND_BY_VALUE.get(kind_value) if type(kind_value) is int else None
    if kind is None:
        raise DecodeError(f"unknown event kind {kind_value!r}")
    if type(deps) is not list:
        raise DecodeError("deps must be an array")
    if deps and (set(map(type, deps)) != {bytes} or set(map(len, deps)) != {32}):
        raise DecodeError("deps must be 32-byte ids")
    deps_t = tuple(deps)
    _check_structure(server, seq, prev, deps_t, kind)
    spec = PAYLOAD_SPECS[kind]
    payload = spec.decode(payload_raw)
    # Every field's type is now known (the spec checked the payload), so the canonical proof
    # is a length comparison (see ``encoding``): 34 = head + 32 bytes.
    expected = (
        _FIXED_LENGTH
        + (1 if server is None else 34)
        + _HEAD_LENGTH(seq)
        + _HEAD_LENGTH(len(deps))
        + 34 * len(deps)
        + _HEAD_LENGTH(ts)
        + _HEAD_LENGTH(kind_value)
        + spec.size(payload_raw)
    )
    if expected != len(signable):
        raise DecodeError("not canonical CBOR")
    return _new(
        Event,
        (_sha256(signable).digest(), server, author, seq, prev, deps_t, ts, kind, payload,
         signable, sig, deps_t if seq == 1 else (prev, *deps_t)),
    )


def decode_stored(event_id: bytes, signable: bytes, sig: bytes) -> Event:
    """Rebuild an event from our own verified store, skipping every check.

    Only for bytes this process (or its worker) stored after ``decode_event`` and DAG insert
    accepted them; the store's key is the event id, so no hash is recomputed either.
    """
    _, server, author, seq, prev, deps, ts, kind_value, payload_raw = cbor2.loads(signable)
    kind = _KIND_BY_VALUE[kind_value]
    deps_t = tuple(deps)
    return _new(
        Event,
        (
            event_id,
            server,
            author,
            seq,
            prev,
            deps_t,
            ts,
            kind,
            _TRUSTED[kind](payload_raw),
            signable,
            sig,
            deps_t if seq == 1 else (prev, *deps_t),
        ),
    )


_TRUSTED = {kind: spec.trusted or spec.decode for kind, spec in PAYLOAD_SPECS.items()}


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
    if (
        not _is_key(author)
        or not _is_key(prev)
        or (server is not None and not _is_key(server))
        or not all(_is_key(d) for d in sorted_deps)
        or type(seq) is not int
        or type(ts) is not int
        or not 0 < seq < _UINT_LIMIT
        or not 0 <= ts < _UINT_LIMIT
    ):
        raise LocalError("invalid event: ids are 32 bytes; seq and ts are unsigned 63-bit")
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
        sorted_deps if seq == 1 else (prev, *sorted_deps),
    )


def verify_event(event: Event) -> bool:
    """Whether the event's signature is valid for its author."""
    return crypto.ed25519_verify(event.author, event.signable, event.sig)

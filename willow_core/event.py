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
from collections.abc import Callable
from operator import lt as _lt
from struct import Struct
from struct import error as StructError
from typing import Any, NamedTuple

import cbor2

from . import crypto
from .encoding import PARSE_ERRORS, encode, parse_strict, read_head, write_head
from .errors import DecodeError, LocalError
from .kinds import (
    MAX_MESSAGE_CHARS,
    MAX_SEALED_BYTES,
    PAYLOAD_KINDS,
    PAYLOAD_SPECS,
    Kind,
    Message,
    Payload,
    SealedMessage,
)
from .sealing import KEY_ID_BYTES, SALT_BYTES, Sealed

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
_UINT_LIMIT = 2**63
#: The signable array's head (9 fields) and its first field, the domain-separation tag.
_PREFIX = b"\x89" + encode(EVENT_TAG)
#: ``_MARK58[n]``, ``_MARK20[n]``: the two head bytes (``0x58 0x20``, a 32-byte string) of
#: ``n`` consecutive ids, read with a stride of 34.
_MARK58 = [b"\x58" * n for n in range(MAX_DEPS + 1)]
_MARK20 = [b"\x20" * n for n in range(MAX_DEPS + 1)]
_U16 = Struct(">H").unpack_from
_U32 = Struct(">I").unpack_from
#: ``0x58 0x20``: the head of a 32-byte string (server, author, prev, every dep)
_ID_HEAD = b"\x58\x20"
#: server and author of a non-genesis event, each with its head, in one read
_SERVER_AUTHOR = Struct(">2s32s2s32s").unpack_from
#: prev with its head, then the head byte of deps
_PREV_DEPS = Struct(">2s32sB").unpack_from
#: the same after a seq with a 2-byte argument (head byte, seq)
_SEQ16_PREV_DEPS = Struct(">BH2s32sB").unpack_from
#: a ts with an 8-byte argument (head byte, ts), then the kind's first byte
_TS_KIND = Struct(">BQB").unpack_from
#: ``_DEPS[n]``: the ids of ``n`` consecutive deps (each after its 2-byte head), in one read
_DEPS = [Struct(">" + "2x32s" * n).unpack_from for n in range(MAX_DEPS + 1)]
#: Server ids and author keys seen lately, each kept as one object: a history repeats a handful
#: of them in every event, and sharing them keeps a whole history's events much smaller (and
#: makes the DAG's lookups by author find the very key object). Bounded; equal values either way.
_KEYS: dict[bytes, bytes] = {}
_MAX_KEYS = 4096


def _keep(key: bytes) -> None:
    if len(_KEYS) >= _MAX_KEYS:
        _KEYS.clear()
    _KEYS[key] = key


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


_KIND_BY_VALUE = {int(k): k for k in Kind}
#: kind value -> (kind, the payload's hand reader if it has one, its one-pass
#: validate-and-measure for a strict parse)
_PAYLOADS: dict[
    int,
    tuple[Kind, Callable[[bytes, int], tuple[Any, int]] | None, Callable[[Any], tuple[Any, int]]],
] = {
    int(k): (k, spec.reader, spec.sized)
    for k, spec in PAYLOAD_SPECS.items()
    if spec.sized is not None
}
if len(_PAYLOADS) != len(PAYLOAD_SPECS):  # every payload spec is a record
    raise TypeError("a payload spec has no one-pass decoder")
_CREATE_SERVER = Kind.CREATE_SERVER


def decode_event(wire: bytes) -> Event:
    """Parse and structurally validate an event from its wire bytes.

    The wire layer and the signable array's fixed fields (tag, server, author, seq, prev, deps,
    ts, kind) are read by hand, accepting only their canonical bytes: that is cheaper than a
    generic parse and a type check per field, and it *is* the canonical proof for them. So is
    the payload when its record has a hand reader (``schema``: every kind whose fields are
    simple); any other payload is parsed strictly (``encoding.parse_strict``), validated by its
    kind's spec, and proven canonical by length (section 1.3 of docs/protocol.md).

    Raises:
        DecodeError: over ``MAX_EVENT_BYTES``, not canonical, or any field malformed.
    """
    if type(wire) is not bytes:
        raise DecodeError("an event is bytes")
    size = len(wire)
    if size > MAX_EVENT_BYTES:
        raise DecodeError(f"{size} bytes exceeds the cap of {MAX_EVENT_BYTES}")
    if size < 70 or wire[0] != 0x82:
        raise DecodeError("an event is the array [signable, signature]")
    # [bstr signable, bstr(64) sig], every head in its shortest form (protocol section 3.3)
    head = wire[1]
    if head == 0x59:
        end, start = _U16(wire, 2)[0], 4
        if end < 256:
            raise DecodeError("not canonical CBOR: overlong length")
    elif head == 0x58:
        end, start = wire[2], 3
        if end < 24:
            raise DecodeError("not canonical CBOR: overlong length")
    elif 0x40 <= head < 0x58:
        end, start = head - 0x40, 2
    elif head == 0x5A:
        end, start = _U32(wire, 2)[0], 6
        if end < 65536:
            raise DecodeError("not canonical CBOR: overlong length")
    else:
        raise DecodeError("signable must be a definite byte string")
    end += start
    if size != end + 66 or wire[end] != 0x58 or wire[end + 1] != 0x40:
        raise DecodeError("an event ends with its 64-byte signature")
    s = wire[start:end]
    sig = wire[end + 2 :]
    if not s.startswith(_PREFIX):
        raise DecodeError("not a willow/event/v1 signable array")
    try:
        if s[17] == 0xF6:  # genesis
            server = None
            if s[18] != 0x58 or s[19] != 0x20:
                raise DecodeError("author is a 32-byte string")
            author = s[20:52]
            p = 52
        else:
            mark, server, mark2, author = _SERVER_AUTHOR(s, 17)
            if mark != _ID_HEAD or mark2 != _ID_HEAD:
                raise DecodeError("server and author are 32-byte strings")
            p = 85
            # One object per community and per author, not per event (see ``_KEYS``).
            known = _KEYS.get(server)
            if known is None:
                _keep(server)
            else:
                server = known
            known = _KEYS.get(author)
            if known is None:
                _keep(author)
            else:
                author = known
        if s[p] == 0x19:  # seq 256..65535, the usual: seq, prev and the deps head in one read
            _, seq, mark, prev, count = _SEQ16_PREV_DEPS(s, p)
            if seq < 256:
                raise DecodeError("not canonical CBOR: overlong integer")
            p += 38
        else:
            seq = s[p]
            if seq < 24:
                p += 1
            else:
                seq, p = read_head(s, p, 0)
            mark, prev, count = _PREV_DEPS(s, p)
            p += 35
        if mark != _ID_HEAD:
            raise DecodeError("prev is a 32-byte string")
        count -= 0x80
        if count >= 24:
            if count != 24:  # 0x98 n is the only head an array of 24..64 ids can have
                raise DecodeError("deps must be an array of at most 64 ids")
            count = s[p]
            p += 1
            if not 24 <= count <= MAX_DEPS:
                raise DecodeError("deps: overlong head or over the cap of 64")
        elif count < 0:
            raise DecodeError("deps must be an array")
        if count:
            q = p + 34 * count
            if s[p:q:34] != _MARK58[count] or s[p + 1 : q : 34] != _MARK20[count]:
                raise DecodeError("deps must be 32-byte ids")
            deps = _DEPS[count](s, p)
            p = q
        else:
            deps = ()
        if s[p] == 0x1B:  # a millisecond time takes 8 bytes: ts and the kind in one read
            _, ts, kind_value = _TS_KIND(s, p)
            if ts < 4294967296:
                raise DecodeError("not canonical CBOR: overlong integer")
            p += 9
        else:
            ts, p = read_head(s, p, 0)
            kind_value = s[p]
        if kind_value < 24:
            p += 1
        else:
            kind_value, p = read_head(s, p, 0)
        entry = _PAYLOADS.get(kind_value)
        if entry is None:
            raise DecodeError(f"unknown event kind {kind_value!r}")
        kind, read, sized = entry
        if read is not None:
            payload, end = read(s, p)
            if end != len(s):
                raise DecodeError("not canonical CBOR: bytes after the payload")
        else:
            payload, end = sized(parse_strict(s[p:]))
            if end != len(s) - p:
                raise DecodeError("not canonical CBOR")
    except (IndexError, StructError):
        raise DecodeError("not valid CBOR: truncated signable array") from None
    except PARSE_ERRORS as exc:  # includes UnicodeDecodeError from a hand-read text
        raise DecodeError(f"not valid CBOR: {exc}") from None
    if seq >= _UINT_LIMIT or ts >= _UINT_LIMIT:
        raise DecodeError("seq and ts are below 2**63")
    # The common case (a later event of a member) needs only these comparisons; anything else
    # gets the full check, which accepts first events and genesis and names what is wrong.
    if (
        seq < 2
        or prev == ZERO_ID
        or server is None
        or kind is _GENESIS_KIND
        or (count and (prev in deps or (count > 1 and not all(map(_lt, deps, deps[1:])))))
    ):
        _check_structure(server, seq, prev, deps, kind)
    return _new(
        Event,
        (
            _sha256(s).digest(),
            server,
            author,
            seq,
            prev,
            deps,
            ts,
            kind,
            payload,
            s,
            sig,
            deps if seq == 1 else (prev, *deps),
        ),
    )


def decode_stored(event_id: bytes, signable: bytes, sig: bytes) -> Event:
    """Rebuild an event from our own verified store, skipping every check.

    Only for bytes this process (or its worker) stored after ``decode_event`` and DAG insert
    accepted them; the store's key is the event id, so no hash is recomputed either.
    """
    _, server, author, seq, prev, deps, ts, kind_value, payload_raw = cbor2.loads(signable)
    kind = _KIND_BY_VALUE[kind_value]
    server = _KEYS.get(server, server)
    known = _KEYS.get(author)
    if known is None:
        _keep(author)
    else:
        author = known
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
    """Build, sign and return an event; raises ``LocalError`` if it would not decode.

    The event is exactly what ``decode_event`` gives for its wire bytes: the payload is
    validated by its kind's spec (the checks ingest runs) and the signable bytes are canonical.
    They are written by hand (``_fast_signable``), a kind with a writer of its own skipping the
    generic encode and validate; anything that path declines goes through
    ``_checked_signable``, which encodes with the CBOR library, decodes the payload back and
    names what is wrong. Both give the same bytes (tests/core/test_sign_event.py).
    """
    built = _fast_signable(server, author, seq, prev, deps, ts, payload)
    if built is None:
        built = _checked_signable(server, author, seq, prev, deps, ts, payload)
    signable, sorted_deps, kind, value = built
    if len(signable) + 80 > MAX_EVENT_BYTES:
        raise LocalError("event is over the size cap")
    sig = _sign(secret_key, signable)
    return _new(
        Event,
        (
            _sha256(signable).digest(),
            server,
            author,
            seq,
            prev,
            sorted_deps,
            ts,
            kind,
            value,
            signable,
            sig,
            sorted_deps if seq == 1 else (prev, *sorted_deps),
        ),
    )


#: ``(signable, sorted deps, kind, payload as decoded)``
_Built = tuple[bytes, tuple[bytes, ...], Kind, Any]


def _checked_signable(
    server: bytes | None,
    author: bytes,
    seq: int,
    prev: bytes,
    deps: tuple[bytes, ...] | list[bytes],
    ts: int,
    payload: Payload,
) -> _Built:
    """The reference construction: every check named, the payload decoded back from its CBOR
    form, the whole array encoded by the CBOR library."""
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
        value = PAYLOAD_SPECS[kind].decode(payload_raw)
    except DecodeError as exc:
        raise LocalError(f"invalid event: {exc}") from None
    try:
        signable = encode(
            [EVENT_TAG, server, author, seq, prev, list(sorted_deps), ts, int(kind), payload_raw]
        )
    except UnicodeEncodeError as exc:  # a lone surrogate in a text: no UTF-8 form
        raise LocalError(f"invalid event: {exc}") from None
    return signable, sorted_deps, kind, value


_sign = crypto.ed25519_sign
_head = write_head
_HEAD64 = Struct(">BQ").pack
#: ``_UINTS[n]``: the canonical encoding of the unsigned integer ``n`` < 256 (kinds, most seqs)
_UINTS = [write_head(0, n) for n in range(256)]
_NULL = b"\xf6"
_ONE_DEP = b"\x81" + _ID_HEAD
_NO_DEPS = b"\x80"
_TS_FLOOR = 2**32  # a millisecond time past 1970-02-19 takes the 8-byte head


def _fast_signable(
    server: bytes | None,
    author: bytes,
    seq: int,
    prev: bytes,
    deps: tuple[bytes, ...] | list[bytes],
    ts: int,
    payload: Payload,
) -> _Built | None:
    """The signable array written field by field, or ``None`` for anything unusual (the
    checked path then builds it, or says what is wrong). Only a later event of a member
    (seq > 1, a server id) is written here; the checks are ``sign_event``'s and
    ``_check_structure``'s for that case."""
    if len(deps) == 1:
        sorted_deps: tuple[bytes, ...] = (deps[0],)
    else:
        sorted_deps = tuple(sorted(set(deps)))
    count = len(sorted_deps)
    if (
        type(author) is not bytes
        or len(author) != 32
        or type(prev) is not bytes
        or len(prev) != 32
        or type(server) is not bytes
        or len(server) != 32
        or type(seq) is not int
        or type(ts) is not int
        or not 1 < seq < _UINT_LIMIT
        or not 0 <= ts < _UINT_LIMIT
        or prev == ZERO_ID
        or count > MAX_DEPS
        or prev in sorted_deps
    ):
        return None
    if count == 1:
        dep = sorted_deps[0]
        if type(dep) is not bytes or len(dep) != 32:
            return None
        deps_part = _ONE_DEP + dep
    elif count:
        if not all(map(_is_key, sorted_deps)):
            return None
        deps_part = _head(0x80, count) + _ID_HEAD + _ID_HEAD.join(sorted_deps)
    else:
        deps_part = _NO_DEPS
    write = _WRITERS.get(type(payload))
    if write is not None:
        body = write(payload)
        if body is None:
            return None
        kind = _WRITER_KINDS[type(payload)]
        value: Any = payload  # a writer accepts only values of exactly the decoded types
    else:
        found = PAYLOAD_KINDS.get(type(payload))
        if found is None or found is _GENESIS_KIND:
            return None
        kind = found
        spec = PAYLOAD_SPECS[kind]
        raw = spec.encode(payload)
        sized = spec.sized
        if sized is None:  # never: every payload spec is a record (checked at import)
            return None
        try:
            value, size = sized(raw)  # the checks ingest runs
            body = encode(raw)
        except (DecodeError, UnicodeEncodeError):
            return None
        if len(body) != size:
            return None
    signable = b"".join(
        (
            _PREFIX,
            _ID_HEAD,
            server,
            _ID_HEAD,
            author,
            _UINTS[seq] if seq < 256 else _head(0, seq),
            _ID_HEAD,
            prev,
            deps_part,
            _HEAD64(0x1B, ts) if ts >= _TS_FLOOR else _head(0, ts),
            _UINTS[kind],  # every kind is below 256
            body,
        )
    )
    return signable, sorted_deps, kind, value


def _id_or_null(value: object) -> bytes | None:
    """The canonical bytes of an optional 32-byte id, or ``None`` if it is neither."""
    if value is None:
        return _NULL
    if type(value) is bytes and len(value) == 32:
        return _ID_HEAD + value
    return None


def _write_sealed_message(payload: SealedMessage) -> bytes | None:
    channel, sealed, thread, reply_to = payload
    if type(sealed) is not Sealed or type(channel) is not bytes or len(channel) != 32:
        return None
    key, salt, box = sealed
    if (
        type(key) is not bytes
        or len(key) != KEY_ID_BYTES
        or type(salt) is not bytes
        or len(salt) != SALT_BYTES
        or type(box) is not bytes
    ):
        return None
    if len(box) > MAX_SEALED_BYTES:
        return None
    tail = _thread_reply(thread, reply_to)
    if tail is None:
        return None
    box_head = _head(0x40, len(box))
    return b"".join(
        (_SEALED_MESSAGE_HEAD, channel, _SEALED_HEAD, key, _SALT_HEAD, salt, box_head, box, tail)
    )


def _thread_reply(thread: object, reply_to: object) -> bytes | None:
    """The two optional trailing ids of a (sealed) message record, or None if either is not
    an id or null."""
    if thread is None and reply_to is None:
        return _TWO_NULLS
    thread_part, reply_part = _id_or_null(thread), _id_or_null(reply_to)
    if thread_part is None or reply_part is None:
        return None
    return thread_part + reply_part


def _write_message(payload: Message) -> bytes | None:
    channel, text, thread, reply_to = payload
    if type(channel) is not bytes or len(channel) != 32 or type(text) is not str:
        return None
    if len(text) > MAX_MESSAGE_CHARS:
        return None
    try:
        utf8 = text.encode()
    except UnicodeEncodeError:  # a lone surrogate: the checked path says so
        return None
    tail = _thread_reply(thread, reply_to)
    if tail is None:
        return None
    return b"".join((_MESSAGE_HEAD, channel, _head(0x60, len(utf8)), utf8, tail))


#: a 4-field record opening with a 32-byte id
_SEALED_MESSAGE_HEAD = _MESSAGE_HEAD = b"\x84" + _ID_HEAD
#: ``Sealed``: a 3-field record opening with the 16-byte key id; then the salt's head
_SEALED_HEAD = b"\x83" + _head(0x40, KEY_ID_BYTES)
_SALT_HEAD = _head(0x40, SALT_BYTES)
_TWO_NULLS = _NULL + _NULL
#: Payload types whose canonical bytes are written and checked by hand (the kinds sent most,
#: one per chat message), each mirroring its kind's spec; any other value they decline.
_WRITERS: dict[type[Any], Callable[[Any], bytes | None]] = {
    SealedMessage: _write_sealed_message,
    Message: _write_message,
}
_WRITER_KINDS = {cls: PAYLOAD_KINDS[cls] for cls in _WRITERS}
if max(map(int, Kind)) >= 256:
    raise TypeError("_fast_signable writes a kind in at most 2 bytes")


def verify_event(event: Event) -> bool:
    """Whether the event's signature is valid for its author."""
    return crypto.ed25519_verify(event.author, event.signable, event.sig)

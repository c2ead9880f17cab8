"""Canonical, strict CBOR: the only module that touches the CBOR library (D1).

Encoding is RFC 8949 section 4.2 deterministic CBOR: shortest integer and length heads,
definite lengths, map keys in bytewise order of their encoding, no floats, no tags. Decoding
refuses anything over the caller's size cap *before* parsing, refuses every tag and every
indefinite length while parsing, then proves the input canonical, so every value has exactly
one accepted byte form (no malleable ids):

* ``decode`` re-encodes the value and compares bytes (any shape, maps included);
* ``decode_parts`` + ``canonical_length`` is the hot-path proof for map-free values: with tags
  and indefinite lengths refused, the only freedom left in CBOR is an overlong head, and any
  overlong head makes the encoding strictly longer. So "as long as the canonical length" is
  "canonical", and computing a length is far cheaper than encoding. ``parse_strict`` is the
  same parse for callers that did the size cap themselves and catch ``PARSE_ERRORS``.
* ``read_head`` reads one canonical head by hand, for decoders that read a known layout
  straight from the bytes (an event's fixed fields, payload records): reading only shortest
  heads of the expected major type is the canonical proof.

Data model: ``None``, ``bool``, ``int`` in [-2**63, 2**64), ``bytes``, ``str``, ``list`` and
``dict`` with ``str`` keys.
"""

from __future__ import annotations

from struct import Struct
from typing import Any, NoReturn

import cbor2

from .errors import DecodeError

__all__ = [
    "CborValue",
    "encode",
    "decode",
    "decode_parts",
    "parse_strict",
    "PARSE_ERRORS",
    "canonical_length",
    "read_head",
    "write_head",
    "MAX_DEPTH",
]

CborValue = Any
"""A value of the data model above (typed as Any: recursive unions cost more than they catch)."""

#: Nesting deeper than any message we define; stops stack-heavy hostile input early.
MAX_DEPTH = 16

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def _refuse_tag(*_: object) -> NoReturn:
    raise cbor2.CBORDecodeError("tags are not allowed")


class _NoTags(dict[int, Any]):
    """A semantic-decoder table that maps every tag to a refusal (cbor2 has no "no tags").

    cbor2 looks a tag up here before its built-in decoders; every lookup misses into
    ``__missing__``. A ``dict`` subclass rather than a ``Mapping``: cbor2 checks the table's
    type on every call, and an abstract ``Mapping`` costs it an ``isinstance`` walk each time.
    """

    def __missing__(self, tag: int) -> Any:
        return _refuse_tag

    def __contains__(self, tag: object) -> bool:
        return True


_NO_TAGS = _NoTags()


def _no_unknown_tags(decoder: object, tag: object) -> NoReturn:
    raise cbor2.CBORDecodeError("tags are not allowed")


def encode(value: CborValue) -> bytes:
    """Return the one canonical encoding of ``value``."""
    return cbor2.dumps(value, canonical=True)


#: What a strict parse can raise on hostile input (each becomes a ``DecodeError``).
PARSE_ERRORS = (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError)


def _options(max_depth: int) -> dict[str, Any]:
    """``cbor2.loads`` options: every tag and indefinite length refused, nesting capped."""
    return {
        "semantic_decoders": _NO_TAGS,
        "tag_hook": _no_unknown_tags,
        "allow_indefinite": False,
        "max_depth": max_depth,
    }


_STRICT = _options(MAX_DEPTH)
_STRICT_NESTED = _options(MAX_DEPTH - 1)


def parse_strict(data: bytes) -> CborValue:
    """Parse a value nested one level inside a ``decode_parts`` value (an event's payload)
    with the same refusals, no size cap and no canonical proof; raises ``PARSE_ERRORS``."""
    return cbor2.loads(data, **_STRICT_NESTED)


def decode_parts(data: bytes, *, max_bytes: int) -> CborValue:
    """Parse ``data`` with tags and indefinite lengths refused, *without* the canonical proof.

    The caller must validate every field's type and then compare ``canonical_length`` of the
    value with ``len(data)``.
    """
    if len(data) > max_bytes:
        raise DecodeError(f"{len(data)} bytes exceeds the cap of {max_bytes}")
    try:
        return cbor2.loads(data, **_STRICT)
    except PARSE_ERRORS as exc:
        raise DecodeError(f"not valid CBOR: {exc}") from None


def decode(data: bytes, *, max_bytes: int) -> CborValue:
    """Decode ``data`` as canonical CBOR in our data model.

    Raises:
        DecodeError: over ``max_bytes``, malformed, non-canonical, or outside the data model.
    """
    value = decode_parts(data, max_bytes=max_bytes)
    _check_model(value, 0)
    if encode(value) != data:
        raise DecodeError("not canonical CBOR")
    return value


def _head_length(n: int) -> int:
    if n < 24:
        return 1
    if n < 256:
        return 2
    if n < 65536:
        return 3
    if n < 4294967296:
        return 5
    return 9


def canonical_length(value: CborValue) -> int:
    """Length of the canonical encoding of a map-free value of the data model."""
    kind = type(value)
    if kind is bytes:
        return _head_length(len(value)) + len(value)
    if kind is str:
        size = len(value) if value.isascii() else len(value.encode())
        return _head_length(size) + size
    if kind is int:
        return _head_length(-1 - value if value < 0 else value)
    if kind is list:
        return _head_length(len(value)) + sum(map(canonical_length, value))
    if value is None or kind is bool:
        return 1
    raise DecodeError(f"type {kind.__name__} has no canonical length here")


def _check_model(value: CborValue, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError("nested too deeply")
    kind = type(value)
    if kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise DecodeError("integer out of range")
    elif kind is list:
        for item in value:
            _check_model(item, depth + 1)
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise DecodeError("map keys must be text")
            _check_model(item, depth + 1)
    elif kind not in (bytes, str, bool, type(None)):
        raise DecodeError(f"type {kind.__name__} is outside the data model")


_U16 = Struct(">H").unpack_from
_U32 = Struct(">I").unpack_from
_U64 = Struct(">Q").unpack_from
_HEAD8 = Struct(">BB").pack
_HEAD16 = Struct(">BH").pack
_HEAD32 = Struct(">BI").pack
_HEAD64 = Struct(">BQ").pack
#: ``_BYTE_HEADS[major + n]``: a head whose argument ``n`` < 24 is in its first byte
_BYTE_HEADS = [bytes([b]) for b in range(256)]


def write_head(major: int, n: int) -> bytes:
    """The shortest (canonical) head of major type ``major`` (its first byte, as for
    ``read_head``) with argument ``n``: what hand-written encoders put before a value."""
    if n < 24:
        return _BYTE_HEADS[major + n]
    if n < 256:
        return _HEAD8(major + 24, n)
    if n < 65536:
        return _HEAD16(major + 25, n)
    if n < 4294967296:
        return _HEAD32(major + 26, n)
    return _HEAD64(major + 27, n)


def read_head(data: bytes, at: int, major: int) -> tuple[int, int]:
    """The argument of the head at ``data[at]`` and the offset after the head.

    ``major`` is the expected major type's first byte (``0x00`` integer, ``0x40`` byte string,
    ``0x60`` text string, ``0x80`` array). Only the shortest head of that type is accepted.

    Raises:
        DecodeError: another type, an indefinite length, a reserved or an overlong head.
        IndexError, struct.error: ``data`` ends inside the head.
    """
    info = data[at] - major
    if 0 <= info < 24:
        return info, at + 1
    if info == 24:
        value, least, end = data[at + 1], 24, at + 2
    elif info == 25:
        value, least, end = _U16(data, at + 1)[0], 256, at + 3
    elif info == 26:
        value, least, end = _U32(data, at + 1)[0], 65536, at + 5
    elif info == 27:
        value, least, end = _U64(data, at + 1)[0], 4294967296, at + 9
    else:
        raise DecodeError(f"expected CBOR major type {major >> 5} with a definite head")
    if value < least:
        raise DecodeError("not canonical CBOR: overlong head")
    return value, end

"""Canonical, strict CBOR: the only module that touches the CBOR library (D1).

Encoding is RFC 8949 section 4.2 deterministic CBOR: shortest integer forms, definite lengths,
map keys in bytewise order of their encoding, no floats, no tags. Decoding refuses anything over
the caller's size cap *before* parsing, then re-encodes the result and compares bytes, so every
value has exactly one accepted byte form (no malleable event ids), and walks the value to refuse
types outside the data model below.

Data model: ``None``, ``bool``, ``int`` in [-2**63, 2**64), ``bytes``, ``str``, ``list`` and
``dict`` with ``str`` keys.
"""

from __future__ import annotations

from typing import Any

import cbor2

from .errors import DecodeError

__all__ = ["CborValue", "encode", "decode", "decode_unchecked", "MAX_DEPTH"]

CborValue = Any
"""A value of the data model above (typed as Any: recursive unions cost more than they catch)."""

#: Nesting deeper than any message we define; stops stack-heavy hostile input early.
MAX_DEPTH = 16

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def encode(value: CborValue) -> bytes:
    """Return the one canonical encoding of ``value``."""
    return cbor2.dumps(value, canonical=True)


def decode_unchecked(data: bytes, *, max_bytes: int) -> CborValue:
    """Decode canonical CBOR without the type walk.

    For hot paths whose caller validates the type of every field itself (events): the size cap
    and the canonical round-trip still apply, so the result has a single byte form.
    """
    if len(data) > max_bytes:
        raise DecodeError(f"{len(data)} bytes exceeds the cap of {max_bytes}")
    try:
        value = cbor2.loads(data)
        again = cbor2.dumps(value, canonical=True)
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise DecodeError(f"not valid CBOR: {exc}") from None
    if again != data:
        raise DecodeError("not canonical CBOR")
    return value


def decode(data: bytes, *, max_bytes: int) -> CborValue:
    """Decode ``data`` as canonical CBOR in our data model.

    Raises:
        DecodeError: over ``max_bytes``, malformed, non-canonical, or outside the data model.
    """
    value = decode_unchecked(data, max_bytes=max_bytes)
    _check_model(value, 0)
    return value


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

"""Field specs: how one typed value maps to and from its CBOR form, with its caps.

Payloads are CBOR arrays whose positions follow a record's fields; each field has a
``Spec`` that validates the decoded value strictly (type, length, range) and converts it to the
Python value, and converts back for encoding. Validation here is what lets the event hot path skip
the generic type walk in ``encoding``: every position is checked by exactly one spec.

Each spec also knows the canonical ``size`` of a validated raw value (the event decoder's
canonical proof compares it with the bytes received) and a ``trusted`` constructor that skips
validation, for events re-read from our own verified store. Record decoders are generated once
per record (as ``dataclasses`` does) because ingest runs them for every event; a record's
``sized`` validates and measures in one pass, with the checks of simple fields (ids, text,
integers) written inline (``Spec.inline``) rather than called, since a Python call per field
per event is most of a payload's decode cost.

A record whose fields are all simple also gets a ``reader``: it reads the record's canonical
bytes straight from the event's signable bytes (``Spec.read`` renders each field's part),
accepting only the shortest heads of the expected types, which is the canonical proof. It
accepts exactly what a strict parse + ``sized`` + the length proof accepts, without building
the generic parse's lists first.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from enum import IntEnum
from functools import partial
from typing import Any, Generic, TypeVar

from .encoding import canonical_length, read_head
from .errors import DecodeError

__all__ = [
    "Spec",
    "exact_bytes",
    "ID",
    "OPT_ID",
    "SIG",
    "UINT",
    "BOOL",
    "text",
    "opt_text",
    "blob",
    "enum",
    "enum_set",
    "list_of",
    "optional",
    "record",
    "tagged",
    "UINT_MAX",
]

T = TypeVar("T")
E = TypeVar("E", bound=IntEnum)
Reader = Callable[[str], tuple[str, dict[str, Any]]]
"""Renders hand reading of one field (see ``Spec.read``)."""

#: Unsigned integers fit in a signed 64-bit column everywhere (SQLite, JS BigInt-free JSON).
UINT_MAX = 2**63 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class Spec(Generic[T]):
    """A field codec: ``decode`` validates a raw CBOR value, ``encode`` is its inverse.

    ``trusted`` builds the value without validation (``None``: the raw value is the value) and
    ``size`` is the canonical encoded length of a validated raw value. ``sized`` does both
    ``decode`` and ``size`` in one call (records generate it). ``inline``, for specs whose value
    is the raw value, renders ``decode`` as source for a generated record: given a variable
    name, the statements that validate it and an expression for its canonical size. ``read``
    renders reading the canonical bytes of a value by hand: given a variable name, statements
    that read it from ``s`` at offset ``p`` and advance ``p``, and the names they use.
    ``reader`` is a record's generated hand reader: ``(data, offset) -> (value, end)``.
    """

    name: str
    decode: Callable[[Any], T]
    encode: Callable[[T], Any]
    trusted: Callable[[Any], T] | None = None
    size: Callable[[Any], int] = canonical_length
    sized: Callable[[Any], tuple[T, int]] | None = None
    inline: Callable[[str], tuple[str, str]] | None = None
    read: Reader | None = None
    reader: Callable[[bytes, int], tuple[T, int]] | None = None


def _head_expr(n: str) -> str:
    """Source for the canonical head length of the unsigned integer ``n``."""
    return (
        f"(1 if {n} < 24 else 2 if {n} < 256 else 3 if {n} < 65536 "
        f"else 5 if {n} < 4294967296 else 9)"
    )


def _read_length(v: str, major: int) -> str:
    """Source: read a definite head of ``major`` at ``s[p]`` into ``n_`` and advance ``p``
    (heads up to one length byte inline, the rest through ``read_head``)."""
    return (
        f"n_ = s[p] - {major}\n"
        "if 0 <= n_ < 24:\n"
        "    p += 1\n"
        "elif n_ == 24:\n"
        "    n_ = s[p + 1]\n"
        "    p += 2\n"
        "    if n_ < 24:\n"
        "        raise DecodeError('not canonical CBOR: overlong head')\n"
        "else:\n"
        f"    n_, p = head(s, p, {major})"
    )


def _read_bytes_exact(n: int) -> Reader:
    head = _encoded_head(0x40, n)

    def render(v: str) -> tuple[str, dict[str, Any]]:
        at = ["s[p]", *(f"s[p + {i}]" for i in range(1, len(head)))]
        test = " or ".join(f"{x} != {b}" for x, b in zip(at, head, strict=True))
        return (
            f"if {test}:\n"
            f"    raise DecodeError({f'expected a {n}-byte string'!r})\n"
            f"{v} = s[p + {len(head)} : p + {len(head) + n}]\n"
            f"p += {len(head) + n}",
            {},
        )

    return render


def _encoded_head(major: int, n: int) -> bytes:
    """The canonical head of major type ``major`` (first byte) with argument ``n`` < 2**16."""
    if n < 24:
        return bytes([major + n])
    if n < 256:
        return bytes([major + 24, n])
    return bytes([major + 25]) + n.to_bytes(2, "big")


def _read_optional(inner: Reader) -> Reader:
    def render(v: str) -> tuple[str, dict[str, Any]]:
        source, names = inner(v)
        body = "\n".join("    " + line for line in source.splitlines())
        return f"if s[p] == 0xF6:\n    {v} = None\n    p += 1\nelse:\n{body}", names

    return render


def _read_uint(v: str) -> tuple[str, dict[str, Any]]:
    return (
        f"{v} = s[p]\n"
        f"if {v} < 24:\n"
        "    p += 1\n"
        "else:\n"
        f"    {v}, p = head(s, p, 0)\n"
        f"    if {v} > {UINT_MAX}:\n"
        f"        raise fail('unsigned integer', {v})",
        {},
    )


def _read_bool(v: str) -> tuple[str, dict[str, Any]]:
    return (
        "if s[p] == 0xF5:\n"
        f"    {v} = True\n"
        "elif s[p] == 0xF4:\n"
        f"    {v} = False\n"
        "else:\n"
        "    raise DecodeError('expected a bool')\n"
        "p += 1",
        {},
    )


def _fail(spec: str, value: object) -> DecodeError:
    return DecodeError(f"expected {spec}, got {type(value).__name__}")


def _same(value: Any) -> Any:
    return value


def _bytes_exact(n: int) -> Callable[[Any], bytes]:
    def check(value: Any) -> bytes:
        if type(value) is not bytes or len(value) != n:
            raise _fail(f"{n}-byte string", value)
        return value

    return check


def _inline_bytes_exact(n: int) -> Callable[[str], tuple[str, str]]:
    def render(v: str) -> tuple[str, str]:
        check = (
            f"if type({v}) is not bytes or len({v}) != {n}:\n"
            f"    raise fail({f'{n}-byte string'!r}, {v})"
        )
        return check, str(canonical_length(bytes(n)))

    return render


_id = _bytes_exact(32)
ID: Spec[bytes] = Spec(
    "bytes32",
    _id,
    _same,
    size=lambda _: 34,
    inline=_inline_bytes_exact(32),
    read=_read_bytes_exact(32),
)
"""A 32-byte id: event hash, public key or content hash."""


def exact_bytes(n: int) -> Spec[bytes]:
    """A byte string of exactly ``n`` bytes (key ids, salts)."""
    return Spec(
        f"bytes{n}",
        _bytes_exact(n),
        _same,
        size=lambda _: n + 1 + (n >= 24),
        inline=_inline_bytes_exact(n),
        read=_read_bytes_exact(n),
    )


SIG: Spec[bytes] = Spec(
    "bytes64",
    _bytes_exact(64),
    _same,
    size=lambda _: 66,
    inline=_inline_bytes_exact(64),
    read=_read_bytes_exact(64),
)


def _opt_id(value: Any) -> bytes | None:
    return None if value is None else _id(value)


def _inline_opt_id(v: str) -> tuple[str, str]:
    check = (
        f"if {v} is not None and (type({v}) is not bytes or len({v}) != 32):\n"
        f"    raise fail('32-byte string', {v})"
    )
    return check, f"(1 if {v} is None else 34)"


OPT_ID: Spec[bytes | None] = Spec(
    "bytes32 or null",
    _opt_id,
    _same,
    size=lambda v: 1 if v is None else 34,
    inline=_inline_opt_id,
    read=_read_optional(_read_bytes_exact(32)),
)


def _uint(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= UINT_MAX:
        raise _fail("unsigned integer", value)
    return value


def _inline_uint(v: str) -> tuple[str, str]:
    check = (
        f"if type({v}) is not int or not 0 <= {v} <= {UINT_MAX}:\n"
        f"    raise fail('unsigned integer', {v})"
    )
    return check, _head_expr(v)


UINT: Spec[int] = Spec("uint", _uint, _same, inline=_inline_uint, read=_read_uint)


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _fail("bool", value)
    return value


BOOL: Spec[bool] = Spec(
    "bool",
    _bool,
    _same,
    size=lambda _: 1,
    inline=lambda v: (f"if type({v}) is not bool:\n    raise fail('bool', {v})", "1"),
    read=_read_bool,
)


def text(
    max_chars: int, *, min_chars: int = 0, max_bytes: int | None = None, name: str | None = None
) -> Spec[str]:
    """A text string of ``min_chars..max_chars`` code points (and at most ``max_bytes`` UTF-8
    bytes, when given)."""
    label = name or f"text<={max_chars}"

    def check(value: Any) -> str:
        if type(value) is not str:
            raise _fail("text", value)
        if not min_chars <= len(value) <= max_chars:
            raise DecodeError(f"text must be {min_chars}..{max_chars} characters")
        if max_bytes is not None and len(value.encode()) > max_bytes:
            raise DecodeError(f"{label} is over {max_bytes} bytes")
        return value

    def render(v: str) -> tuple[str, str]:
        lines = [
            f"if type({v}) is not str:",
            f"    raise fail('text', {v})",
            f"if not {min_chars} <= len({v}) <= {max_chars}:",
            f"    raise DecodeError({f'text must be {min_chars}..{max_chars} characters'!r})",
            f"b_{v} = len({v}) if {v}.isascii() else len({v}.encode())",
        ]
        if max_bytes is not None:
            lines += [
                f"if b_{v} > {max_bytes}:",
                f"    raise DecodeError({f'{label} is over {max_bytes} bytes'!r})",
            ]
        return "\n".join(lines), f"{_head_expr(f'b_{v}')} + b_{v}"

    def read(v: str) -> tuple[str, dict[str, Any]]:
        # A text of n bytes has at most n characters: only a long one needs counting.
        count = f"n_ > {max_chars} and len({v}) > {max_chars}"
        if min_chars:
            count = f"len({v}) < {min_chars} or {count}"
        lines = [
            _read_length(v, 0x60),
            f"{v} = s[p : p + n_].decode()",
            "p += n_",
            f"if {count}:",
            f"    raise DecodeError({f'text must be {min_chars}..{max_chars} characters'!r})",
        ]
        if max_bytes is not None:
            lines += [
                f"if n_ > {max_bytes}:",
                f"    raise DecodeError({f'{label} is over {max_bytes} bytes'!r})",
            ]
        return "\n".join(lines), {}

    return Spec(label, check, _same, size=_text_size, inline=render, read=read)


def _text_size(value: str) -> int:
    size = len(value) if value.isascii() else len(value.encode())
    return (1 if size < 24 else 2 if size < 256 else 3 if size < 65536 else 5) + size


def opt_text(max_chars: int) -> Spec[str | None]:
    inner = text(max_chars)
    return Spec(
        f"text<={max_chars} or null", lambda v: None if v is None else inner.decode(v), _same
    )


def blob(max_bytes: int) -> Spec[bytes]:
    """A byte string of at most ``max_bytes``."""

    def check(value: Any) -> bytes:
        if type(value) is not bytes or len(value) > max_bytes:
            raise _fail(f"bytes<={max_bytes}", value)
        return value

    def render(v: str) -> tuple[str, str]:
        check = (
            f"if type({v}) is not bytes or len({v}) > {max_bytes}:\n"
            f"    raise fail({f'bytes<={max_bytes}'!r}, {v})"
        )
        return check, f"{_head_expr(f'len({v})')} + len({v})"

    def read(v: str) -> tuple[str, dict[str, Any]]:
        return (
            f"{_read_length(v, 0x40)}\n"
            f"if n_ > {max_bytes}:\n"
            f"    raise DecodeError({f'expected bytes<={max_bytes}'!r})\n"
            f"{v} = s[p : p + n_]\n"
            "p += n_",
            {},
        )

    return Spec(f"bytes<={max_bytes}", check, _same, inline=render, read=read)


def enum(cls: type[E]) -> Spec[E]:
    """An ``IntEnum`` member on the wire as its integer value."""

    def check(value: Any) -> E:
        if type(value) is not int:
            raise _fail(cls.__name__, value)
        try:
            return cls(value)
        except ValueError:
            raise DecodeError(f"unknown {cls.__name__} {value}") from None

    members = {int(member): member for member in cls}

    def read(v: str) -> tuple[str, dict[str, Any]]:
        return (
            f"{v} = s[p]\n"
            f"if {v} < 24:\n"
            "    p += 1\n"
            "else:\n"
            f"    {v}, p = head(s, p, 0)\n"
            f"{v} = members_{v}.get({v})\n"
            f"if {v} is None:\n"
            f"    raise DecodeError({f'unknown {cls.__name__}'!r})",
            {f"members_{v}": members},
        )

    return Spec(cls.__name__, check, int, trusted=cls, read=read)


def enum_set(cls: type[E]) -> Spec[frozenset[E]]:
    """A set of enum members, on the wire as a strictly ascending integer array."""
    member = enum(cls)

    def check(value: Any) -> frozenset[E]:
        if type(value) is not list or len(value) > len(cls):
            raise _fail(f"set of {cls.__name__}", value)
        items = [member.decode(v) for v in value]
        if any(a >= b for a, b in itertools.pairwise(items)):
            raise DecodeError(f"{cls.__name__} set must be strictly ascending")
        return frozenset(items)

    return Spec(
        f"set of {cls.__name__}",
        check,
        lambda s: sorted(int(m) for m in s),
        trusted=lambda v: frozenset(map(cls, v)),
    )


def list_of(item: Spec[T], max_items: int) -> Spec[tuple[T, ...]]:
    """A bounded array of ``item`` values, as a tuple."""

    def check(value: Any) -> tuple[T, ...]:
        if type(value) is not list or len(value) > max_items:
            raise _fail(f"array of <={max_items} {item.name}", value)
        return tuple(item.decode(v) for v in value)

    inner = item.trusted
    return Spec(
        f"array of <={max_items} {item.name}",
        check,
        lambda t: [item.encode(v) for v in t],
        trusted=tuple if inner is None else (lambda v: tuple(map(inner, v))),
    )


def optional(item: Spec[T]) -> Spec[T | None]:
    """``item`` or null."""

    def encode(value: T | None) -> Any:
        return None if value is None else item.encode(value)

    inner = item.trusted
    return Spec(
        f"{item.name} or null",
        lambda v: None if v is None else item.decode(v),
        encode,
        trusted=None if inner is None else (lambda v: None if v is None else inner(v)),
        size=lambda v: 1 if v is None else item.size(v),
        read=None if item.read is None else _read_optional(item.read),
    )


def record(cls: type[T], specs: tuple[Spec[Any], ...]) -> Spec[T]:
    """A ``NamedTuple`` record as an array of its fields, in declaration order."""
    names: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    arity = len(specs)
    if len(names) != arity:
        raise TypeError(f"{cls.__name__}: {len(names)} fields but {arity} specs")
    scope: dict[str, Any] = {
        "cls": cls,
        "new": tuple.__new__,
        "fail": _fail,
        "DecodeError": DecodeError,
        "head": read_head,
    }
    for i, spec in enumerate(specs):
        scope[f"d{i}"] = spec.decode
        scope[f"e{i}"] = spec.encode
        scope[f"s{i}"] = spec.size
        scope[f"t{i}"] = spec.trusted
        scope[f"z{i}"] = spec.sized
    unpack = ", ".join(f"v{i}" for i in range(arity)) + ("," if arity == 1 else "")
    unpack = f"{unpack} = value" if arity else "pass"
    comma = "," if arity == 1 else ""
    decoded = ", ".join(f"d{i}(v{i})" for i in range(arity)) + comma
    built = (
        ", ".join(f"v{i}" if specs[i].trusted is None else f"t{i}(v{i})" for i in range(arity))
        + comma
    )
    sizes = " + ".join([str(canonical_length(arity)), *(f"s{i}(v{i})" for i in range(arity))])
    # ``sized``: validate and measure in one pass, simple fields inline.
    steps: list[str] = []
    parts: list[str] = [str(canonical_length(arity))]
    values: list[str] = []
    for i, spec in enumerate(specs):
        if spec.inline is not None and spec.trusted is None:
            statements, part = spec.inline(f"v{i}")
            steps += statements.splitlines()
            parts.append(part)
            values.append(f"v{i}")
        elif spec.sized is not None:
            steps.append(f"x{i}, n{i} = z{i}(v{i})")
            parts.append(f"n{i}")
            values.append(f"x{i}")
        else:
            steps.append(f"x{i} = d{i}(v{i})")
            parts.append(f"s{i}(v{i})")
            values.append(f"x{i}")
    measured = "\n    ".join(steps) or "pass"
    source = f"""
def check(value):
    if type(value) is not list or len(value) != {arity}:
        raise fail("{cls.__name__} array of {arity}", value)
    {unpack}
    return new(cls, ({decoded}))

def sized(value):
    if type(value) is not list or len(value) != {arity}:
        raise fail("{cls.__name__} array of {arity}", value)
    {unpack}
    {measured}
    return new(cls, ({", ".join(values) + comma})), {" + ".join(parts)}

def encode(value):
    {unpack}
    return [{", ".join(f"e{i}(v{i})" for i in range(arity))}]

def size(value):
    {unpack}
    return {sizes}

def trusted(value):
    {unpack}
    return new(cls, ({built}))
"""
    readable = arity < 24 and all(spec.read is not None for spec in specs)
    if readable:
        reads: list[str] = []
        for i, spec in enumerate(specs):
            assert spec.read is not None
            statements, extra = spec.read(f"v{i}")
            reads += statements.splitlines()
            scope.update(extra)
        fields = ", ".join(f"v{i}" for i in range(arity)) + comma
        body = "\n    ".join(reads) or "pass"
        source += f"""
def reader(s, p):
    if s[p] != {0x80 + arity}:
        raise DecodeError("expected a {cls.__name__} array of {arity}")
    p += 1
    {body}
    return new(cls, ({fields})), p
"""
    exec(compile(source, f"<record {cls.__name__}>", "exec"), scope)
    reader = scope.get("reader")

    def read(v: str) -> tuple[str, dict[str, Any]]:
        return f"{v}, p = rd_{v}(s, p)", {f"rd_{v}": reader}

    trusted = scope["trusted"]
    if all(spec.trusted is None for spec in specs):  # the raw fields are the values
        trusted = partial(tuple.__new__, cls)
    return Spec(
        cls.__name__,
        scope["check"],
        scope["encode"],
        trusted,
        scope["size"],
        scope["sized"],
        read=read if readable else None,
        reader=reader,
    )


def tagged(variants: dict[int, tuple[type[Any], Spec[Any]]], name: str) -> Spec[Any]:
    """A union encoded as ``[tag, ...fields]``; each variant is a ``record`` spec."""
    by_type = {cls: (tag, spec) for tag, (cls, spec) in variants.items()}

    def check(value: Any) -> Any:
        if type(value) is not list or not value or type(value[0]) is not int:
            raise _fail(f"tagged {name}", value)
        variant = variants.get(value[0])
        if variant is None:
            raise DecodeError(f"unknown {name} tag {value[0]}")
        return variant[1].decode(value[1:])

    def encode(obj: Any) -> list[Any]:
        tag, spec = by_type[type(obj)]
        return [tag, *spec.encode(obj)]

    def trusted(value: Any) -> Any:
        spec = variants[value[0]][1]
        return (spec.trusted or spec.decode)(value[1:])

    return Spec(name, check, encode, trusted)

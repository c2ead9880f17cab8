"""``sign_event``'s hand-written signable bytes against the checked construction (D1, D3).

``sign_event`` writes the signable array field by field (``_fast_signable``); the reference,
``_checked_signable``, encodes the whole array with the CBOR library after decoding the payload
back from its CBOR form. For every event kind, over random payloads (valid or not) and random
fixed fields, the fast path either declines or gives the very bytes, deps, kind and payload the
checked path gives, and it declines whenever the checked path refuses. The events it builds
are what ``decode_event`` gives for their wire bytes.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, get_type_hints

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from willow_core import kinds
from willow_core.errors import LocalError
from willow_core.event import (
    MAX_DEPS,
    ZERO_ID,
    _checked_signable,
    _fast_signable,
    decode_event,
    sign_event,
)
from willow_core.kinds import (
    MAX_EPHEMERAL_MS,
    MAX_MESSAGE_CHARS,
    MAX_SEALED_BYTES,
    MIN_EPHEMERAL_MS,
    PAYLOAD_KINDS,
    Kind,
    Message,
    Sealed,
    SealedMessage,
)
from willow_core.testing import identity

SIGNER = identity("tests/core/sign_event")
SERVER = bytes(range(32))

#: Byte fields that are not 32-byte ids: their exact length, or None for a bounded blob.
_BYTE_FIELDS: dict[tuple[str, str], int | None] = {
    ("Join", "proof"): 64,
    ("PublishKey", "binding"): 64,
    ("Sealed", "key"): 16,
    ("Sealed", "salt"): 16,
    ("Sealed", "box"): None,
    ("RotateChannelKey", "key"): 16,
    ("ShareChannelKey", "key"): 16,
    ("KeyShare", "blob"): None,
}
#: Integer fields whose spec takes a narrower range than 0..30.
_INT_FIELDS = {("Ephemeral", "idle_ms"): (MIN_EPHEMERAL_MS, MAX_EPHEMERAL_MS)}
#: Lengths the specs refuse somewhere.
_ODD_LENGTHS = st.sampled_from([0, 1, 16, 31, 33, 64, 65])


def _bytes(length: int | None = 32, *, valid: bool = False) -> st.SearchStrategy[bytes]:
    """Usually of the length the field takes, sometimes another (never, if ``valid``)."""
    fitting = (
        st.binary(max_size=200) if length is None else st.binary(min_size=length, max_size=length)
    )
    if valid:
        return fitting
    odd = _ODD_LENGTHS.flatmap(lambda n: st.binary(min_size=n, max_size=n))
    return st.one_of(*[fitting] * 8, odd, st.binary(max_size=300))


def _text(*, valid: bool = False) -> st.SearchStrategy[str]:
    if valid:
        return st.text(alphabet="abcdefgh xyz", min_size=2, max_size=12)
    return st.one_of(
        st.text(alphabet="abcdefgh xyz", min_size=2, max_size=12),
        st.text(alphabet="abcdefgh xyz", min_size=2, max_size=12),
        st.text(max_size=12),
        st.text(alphabet="ab🎉é", min_size=90, max_size=130),
        st.just(""),
    )


def _strategy(hint: Any, owner: str, field: str, valid: bool) -> st.SearchStrategy[Any]:
    """Values of a payload field's annotated type: if ``valid``, mostly ones its spec takes,
    else often valid, sometimes not."""
    if hint is bytes:
        return _bytes(_BYTE_FIELDS.get((owner, field), 32), valid=valid)
    if hint is str:
        return _text(valid=valid)
    if hint is bool:
        return st.booleans()
    if hint is int and valid:
        return st.integers(*_INT_FIELDS.get((owner, field), (0, 30)))
    if hint is int:
        return st.one_of(st.integers(0, 30), st.integers(0, 2**24), st.integers(-3, 2**64 + 3))
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return st.sampled_from(list(hint))
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        return _record(hint, valid)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(
            *(st.none() if a is type(None) else _strategy(a, owner, field, valid) for a in args)
        )
    if origin is tuple and not args:  # tuple[()]
        return st.just(())
    if origin is tuple and args[-1] is Ellipsis:
        return st.lists(_strategy(args[0], owner, field, valid), max_size=4).map(tuple)
    if origin is tuple:
        return st.tuples(*(_strategy(a, owner, field, valid) for a in args))
    if origin is frozenset:
        return st.frozensets(_strategy(args[0], owner, field, valid), max_size=6)
    raise AssertionError(f"no strategy for {hint!r}")


def _record(cls: type[Any], valid: bool = False) -> st.SearchStrategy[Any]:
    hints = get_type_hints(cls, vars(kinds))
    return st.builds(cls, *(_strategy(h, cls.__name__, f, valid) for f, h in hints.items()))


PAYLOADS = st.sampled_from(sorted(PAYLOAD_KINDS, key=PAYLOAD_KINDS.__getitem__)).flatmap(_record)
#: Fixed fields in the fast path's domain (a later event of a member of a community).
FIELDS: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "server": st.just(SERVER),
        "author": st.just(SIGNER.public_key),
        "seq": st.one_of(st.integers(2, 30), st.integers(2, 2**63 - 1)),
        "prev": st.binary(min_size=32, max_size=32).filter(lambda b: b != ZERO_ID),
        "deps": st.lists(st.binary(min_size=32, max_size=32), max_size=5),
        "ts": st.one_of(st.integers(0, 2**40), st.integers(0, 2**63 - 1)),
    }
)

#: ... and valid: no dep repeats prev.
VALID_FIELDS = FIELDS.filter(lambda f: bool(f["prev"] not in f["deps"]))


def _checked(fields: dict[str, Any], payload: Any) -> Any:
    try:
        return _checked_signable(payload=payload, **fields)
    except LocalError:
        return None


def _same_types(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple | list):
        return bool(len(a) == len(b) and all(map(_same_types, a, b)))
    return bool(a == b)


def _compare(fields: dict[str, Any], payload: Any) -> bool:
    """Assert the two paths agree; returns whether the fast path built the event."""
    checked = _checked(fields, payload)
    fast = _fast_signable(payload=payload, **fields)
    if checked is None:
        assert fast is None, "the fast path accepted what the checked path refuses"
        return False
    if fast is None:
        return False
    assert fast[0] == checked[0]  # the signable bytes
    assert fast[1] == checked[1]  # deps, sorted
    assert fast[2] is checked[2]  # kind
    assert _same_types(fast[3], checked[3])  # the payload, as decoded
    return True


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(FIELDS, PAYLOADS)
def test_fast_signable_matches_the_checked_one(fields: dict[str, Any], payload: Any) -> None:
    _compare(fields, payload)


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_kind_takes_the_fast_path(kind: Kind, data: st.DataObject) -> None:
    """Each kind's valid payloads are written by the fast path (but genesis: it has no server)."""
    cls = next(c for c, k in PAYLOAD_KINDS.items() if k is kind)
    fields = data.draw(VALID_FIELDS)
    payload = data.draw(_record(cls, valid=True))
    built = _compare(fields, payload)
    assert built is (kind is not Kind.CREATE_SERVER)


_ID = st.binary(min_size=32, max_size=32)
_SEALED = st.builds(
    Sealed,
    st.one_of(st.binary(min_size=16, max_size=16), _bytes()),
    st.one_of(st.binary(min_size=16, max_size=16), _bytes()),
    st.one_of(
        st.binary(max_size=200),
        st.integers(MAX_SEALED_BYTES - 2, MAX_SEALED_BYTES + 2).map(bytes),
    ),
)


@settings(max_examples=500)
@given(
    FIELDS,
    st.one_of(_ID, _bytes(), st.text(max_size=3)),
    st.one_of(_SEALED, st.tuples(_ID, _ID, _bytes())),
    st.one_of(st.none(), _ID, _bytes()),
    st.one_of(st.none(), _ID, st.just(bytearray(32))),
)
def test_sealed_message_writer(
    fields: dict[str, Any], channel: Any, sealed: Any, thread: Any, reply_to: Any
) -> None:
    _compare(fields, SealedMessage(channel, sealed, thread, reply_to))


@settings(max_examples=500)
@given(
    FIELDS,
    st.one_of(_ID, _bytes()),
    st.one_of(
        st.text(max_size=40),
        st.integers(MAX_MESSAGE_CHARS - 2, MAX_MESSAGE_CHARS + 2).map(lambda n: "é" * n),
        st.just("\ud800"),
        st.binary(max_size=4),
    ),
    st.one_of(st.none(), _ID, _bytes()),
    st.one_of(st.none(), _ID),
)
def test_message_writer(
    fields: dict[str, Any], channel: Any, body: Any, thread: Any, reply_to: Any
) -> None:
    _compare(fields, Message(channel, body, thread, reply_to))


@settings(max_examples=300)
@given(
    st.one_of(st.none(), st.just(SERVER), _bytes()),
    st.one_of(st.integers(-2, 3), st.integers(2**63 - 2, 2**63 + 1), st.just(True)),
    st.one_of(st.just(ZERO_ID), _ID, _bytes()),
    st.lists(st.one_of(_ID, _bytes()), max_size=MAX_DEPS + 2),
    st.one_of(st.integers(-1, 2**64), st.just(1.5)),
)
def test_fixed_fields_outside_the_fast_domain(
    server: Any, seq: Any, prev: Any, deps: list[Any], ts: Any
) -> None:
    """First events, genesis, malformed ids, numbers out of range, too many or repeated deps:
    the fast path builds the checked bytes or declines."""
    fields = {
        "server": server,
        "author": SIGNER.public_key,
        "seq": seq,
        "prev": prev,
        "deps": deps,
        "ts": ts,
    }
    _compare(fields, Message(SERVER, "hello", None, None))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(FIELDS, PAYLOADS)
def test_signed_events_decode_to_themselves(fields: dict[str, Any], payload: Any) -> None:
    try:
        ev = sign_event(secret_key=SIGNER.secret_key, payload=payload, **fields)
    except LocalError:
        return
    assert decode_event(ev.wire) == ev
    assert _same_types(decode_event(ev.wire).payload, ev.payload)


def test_repeated_deps_are_one_dep() -> None:
    dep = bytes([7]) * 32
    fields: dict[str, Any] = {
        "server": SERVER,
        "author": SIGNER.public_key,
        "seq": 5,
        "prev": bytes([1]) * 32,
        "deps": [dep, dep],
        "ts": 1,
    }
    assert _compare(fields, Message(SERVER, "hi", None, None))
    built = _fast_signable(payload=Message(SERVER, "hi", None, None), **fields)
    assert built is not None
    assert built[1] == (dep,)

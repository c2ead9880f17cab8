"""Golden event vectors (``tests/vectors/events.json``) and strict decoding of every variant.

Positive: each vector decodes to its recorded fields, re-encodes byte for byte, re-signs to the
same bytes (Ed25519 is deterministic) and has id = SHA-256(signable); the generator still
produces the file exactly. Negative: every truncation, every non-canonical re-encoding of the
same value (overlong head, indefinite length, tag) and every malformed field is a
``DecodeError``. The variants are built by a small hand-written CBOR encoder, independent of
``willow_core.encoding``; signatures are kept as they are because ``decode_event`` does not
check them (the DAG does).
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import struct
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

# willow_core from this checkout, however pytest was started (the package is not installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import cbor2
import pytest

from willow_core.dag import EventDag
from willow_core.encoding import encode
from willow_core.errors import DecodeError
from willow_core.event import (
    EVENT_TAG,
    MAX_DEPS,
    MAX_EVENT_BYTES,
    ZERO_ID,
    Event,
    decode_event,
    payload_to_cbor,
    sign_event,
    verify_event,
)
from willow_core.kinds import (
    MAX_SEALED_BYTES,
    AddEmoji,
    AssignRole,
    ChannelKind,
    ChannelRevive,
    CreateChannel,
    CreateInvite,
    CreateRole,
    CreateSealedChannel,
    CreateSealedThread,
    CreateServer,
    CreateThread,
    DeleteChannel,
    DeleteMessage,
    DeleteRole,
    EditMessage,
    Ephemeral,
    EphemeralKind,
    FileMessage,
    FileRef,
    GrantAdmin,
    GrantPermission,
    HistoryVisibility,
    Join,
    KeyShare,
    KickMember,
    Kind,
    Leave,
    Message,
    MuteChannel,
    MuteGrove,
    OverwriteTarget,
    Payload,
    PinMessage,
    ProfileDelta,
    Propose,
    PublishKey,
    Reaction,
    RemoveEmoji,
    RemoveReaction,
    RenameChannel,
    RenameServer,
    RevokeAdmin,
    RevokeInvite,
    RevokePermission,
    RotateChannelKey,
    Sealed,
    SealedEdit,
    SealedFileMessage,
    SealedMessage,
    SetChannelOverwrite,
    SetPermission,
    SetProfile,
    SetServerDescription,
    SetVoteThreshold,
    ShareChannelKey,
    Threshold,
    ThresholdMode,
    UnassignRole,
    UnbanMember,
    UnpinMessage,
    UpdateProfile,
    Vote,
)
from willow_core.permissions import Permission
from willow_core.testing import identity

VECTORS_DIR = Path(__file__).resolve().parents[2] / "tests" / "vectors"
EVENTS_FILE = VECTORS_DIR / "events.json"


def _load_generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "willow_tests_make_event_vectors", VECTORS_DIR / "make_event_vectors.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()
render: Callable[[Any], Any] = GENERATOR.render
DATA: dict[str, Any] = json.loads(EVENTS_FILE.read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DATA["vectors"]
NAMES = [v["name"] for v in VECTORS]
BY_NAME = {v["name"]: v for v in VECTORS}


def wire_of(name: str) -> bytes:
    return bytes.fromhex(BY_NAME[name]["wire_hex"])


def event_of(name: str) -> Event:
    return decode_event(wire_of(name))


vector_param = pytest.mark.parametrize("vector", VECTORS, ids=NAMES)


# --- positive: the vectors ----------------------------------------------------------------------


def test_vectors_cover_the_required_kinds() -> None:
    kinds = {Kind(v["kind"]) for v in VECTORS}
    assert {
        Kind.CREATE_SERVER,
        Kind.CREATE_CHANNEL,
        Kind.MESSAGE,
        Kind.JOIN,
        Kind.PROPOSE,
        Kind.VOTE,
        Kind.SET_CHANNEL_OVERWRITE,
        Kind.UPDATE_PROFILE,
    } <= kinds
    assert len(NAMES) == len(set(NAMES))
    reply = event_of("message_reply")
    assert isinstance(reply.payload, Message)
    assert reply.payload.reply_to == event_of("message").id
    assert BY_NAME["propose_kick_ban"]["payload"]["action"] == {
        "@type": "KickMember",
        "peer": BY_NAME["join"]["author_hex"],
        "ban": True,
    }


@vector_param
def test_decode_gives_the_recorded_fields(vector: dict[str, Any]) -> None:
    ev = decode_event(bytes.fromhex(vector["wire_hex"]))
    assert ev.id.hex() == vector["id_hex"]
    assert ev.server == (
        None if vector["server_hex"] is None else bytes.fromhex(vector["server_hex"])
    )
    assert ev.author.hex() == vector["author_hex"]
    assert ev.seq == vector["seq"]
    assert ev.prev.hex() == vector["prev_hex"]
    assert [d.hex() for d in ev.deps] == vector["deps_hex"]
    assert ev.ts == vector["ts"]
    assert ev.kind is Kind(vector["kind"])
    assert ev.kind.name == vector["kind_name"]
    assert render(ev.payload) == vector["payload"]
    assert type(ev.payload).__name__ == vector["payload"]["@type"]
    assert ev.signable.hex() == vector["signable_hex"]
    assert ev.sig.hex() == vector["sig_hex"]


@vector_param
def test_wire_round_trips(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["wire_hex"])
    ev = decode_event(wire)
    assert ev.wire == wire
    assert encode([ev.signable, ev.sig]) == wire  # the wire form is plain canonical CBOR
    assert decode_event(ev.wire) == ev


@vector_param
def test_id_is_sha256_of_the_signable_bytes(vector: dict[str, Any]) -> None:
    signable = bytes.fromhex(vector["signable_hex"])
    assert hashlib.sha256(signable).hexdigest() == vector["id_hex"]
    # The signable bytes are the canonical 9-array, led by the domain-separation tag.
    assert signable.startswith(b"\x89" + encode(EVENT_TAG))
    ev = decode_event(bytes.fromhex(vector["wire_hex"]))
    fields = [EVENT_TAG, ev.server, ev.author, ev.seq, ev.prev, list(ev.deps), ev.ts]
    assert encode([*fields, int(ev.kind), payload_to_cbor(ev.payload)[1]]) == signable


@vector_param
def test_resigning_reproduces_the_bytes(vector: dict[str, Any]) -> None:
    ev = decode_event(bytes.fromhex(vector["wire_hex"]))
    signer = identity(vector["signer"])
    assert signer.public_key == ev.author
    assert verify_event(ev)
    again = sign_event(
        secret_key=signer.secret_key,
        author=signer.public_key,
        server=ev.server,
        seq=ev.seq,
        prev=ev.prev,
        deps=ev.deps,
        ts=ev.ts,
        payload=ev.payload,
    )
    assert again.wire == ev.wire
    assert again == ev


def test_vectors_form_a_valid_history() -> None:
    """Every vector passes the DAG insert rules in file order (join proof, vote, ts...)."""
    events = [event_of(name) for name in NAMES]
    dag = EventDag(events[0].id)
    for ev in events:
        assert dag.check(ev) == [], ev.kind
        assert not dag.add(ev)
    assert len(dag) == len(events)


def test_generator_reproduces_the_file() -> None:
    dumps: Callable[[dict[str, Any]], str] = GENERATOR.dumps
    assert dumps(GENERATOR.build_vectors()) == EVENTS_FILE.read_text(encoding="utf-8")


# --- a tiny independent CBOR encoder that can produce non-canonical forms --------------------


class NotApplicable(Exception):
    """The requested mutation does not exist for this node (nothing wider than 8 bytes)."""


class Mutation(NamedTuple):
    """Change the encoding of the ``node``-th node (pre-order) in the way ``mode`` says."""

    mode: str
    node: int


MODES = ("widen", "indefinite", "tag", "float", "bignum")
_FORMS = ((24, 0), (256, 1), (65536, 2), (2**32, 4), (2**64, 8))


def _head(major: int, n: int, widen: bool = False) -> bytes:
    form = next(i for i, (limit, _) in enumerate(_FORMS) if n < limit)
    if widen:
        form += 1
        if form == len(_FORMS):
            raise NotApplicable
    size = _FORMS[form][1]
    if size == 0:
        return bytes([major << 5 | n])
    return bytes([major << 5 | {1: 24, 2: 25, 4: 26, 8: 27}[size]]) + n.to_bytes(size, "big")


def cbor(value: Any, mutation: Mutation | None = None) -> bytes:
    """Encode ``value`` canonically, except for the one node ``mutation`` names."""
    counter = itertools.count()

    def go(v: Any) -> bytes:
        index = next(counter)
        mode = mutation.mode if mutation is not None and mutation.node == index else None
        if mode == "tag":  # tag 55799 ("self-described CBOR") changes no value, only bytes
            return b"\xd9\xd9\xf7" + go_plain(v, None)
        return go_plain(v, mode)

    def go_plain(v: Any, mode: str | None) -> bytes:
        widen = mode == "widen"
        if mode in ("float", "bignum") and type(v) is not int:
            raise NotApplicable
        if mode == "indefinite" and type(v) not in (bytes, str, list):
            raise NotApplicable
        if v is None:
            return b"\xf8\x16" if widen else b"\xf6"
        if type(v) is bool:
            return bytes([0xF8, 0x14 + v]) if widen else bytes([0xF4 + v])
        if type(v) is int:
            if mode == "float":
                return b"\xfb" + struct.pack(">d", float(v))
            if mode == "bignum":
                n = v if v >= 0 else -1 - v
                digits = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
                return bytes([0xC2 if v >= 0 else 0xC3]) + _head(2, len(digits)) + digits
            return _head(0, v, widen) if v >= 0 else _head(1, -1 - v, widen)
        if type(v) in (bytes, str):
            raw = v if type(v) is bytes else v.encode()
            major = 2 if type(v) is bytes else 3
            if mode == "indefinite":
                return bytes([major << 5 | 31]) + _head(major, len(raw)) + raw + b"\xff"
            return _head(major, len(raw), widen) + raw
        if type(v) is list:
            items = b"".join(go(item) for item in v)
            if mode == "indefinite":
                return b"\x9f" + items + b"\xff"
            return _head(4, len(v), widen) + items
        raise TypeError(type(v).__name__)

    return go(value)


def count_nodes(value: Any) -> int:
    if type(value) is list:
        return 1 + sum(count_nodes(v) for v in value)
    return 1


def value_at(value: Any, index: int) -> Any:
    """The ``index``-th node of ``value`` in pre-order (as ``cbor`` numbers them)."""
    nodes: list[Any] = []

    def walk(v: Any) -> None:
        nodes.append(v)
        if type(v) is list:
            for item in v:
                walk(item)

    walk(value)
    return nodes[index]


def signable_value(ev: Event) -> list[Any]:
    """The signable array as plain values (the payload in its wire form)."""
    kind, payload_raw = payload_to_cbor(ev.payload)
    return [
        EVENT_TAG,
        ev.server,
        ev.author,
        ev.seq,
        ev.prev,
        list(ev.deps),
        ev.ts,
        int(kind),
        payload_raw,
    ]


def wrap(signable: bytes, sig: bytes) -> bytes:
    """The canonical wire form around any signable bytes."""
    return cbor([signable, sig])


def mutations(value: Any, mode: str) -> Iterator[tuple[int, bytes]]:
    """Every applicable single-node ``mode`` mutation of ``value``'s encoding."""
    for index in range(count_nodes(value)):
        try:
            yield index, cbor(value, Mutation(mode, index))
        except NotApplicable:
            continue


def rejected(wire: bytes) -> bool:
    try:
        decode_event(wire)
    except DecodeError:
        return True
    return False


def test_encoder_matches_the_canonical_bytes() -> None:
    for name in NAMES:
        ev = event_of(name)
        assert cbor(signable_value(ev)) == ev.signable
        assert wrap(ev.signable, ev.sig) == ev.wire


# --- negative: truncation -------------------------------------------------------------------


@vector_param
def test_every_truncation_of_the_wire_fails(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["wire_hex"])
    accepted = [n for n in range(len(wire)) if not rejected(wire[:n])]
    assert accepted == []


@vector_param
def test_every_truncation_of_the_signable_fails(vector: dict[str, Any]) -> None:
    """Truncated signable bytes inside a well-formed wire envelope reach the inner decoder."""
    ev = decode_event(bytes.fromhex(vector["wire_hex"]))
    accepted = [n for n in range(len(ev.signable)) if not rejected(wrap(ev.signable[:n], ev.sig))]
    assert accepted == []


@vector_param
def test_extra_bytes_fail(vector: dict[str, Any]) -> None:
    ev = decode_event(bytes.fromhex(vector["wire_hex"]))
    assert rejected(ev.wire + b"\x00")
    assert rejected(wrap(ev.signable + b"\x00", ev.sig))
    assert rejected(wrap(ev.signable + b"\xf6", ev.sig))
    assert rejected(ev.wire[:-1] + b"\x00\x00")


# --- negative: the same value, encoded non-canonically ---------------------------------------


@pytest.mark.parametrize("mode", MODES)
@vector_param
def test_every_noncanonical_signable_fails(vector: dict[str, Any], mode: str) -> None:
    """Widen any one head, make any one string or array indefinite, tag any one node, or write
    any one integer as a float or a bignum: each variant must be refused."""
    ev = decode_event(bytes.fromhex(vector["wire_hex"]))
    value = signable_value(ev)
    variants = list(mutations(value, mode))
    assert variants, f"no {mode} variant built"
    accepted = []
    for index, signable in variants:
        assert signable != ev.signable
        if mode in ("widen", "indefinite"):
            # Same value, different bytes: exactly what canonical decoding must refuse (a
            # two-byte null or boolean is not even well-formed, so a lenient decoder refuses).
            try:
                assert cbor2.loads(signable) == cbor2.loads(ev.signable)
            except cbor2.CBORDecodeError:
                assert value_at(value, index) in (None, True, False)
        if not rejected(wrap(signable, ev.sig)):
            accepted.append(index)
    assert accepted == [], f"{mode} variants accepted at node indexes {accepted}"


@pytest.mark.parametrize("mode", MODES)
@vector_param
def test_every_noncanonical_wire_envelope_fails(vector: dict[str, Any], mode: str) -> None:
    ev = decode_event(bytes.fromhex(vector["wire_hex"]))
    variants = list(mutations([ev.signable, ev.sig], mode))
    accepted = [index for index, wire in variants if not rejected(wire)]
    assert accepted == []


def test_widened_simple_values_fail() -> None:
    """null and booleans in two bytes (0xf8 0x16...) are not well-formed CBOR at all."""
    genesis = event_of("genesis")
    value = signable_value(genesis)
    assert value[1] is None
    assert rejected(wrap(cbor(value, Mutation("widen", 2)), genesis.sig))  # server null
    vote = event_of("vote")
    value = signable_value(vote)
    last = count_nodes(value) - 1  # the vote's accept flag
    assert value[8][-1] is True
    assert rejected(wrap(cbor(value, Mutation("widen", last)), vote.sig))


# --- negative: malformed fields ---------------------------------------------------------------


def _variant(name: str, **changes: Any) -> bytes:
    """A wire whose signable array has ``changes`` (field name -> raw value) applied."""
    ev = event_of(name)
    value = signable_value(ev)
    positions = {
        "tag": 0,
        "server": 1,
        "author": 2,
        "seq": 3,
        "prev": 4,
        "deps": 5,
        "ts": 6,
        "kind": 7,
        "payload": 8,
    }
    for field, raw in changes.items():
        value[positions[field]] = raw
    return wrap(cbor(value), ev.sig)


def _ids(n: int) -> list[bytes]:
    return sorted(hashlib.sha256(bytes([i % 256, i // 256])).digest() for i in range(n))


def test_controls_decode() -> None:
    """The variant builder itself makes decodable events when nothing is wrong."""
    reply = event_of("message_reply")
    assert decode_event(_variant("message_reply")) == reply
    extra = _ids(MAX_DEPS)
    deps = sorted({*reply.deps, *extra[: MAX_DEPS - 1]})
    assert len(deps) == MAX_DEPS
    assert decode_event(_variant("message_reply", deps=deps)).deps == tuple(deps)
    two = sorted([reply.deps[0], event_of("genesis").id])
    assert decode_event(_variant("message_reply", deps=two)).deps == tuple(two)
    assert decode_event(_variant("message_reply", ts=0)).ts == 0
    assert decode_event(_variant("message_reply", seq=2**63 - 1)).seq == 2**63 - 1
    assert decode_event(_variant("message_reply", kind=int(Kind.MESSAGE))).kind is Kind.MESSAGE


REPLY = event_of("message_reply")
GENESIS = event_of("genesis")
_A, _B = sorted([REPLY.deps[0], GENESIS.id])

BAD_FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    # deps: order, duplicates, count, shape
    "deps-descending": ("message_reply", {"deps": [_B, _A]}),
    "deps-duplicate": ("message_reply", {"deps": [_A, _A]}),
    "deps-over-cap": ("message_reply", {"deps": _ids(MAX_DEPS + 1)}),
    "deps-31-bytes": ("message_reply", {"deps": [_A[:31]]}),
    "deps-text": ("message_reply", {"deps": [_A.hex()]}),
    "deps-not-array": ("message_reply", {"deps": _A}),
    "deps-contains-prev": ("message_reply", {"deps": sorted([_A, REPLY.prev])}),
    "first-event-without-deps": ("join", {"deps": []}),
    "genesis-with-deps": ("genesis", {"deps": [_A]}),
    # kind
    "kind-unknown-37": ("message_reply", {"kind": len(Kind)}),
    "kind-unknown-255": ("message_reply", {"kind": 255}),
    "kind-unknown-2**32": ("message_reply", {"kind": 2**32}),
    "kind-negative": ("message_reply", {"kind": -1}),
    "kind-text": ("message_reply", {"kind": "13"}),
    "kind-bool": ("genesis", {"kind": False}),
    "kind-null": ("message_reply", {"kind": None}),
    "kind-payload-mismatch": ("message_reply", {"kind": int(Kind.EDIT_MESSAGE)}),
    "genesis-kind-on-non-genesis": ("message_reply", {"kind": int(Kind.CREATE_SERVER)}),
    # domain-separation tag
    "tag-v0": ("genesis", {"tag": "willow/event/v0"}),
    "tag-v2": ("genesis", {"tag": "willow/event/v2"}),
    "tag-case": ("genesis", {"tag": "Willow/event/v1"}),
    "tag-nul": ("genesis", {"tag": "willow/event/v1\x00"}),
    "tag-empty": ("genesis", {"tag": ""}),
    "tag-as-bytes": ("genesis", {"tag": EVENT_TAG.encode()}),
    "tag-other-domain": ("genesis", {"tag": "willow/join/v1"}),
    # seq, prev, ts
    "seq-zero": ("genesis", {"seq": 0}),
    "seq-negative": ("message_reply", {"seq": -2}),
    "seq-2**63": ("message_reply", {"seq": 2**63}),
    "seq-2**64-1": ("message_reply", {"seq": 2**64 - 1}),
    "seq-text": ("message_reply", {"seq": "2"}),
    "seq-bool": ("genesis", {"seq": True}),
    "seq-1-with-prev": ("message_reply", {"seq": 1}),
    "seq-2-with-zero-prev": ("message_reply", {"prev": ZERO_ID}),
    "prev-31-bytes": ("message_reply", {"prev": REPLY.prev[:31]}),
    "prev-null": ("message_reply", {"prev": None}),
    "ts-negative": ("message_reply", {"ts": -1}),
    "ts-2**63": ("message_reply", {"ts": 2**63}),
    "ts-text": ("message_reply", {"ts": str(REPLY.ts)}),
    # server and author
    "genesis-with-server": ("genesis", {"server": GENESIS.id}),
    "non-genesis-without-server": ("message_reply", {"server": None}),
    "server-33-bytes": ("message_reply", {"server": GENESIS.id + b"\x00"}),
    "server-text": ("message_reply", {"server": GENESIS.id.hex()}),
    "author-31-bytes": ("message_reply", {"author": REPLY.author[:31]}),
    "author-null": ("message_reply", {"author": None}),
    # payload shape
    "payload-not-array": ("message_reply", {"payload": "hi"}),
    "payload-too-short": ("message_reply", {"payload": [REPLY.payload.channel, "hi", None]}),
    "payload-too-long": (
        "message_reply",
        {"payload": [REPLY.payload.channel, "hi", None, None, None]},
    ),
    "payload-field-type": ("message_reply", {"payload": [REPLY.payload.channel, 7, None, None]}),
    "payload-body-over-cap": (
        "message_reply",
        {"payload": [REPLY.payload.channel, "x" * 4001, None, None]},
    ),
    "payload-name-empty": ("genesis", {"payload": [""]}),
    "payload-name-over-cap": ("genesis", {"payload": ["n" * 101]}),
    "payload-unknown-action": ("propose_kick_ban", {"payload": [[9, REPLY.author]]}),
}


@pytest.mark.parametrize(("base", "changes"), BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_malformed_field_fails(base: str, changes: dict[str, Any]) -> None:
    wire = _variant(base, **changes)
    with pytest.raises(DecodeError):
        decode_event(wire)


def _raw_signable(name: str, fields: list[bytes]) -> bytes:
    """A wire around hand-assembled signable bytes: the array head plus raw field encodings."""
    return wrap(_head(4, len(fields)) + b"".join(fields), event_of(name).sig)


def _raw_fields(name: str) -> list[bytes]:
    return [cbor(v) for v in signable_value(event_of(name))]


def test_raw_field_assembly_matches() -> None:
    assert _raw_signable("genesis", _raw_fields("genesis")) == wire_of("genesis")


RAW_CASES: dict[str, tuple[str, int, bytes]] = {
    # field index -> replacement bytes, for shapes the value-level builder cannot express
    "seq-overlong-1-byte": ("genesis", 3, b"\x18\x01"),
    "seq-overlong-2-bytes": ("genesis", 3, b"\x19\x00\x01"),
    "seq-overlong-4-bytes": ("genesis", 3, b"\x1a\x00\x00\x00\x01"),
    "seq-overlong-8-bytes": ("genesis", 3, b"\x1b" + (1).to_bytes(8, "big")),
    "seq-float16": ("genesis", 3, b"\xf9\x3c\x00"),
    "seq-float32": ("genesis", 3, b"\xfa" + struct.pack(">f", 1.0)),
    "seq-float64": ("genesis", 3, b"\xfb" + struct.pack(">d", 1.0)),
    "seq-bignum": ("genesis", 3, b"\xc2\x41\x01"),
    "seq-tag-0": ("genesis", 3, b"\xc0\x01"),
    "seq-undefined": ("genesis", 3, b"\xf7"),
    "ts-float64": ("genesis", 6, b"\xfb" + struct.pack(">d", float(GENESIS.ts))),
    "ts-tag-1-epoch": ("genesis", 6, b"\xc1" + cbor(GENESIS.ts)),
    "kind-overlong": ("genesis", 7, b"\x18\x00"),
    "kind-float": ("genesis", 7, b"\xf9\x00\x00"),
    "server-undefined": ("genesis", 1, b"\xf7"),
    "server-two-byte-null": ("genesis", 1, b"\xf8\x16"),
    "deps-indefinite-empty": ("genesis", 5, b"\x9f\xff"),
    "deps-map": ("genesis", 5, b"\xa0"),
    "author-indefinite-chunks": (
        "genesis",
        2,
        b"\x5f" + cbor(GENESIS.author[:16]) + cbor(GENESIS.author[16:]) + b"\xff",
    ),
    "author-tag-24-embedded-cbor": ("genesis", 2, b"\xd8\x18" + cbor(GENESIS.author)),
    "tag-overlong-text-head": ("genesis", 0, b"\x78\x0f" + EVENT_TAG.encode()),
    "tag-indefinite-text": ("genesis", 0, b"\x7f" + cbor(EVENT_TAG) + b"\xff"),
    "tag-invalid-utf8": ("genesis", 0, b"\x6f" + b"willow/event/v\xc0"),
    "payload-overlong-utf8": ("genesis", 8, b"\x81\x62\xc0\xaf"),  # "/" as 0xc0 0xaf
    "payload-utf8-surrogate": ("genesis", 8, b"\x81\x63\xed\xa0\x80"),
    "payload-map": ("genesis", 8, b"\xa1\x64name\x61x"),
    "payload-indefinite": ("genesis", 8, b"\x9f" + cbor("Willow Vectors") + b"\xff"),
    "payload-break-only": ("genesis", 8, b"\xff"),
    "payload-nested-1000-deep": ("genesis", 8, b"\x81" * 1000 + b"\x80"),
}


@pytest.mark.parametrize(("base", "index", "raw"), RAW_CASES.values(), ids=RAW_CASES.keys())
def test_malformed_raw_field_fails(base: str, index: int, raw: bytes) -> None:
    fields = _raw_fields(base)
    assert fields[index] != raw
    fields[index] = raw
    with pytest.raises(DecodeError):
        decode_event(_raw_signable(base, fields))


def test_signable_array_shape_fails() -> None:
    fields = _raw_fields("genesis")
    sig = GENESIS.sig
    cases = {
        "8-fields": _raw_signable("genesis", fields[:8]),
        "10-fields": _raw_signable("genesis", [*fields, b"\xf6"]),
        "overlong-array-head": wrap(b"\x98\x09" + b"".join(fields), sig),
        "indefinite-array": wrap(b"\x9f" + b"".join(fields) + b"\xff", sig),
        "self-described": wrap(b"\xd9\xd9\xf7" + GENESIS.signable, sig),
        "map-not-array": wrap(cbor2.dumps({"tag": EVENT_TAG}), sig),
        "empty": wrap(b"", sig),
        "nested-wire": wrap(GENESIS.wire, sig),
    }
    accepted = [name for name, wire in cases.items() if not rejected(wire)]
    assert accepted == []


def test_malformed_envelope_fails() -> None:
    signable, sig = GENESIS.signable, GENESIS.sig
    cases = {
        "sig-63": cbor([signable, sig[:63]]),
        "sig-65": cbor([signable, sig + b"\x00"]),
        "sig-text": cbor2.dumps([signable, sig.hex()]),
        "signable-as-array": cbor([signable_value(GENESIS), sig]),
        "three-items": cbor([signable, sig, sig]),
        "one-item": cbor([signable]),
        "map": cbor2.dumps({"signable": signable, "sig": sig}),
        "signable-8-byte-length": b"\x82\x5b"
        + len(signable).to_bytes(8, "big")
        + signable
        + cbor(sig),
        "empty": b"",
        "just-array-head": b"\x82",
    }
    accepted = [name for name, wire in cases.items() if not rejected(wire)]
    assert accepted == []


@pytest.mark.parametrize("kind", [bytearray, memoryview, str, list])
def test_non_bytes_input_fails(kind: Callable[[bytes], object]) -> None:
    wire = GENESIS.wire
    arg: Any = wire.hex() if kind is str else kind(wire)
    with pytest.raises(DecodeError):
        decode_event(arg)


def test_size_cap_is_checked_before_parsing() -> None:
    # A well-formed envelope just over the cap: refused for its size, not its content.
    body = b"\x00" * (MAX_EVENT_BYTES - 6 - 66 + 1)
    wire = b"\x82\x5a" + len(body).to_bytes(4, "big") + body + cbor(GENESIS.sig)
    assert len(wire) == MAX_EVENT_BYTES + 1
    with pytest.raises(DecodeError, match="cap"):
        decode_event(wire)


# --- every kind, at the size boundaries of its fields, decodes exactly as signed ---------------


def _sample_payloads() -> list[Payload]:
    """At least one payload of every kind, with text and integers at CBOR head boundaries."""
    i = [hashlib.sha256(bytes([n])).digest() for n in range(4)]
    key = bytes(range(80))
    file = FileRef(i[0], "photo.png", "image/png", 2**32, 16384, 0)
    every = frozenset(Permission)
    sealed = Sealed(b"k" * 16, b"s" * 16, b"\x00" * 23)
    payloads: list[Payload] = [
        CreateServer("S" * 100),
        Propose(GrantAdmin(i[0])),
        Propose(RevokeAdmin(i[0])),
        Propose(KickMember(i[0], False)),
        Propose(UnbanMember(i[0])),
        Propose(SetVoteThreshold(Threshold(ThresholdMode.COUNT, 2**32 - 1))),
        Vote(i[0], False),
        GrantPermission(i[0], Permission.SYNC_PROVIDER),
        RevokePermission(i[0], max(Permission)),
        CreateChannel("voice", ChannelKind.VOICE, "t" * 1024, None),
        CreateChannel("c", ChannelKind.TEXT, "", Ephemeral(EphemeralKind.WHISPER, 90 * 86_400_000)),
        DeleteChannel(i[0]),
        RenameChannel(i[0], "n" * 24, "é" * 12),
        ChannelRevive(i[0]),
        CreateRole("role", 0xFFFFFF),
        DeleteRole(i[0]),
        SetPermission(i[0], Permission.MANAGE_EMOJI, True),
        AssignRole(i[0], i[1]),
        Message(i[0], "", i[1], i[2]),
        Message(i[0], "\N{GRINNING FACE}" * 4000),
        FileMessage(i[0], file, "x" * 255, None, i[1]),
        EditMessage(i[0], "y" * 256),
        DeleteMessage(i[0]),
        Reaction(i[0], "\N{THUMBS UP SIGN}"),
        SetProfile("z" * 64),
        UpdateProfile(ProfileDelta()),
        UpdateProfile(ProfileDelta(("a",), (None,), ("b" * 240,), ("",), (None,), (i[3],))),
        RotateChannelKey(i[0], bytes(16), (KeyShare(i[1], key), KeyShare(i[2], b""))),
        PinMessage(i[0], i[1]),
        UnpinMessage(i[0], i[1]),
        RenameServer("r" * 23),
        SetServerDescription("d" * 65),
        MuteChannel(i[0], True),
        MuteGrove(False),
        Join(i[0], bytes(64)),
        Leave(),
        UnassignRole(i[0], i[1]),
        RemoveReaction(i[0], ":" + "e" * 30 + ":"),
        CreateThread(i[0], i[1], "thread"),
        AddEmoji("ok", i[0], "image/webp"),
        RemoveEmoji(i[0]),
        SetChannelOverwrite(i[0], OverwriteTarget.ROLE, i[1], every, frozenset()),
        SetChannelOverwrite(i[0], OverwriteTarget.MEMBER, i[1], frozenset(), every),
        CreateInvite(i[0], 0, 0),
        CreateInvite(i[0], 2**63 - 1, 65536),
        RevokeInvite(i[0]),
        PublishKey(i[0], bytes(64)),
        CreateSealedChannel("secret", "t" * 24, HistoryVisibility.SINCE_JOINING),
        ShareChannelKey(i[0], b"k" * 16, (KeyShare(i[1], key),)),
        SealedMessage(i[0], sealed, i[1], None),
        SealedMessage(i[0], Sealed(b"k" * 16, b"s" * 16, b"b" * MAX_SEALED_BYTES)),
        SealedEdit(i[0], sealed),
        CreateSealedThread(i[0], i[1], sealed),
        SealedFileMessage(i[0], i[1], sealed, None, i[2]),
    ]
    return payloads


SAMPLES = _sample_payloads()


def test_samples_cover_every_kind() -> None:
    assert {payload_to_cbor(p)[0] for p in SAMPLES} == set(Kind)


@pytest.mark.parametrize(
    "payload", SAMPLES, ids=[f"{i}-{type(p).__name__}" for i, p in enumerate(SAMPLES)]
)
@pytest.mark.parametrize(("seq", "ts"), [(1, 0), (23, 23), (24, 255), (2**32, 2**63 - 1)])
def test_signed_events_decode_exactly(payload: Payload, seq: int, ts: int) -> None:
    """The decoder's canonical proof accepts every canonical event the signer produces."""
    person = identity("vectors/samples")
    server = None if isinstance(payload, CreateServer) else GENESIS.id
    if server is None:
        seq = 1  # genesis is always seq 1
    ev = sign_event(
        secret_key=person.secret_key,
        author=person.public_key,
        server=server,
        seq=seq,
        prev=ZERO_ID if seq == 1 else REPLY.id,
        deps=() if server is None else _ids(3 if seq == 1 else 0),
        ts=ts,
        payload=payload,
    )
    assert decode_event(ev.wire) == ev
    assert ev.payload == payload

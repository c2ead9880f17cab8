"""Fuzzing the trust boundary: decoders and DAG insert under random and hostile input.

Over 100,000 inputs in total (counted, see ``test_total_inputs``), generated with seeded
``random.Random`` instances (fast and reproducible; a failure message names the part and seed):

* ``decode_event``: random bytes, byte-level mutations of valid wires (bit flips, insertions,
  deletions, truncations, splices), value-level mutations (type confusions, floats, tags, maps,
  out-of-range values) and *non-canonical re-encodings* of valid events;
* ``encoding.decode``: the same kinds of input against a caller's ``max_bytes``;
* ``InviteLink.parse``: random text and mutated valid links;
* ``ManagedDag.receive``: validly signed events with hostile semantics (wrong seq/prev, far
  past or future times, unknown deps, votes and joins with bad references, wrong server, bad
  signatures).

Contracts checked: decoders raise only ``DecodeError`` (a ``WillowError``); whatever a decoder
accepts is canonical (re-encodes to the very same bytes, so ids are not malleable); ``receive``
never raises for signed input, accounts for every event, admits only validly signed events
whose parents are present, and keeps incremental state equal to a fresh replay.
"""

from __future__ import annotations

import base64
import hashlib
import random
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cbor2
import pytest
from strategies import START_MS, cached_identity

import willow_core.encoding as encoding_module
from willow_core.client import Community
from willow_core.dag import EventDag
from willow_core.encoding import MAX_DEPTH, decode, encode
from willow_core.errors import DecodeError, LocalError, NotPermitted
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
from willow_core.identity import Identity
from willow_core.invite import MAX_LINK_CHARS, InviteLink, invite_key, sign_join
from willow_core.kinds import (
    AddEmoji,
    AssignRole,
    ChannelKind,
    ChannelRevive,
    CreateChannel,
    CreateInvite,
    CreateRole,
    CreateSealedChannel,
    CreateSealedThread,
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
from willow_core.managed import ManagedDag
from willow_core.materialize import materialize
from willow_core.order import topological_order
from willow_core.permissions import Permission
from willow_core.state import state_hash
from willow_core.testing import seed_bytes

#: Inputs per part; their sum is the fuzz budget (at least 100,000).
BUDGET = {
    "event_random": 15_000,
    "event_bytes": 40_000,
    "event_values": 8_000,
    "event_noncanonical": 6_000,
    "decode_generic": 15_000,
    "invite_parse": 8_000,
    "receive_hostile": 10_000,
}
#: Inputs actually fed, per part (filled by the tests; ``test_total_inputs`` sums them).
COUNTS: dict[str, int] = {}
#: Largest seq/ts an event may carry on the wire (``decode_event`` refuses 2**63 and more).
UINT_MAX = 2**63 - 1
#: Every part seeds its own ``random.Random`` from this and its name.
SEED = 0x5EED_F022


# --- a corpus of valid events covering every kind ---------------------------------------------


@dataclass
class Corpus:
    server_id: bytes
    events: list[Event]
    link: InviteLink
    keys: dict[bytes, Identity]
    wires: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.wires = [ev.wire for ev in self.events]


def build_corpus() -> Corpus:
    """A small community where every event kind occurs at least once."""
    wall = START_MS
    owner, bob, carol, dave = (
        cached_identity(f"fuzz-{n}") for n in ("owner", "bob", "carol", "dave")
    )
    o, genesis = Community.create(owner, "fuzz", wall)
    server = genesis.id
    events = [genesis]
    replicas = [o]

    def act(c: Community, payload: Payload) -> Event:
        nonlocal wall
        wall += 10
        try:
            ev = c.author(payload, wall)
        except NotPermitted as exc:  # pragma: no cover - the corpus script is fixed
            raise AssertionError(f"corpus step refused: {payload!r}: {exc}") from None
        events.append(ev)
        return ev

    def sync() -> None:
        for r in replicas:
            r.receive([ev for ev in events if ev.id not in r.dag], wall)

    general = act(o, CreateChannel("general", ChannelKind.TEXT, "topic"))
    voice = act(
        o,
        CreateChannel("voice", ChannelKind.VOICE, "", Ephemeral(EphemeralKind.CHANNEL, 3_600_000)),
    )
    seed = seed_bytes("fuzz-invite")
    invite = act(o, CreateInvite(invite_key(seed)[0], 10, 0))
    link = InviteLink(server, invite.id, seed, ("wss://relay.example/ws",))
    b, c, d = (Community(i, server) for i in (bob, carol, dave))
    for r in (b, c, d):
        r.receive(list(events), wall)
        wall += 10
        events.append(r.join(link, wall))
        replicas.append(r)
    sync()
    m1 = act(o, Message(general.id, "hello"))
    sync()
    m2 = act(b, Message(general.id, "hi 👋", None, m1.id))
    act(b, FileMessage(general.id, FileRef(seed, "cat.png", "image/png", 1234, 64, 48), "look"))
    act(b, EditMessage(m2.id, "hi!"))
    sync()
    act(c, Reaction(m1.id, "👍"))
    act(c, RemoveReaction(m1.id, "👍"))
    act(c, Reaction(m1.id, "🎉"))
    sync()
    role = act(o, CreateRole("mods", 0x00FF00))
    act(o, SetPermission(role.id, Permission.MANAGE_MESSAGES, True))
    act(o, AssignRole(bob.public_key, role.id))
    act(o, UnassignRole(bob.public_key, role.id))
    temp = act(o, CreateRole("temp"))
    act(o, DeleteRole(temp.id))
    act(o, GrantPermission(carol.public_key, Permission.MANAGE_CHANNELS))
    act(o, RevokePermission(carol.public_key, Permission.MANAGE_CHANNELS))
    act(o, RenameChannel(general.id, "lobby", "new topic"))
    act(o, ChannelRevive(voice.id))
    thread = act(o, CreateThread(general.id, m1.id, "thread"))
    act(o, Message(general.id, "in the thread", thread.id, m1.id))
    act(o, PinMessage(general.id, m1.id))
    act(o, UnpinMessage(general.id, m1.id))
    act(o, RenameServer("fuzz two"))
    act(o, SetServerDescription("a community under test"))
    sync()
    act(b, MuteChannel(general.id, True))
    act(b, MuteGrove(True))
    act(b, SetProfile("Bob"))
    act(
        b,
        UpdateProfile(ProfileDelta(("Bobby",), ("he/him",), (None,), (), (0xFF0000,), (seed,))),
    )
    secret = act(o, CreateSealedChannel("secret", "sealed", HistoryVisibility.SINCE_JOINING))
    act(o, PublishKey(owner.x25519_public, owner.binding))
    act(
        o,
        RotateChannelKey(
            secret.id,
            b"1" * 16,
            (KeyShare(bob.public_key, bytes(80)), KeyShare(carol.public_key, bytes(80))),
        ),
    )
    act(o, ShareChannelKey(secret.id, b"1" * 16, (KeyShare(owner.public_key, bytes(80)),)))
    boxed = Sealed(b"1" * 16, bytes(16), bytes(40))
    sm = act(o, SealedMessage(secret.id, boxed))
    act(o, SealedEdit(sm.id, boxed._replace(salt=b"\x01" * 16)))
    act(o, CreateSealedThread(secret.id, sm.id, boxed))
    act(o, SealedFileMessage(secret.id, seed, boxed))
    act(o, AddEmoji("party", seed, "image/png"))
    gone = act(o, AddEmoji("gone", seed, "image/webp"))
    act(o, RemoveEmoji(gone.id))
    act(
        o,
        SetChannelOverwrite(
            general.id,
            OverwriteTarget.ROLE,
            server,
            frozenset(),
            frozenset({Permission.ADD_REACTIONS}),
        ),
    )
    act(
        o,
        SetChannelOverwrite(
            general.id,
            OverwriteTarget.MEMBER,
            carol.public_key,
            frozenset({Permission.ADD_REACTIONS}),
            frozenset(),
        ),
    )
    second = act(o, CreateInvite(invite_key(seed_bytes("fuzz-invite-2"))[0], 1, wall + 10**6))
    act(o, RevokeInvite(second.id))
    act(o, Propose(GrantAdmin(bob.public_key)))
    sync()
    pending = act(b, Propose(SetVoteThreshold(Threshold(ThresholdMode.COUNT, 2))))
    sync()
    act(o, Vote(pending.id, True))
    act(o, Propose(KickMember(dave.public_key, True)))
    act(o, Propose(UnbanMember(dave.public_key)))
    act(o, Propose(RevokeAdmin(bob.public_key)))
    sync()
    act(c, Leave())
    act(o, DeleteMessage(m2.id))
    act(o, DeleteChannel(voice.id))
    kinds = {ev.kind for ev in events}
    assert kinds == set(Kind), sorted(k.name for k in kinds)
    keys = {i.public_key: i for i in (owner, bob, carol, dave)}
    return Corpus(server, events, link, keys)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return build_corpus()


# --- helpers ----------------------------------------------------------------------------------


def wrap(signable: bytes, sig: bytes) -> bytes:
    """The canonical wire ``[signable, sig]`` (the outer layer, built independently)."""
    return encode([signable, sig])


def check_accepted_event(wire: bytes, ev: Event) -> None:
    """Whatever ``decode_event`` accepts is canonical through and through."""
    assert ev.wire == wire
    assert ev.id == hashlib.sha256(ev.signable).digest()
    raw = cbor2.loads(ev.signable)
    assert encode(raw) == ev.signable, "accepted a non-canonical signable"
    assert raw[0] == EVENT_TAG
    kind, payload_raw = payload_to_cbor(ev.payload)
    assert kind is ev.kind
    assert payload_raw == raw[8], "payload does not round-trip"
    assert encode(payload_raw) == encode(raw[8])


def expect_decode_event(wire: Any) -> Event | None:
    """``decode_event(wire)``: an event (checked canonical) or None on ``DecodeError``.

    Any other exception escapes and fails the test, with the input in the message.
    """
    try:
        ev = decode_event(wire)
    except DecodeError:
        return None
    except Exception as exc:
        raise AssertionError(f"decode_event raised {exc!r} for {bytes(wire)[:200].hex()}") from exc
    check_accepted_event(wire, ev)
    return ev


def expect_decode(data: bytes, max_bytes: int) -> Any:
    try:
        value = decode(data, max_bytes=max_bytes)
    except DecodeError:
        return None
    except Exception as exc:
        raise AssertionError(f"decode raised {exc!r} for {data[:200].hex()}") from exc
    assert len(data) <= max_bytes
    assert encode(value) == data, "decode accepted a non-canonical encoding"
    return value


def random_bytes(rng: random.Random, n: int) -> bytes:
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def mutate_bytes(rng: random.Random, data: bytes, donors: list[bytes]) -> bytes:
    """One to three random byte-level mutations."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(9)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:  # bit flip
            i = min(pos, len(out) - 1)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:  # byte set to something interesting
            i = min(pos, len(out) - 1)
            out[i] = rng.choice(
                (
                    0x00,
                    0xFF,
                    0x7F,
                    0x80,
                    0x18,
                    0x19,
                    0x1A,
                    0x1B,
                    0x1F,
                    0xF5,
                    0xF6,
                    0xF7,
                    0xF9,
                    0xFB,
                    0xC0,
                    0xC2,
                    0x9F,
                    0xBF,
                    0x5F,
                    0x7F,
                    rng.randrange(256),
                )
            )
        elif op == 2:  # insertion
            out[pos:pos] = random_bytes(rng, rng.randint(1, 8))
        elif op == 3 and out:  # deletion
            del out[pos : pos + rng.randint(1, 8)]
        elif op == 4:  # truncation
            del out[rng.randrange(len(out) + 1) :]
        elif op == 5 and donors:  # splice with another valid input
            donor = rng.choice(donors)
            cut = rng.randrange(len(donor) + 1)
            out[pos:] = donor[cut:]
        elif op == 6 and out:  # duplicate a chunk
            start = rng.randrange(len(out))
            out[pos:pos] = out[start : start + rng.randint(1, 16)]
        elif op == 7 and len(out) > 2:  # swap two bytes
            i, j = rng.randrange(len(out)), rng.randrange(len(out))
            out[i], out[j] = out[j], out[i]
        elif op == 8 and out:  # +-1 on a byte (length heads, small ints)
            i = min(pos, len(out) - 1)
            out[i] = (out[i] + rng.choice((-1, 1))) % 256
    return bytes(out)


def head(major: int, n: int, extra: int = 0) -> bytes:
    """A CBOR head, ``extra`` sizes longer than the shortest (0 = canonical)."""
    widths = [0, 1, 2, 4, 8]
    limits = [24, 256, 65536, 2**32, 2**64]
    shortest = next(i for i, limit in enumerate(limits) if n < limit)
    width = widths[min(shortest + extra, 4)]
    if width == 0:
        return bytes([major << 5 | n])
    return bytes([major << 5 | (24 + widths.index(width) - 1)]) + n.to_bytes(width, "big")


def encode_loose(value: Any, rng: random.Random, p_overlong: float) -> bytes:
    """CBOR of ``value`` where each head is overlong with probability ``p_overlong``."""

    def extra() -> int:
        return rng.randint(1, 3) if rng.random() < p_overlong else 0

    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if type(value) is int:
        return head(0, value, extra()) if value >= 0 else head(1, -1 - value, extra())
    if type(value) is bytes:
        return head(2, len(value), extra()) + value
    if type(value) is str:
        data = value.encode()
        return head(3, len(data), extra()) + data
    if type(value) is list:
        return head(4, len(value), extra()) + b"".join(
            encode_loose(v, rng, p_overlong) for v in value
        )
    raise TypeError(type(value))


def hostile_value(rng: random.Random, like: Any) -> Any:
    """A value that is wrong for its position but still encodable."""
    choices: list[Callable[[], Any]] = [
        lambda: None,
        lambda: True,
        lambda: False,
        lambda: 0,
        lambda: 1,
        lambda: -1,
        lambda: 2**63,
        lambda: 2**64 - 1,
        lambda: -(2**63),
        lambda: 2**64,  # a bignum: a tag
        lambda: 1.0,
        lambda: float("nan"),
        lambda: b"",
        lambda: bytes(31),
        lambda: bytes(33),
        lambda: random_bytes(rng, 32),
        lambda: "",
        lambda: "x" * rng.choice((1, 23, 24, 255, 256, 4001)),
        lambda: "\u00e9\U0001f600",
        lambda: [],
        lambda: [like],
        lambda: {"a": 1},
        lambda: {1: 2},
        lambda: cbor2.CBORTag(rng.choice((0, 1, 2, 24, 55799, 2**20)), like),
        lambda: cbor2.undefined,
        lambda: cbor2.CBORSimpleValue(rng.randrange(32, 256)),
    ]
    if type(like) is int and not isinstance(like, bool):
        choices += [lambda: like + 1, lambda: like - 1, lambda: bool(like & 1), lambda: -like]
    if type(like) is bytes:
        choices += [lambda: like[:-1], lambda: like + b"\x00", lambda: like.decode("latin-1")]
    if type(like) is str:
        choices += [lambda: like.encode(), lambda: like * 50, lambda: like + "\x00"]
    if type(like) is list:
        choices += [lambda: like[:-1], lambda: [*like, None], lambda: like[::-1], lambda: like * 2]
    return rng.choice(choices)()


def mutate_tree(rng: random.Random, value: Any) -> Any:
    """Replace one random node of a decoded CBOR tree with a hostile value."""
    if type(value) is not list or not value or rng.random() < 0.15:
        return hostile_value(rng, value)
    copy = list(value)
    i = rng.randrange(len(copy))
    copy[i] = mutate_tree(rng, copy[i])
    return copy


# --- decode_event -----------------------------------------------------------------------------


def fuzz_event_random(rng: random.Random, n: int) -> int:
    """Random bytes, many of them shaped like the outer ``[bstr, bstr(64)]`` array."""
    count = 0
    for _ in range(n):
        size = rng.choice((0, 1, 5, 69, 70, 71, 100, 200, 400, rng.randrange(600)))
        body = random_bytes(rng, size)
        shape = rng.randrange(4)
        if shape == 1:
            body = b"\x82" + body
        elif shape == 2 and size >= 66:
            inner = body[: size - 66]
            body = b"\x82" + head(2, len(inner)) + inner + b"\x58\x40" + body[-64:]
        elif shape == 3:
            body = wrap(random_bytes(rng, rng.randrange(200)), random_bytes(rng, 64))
        assert expect_decode_event(body) is None or shape == 3
        count += 1
    for odd in (bytearray(b"\x82"), memoryview(b"\x82\x40"), "82", None, 7, [b"\x82"]):
        with pytest.raises(DecodeError):
            decode_event(odd)  # type: ignore[arg-type]
        count += 1
    return count


def fuzz_event_bytes(rng: random.Random, n: int, wires: list[bytes]) -> int:
    """Byte-level mutations of valid wires (and of their signables, re-wrapped)."""
    signables = [decode_event(w).signable for w in wires]
    accepted = 0
    for i in range(n):
        if i % 3 == 2:  # mutate inside the signed part, keep the outer layer well formed
            k = rng.randrange(len(wires))
            signable = mutate_bytes(rng, signables[k], signables)
            wire = wrap(signable, wires[k][-64:])
        else:
            wire = mutate_bytes(rng, rng.choice(wires), wires)
        if expect_decode_event(wire) is not None:
            accepted += 1
    # Some mutations (a flipped bit in a message body) stay valid: those were checked canonical.
    assert accepted < n
    return n


def fuzz_event_values(rng: random.Random, n: int, wires: list[bytes]) -> int:
    """Value-level mutations: a decoded signable with one node replaced, re-encoded, re-wrapped."""
    trees = [cbor2.loads(decode_event(w).signable) for w in wires]
    for _ in range(n):
        k = rng.randrange(len(trees))
        tree = mutate_tree(rng, trees[k])
        try:
            signable = cbor2.dumps(tree, canonical=True)
        except (ValueError, TypeError, cbor2.CBOREncodeError):
            signable = b"\x80"
        expect_decode_event(wrap(signable, wires[k][-64:]))
    return n


def fuzz_event_noncanonical(rng: random.Random, n: int, wires: list[bytes]) -> int:
    """Valid events re-encoded with random overlong heads: always refused, by both decoders.

    This is the contract the length-based canonical proof in ``decode_event`` relies on.
    """
    trees = [cbor2.loads(decode_event(w).signable) for w in wires]
    refused = 0
    for _ in range(n):
        k = rng.randrange(len(trees))
        signable = encode_loose(trees[k], rng, rng.choice((0.02, 0.1, 0.5)))
        ev = decode_event(wires[k])
        if signable == ev.signable:
            continue
        wire = wrap(signable, ev.sig)
        assert expect_decode_event(wire) is None, f"non-canonical event accepted: {wire.hex()}"
        assert expect_decode(signable, MAX_EVENT_BYTES) is None
        refused += 1
    assert refused > n // 2
    return n


@pytest.mark.slow
def test_fuzz_decode_event_random_bytes(corpus: Corpus) -> None:
    run_part("event_random", corpus)


@pytest.mark.slow
def test_fuzz_decode_event_byte_mutations(corpus: Corpus) -> None:
    run_part("event_bytes", corpus)


@pytest.mark.slow
def test_fuzz_decode_event_value_mutations(corpus: Corpus) -> None:
    run_part("event_values", corpus)


@pytest.mark.slow
def test_fuzz_decode_event_refuses_every_noncanonical_form(corpus: Corpus) -> None:
    run_part("event_noncanonical", corpus)


def test_corpus_round_trips(corpus: Corpus) -> None:
    for wire, ev in zip(corpus.wires, corpus.events, strict=True):
        got = expect_decode_event(wire)
        assert got == ev
        assert verify_event(ev)


# --- encoding.decode --------------------------------------------------------------------------


def random_model_value(rng: random.Random, depth: int = 0) -> Any:
    """A random value of the data model (maps included), for the generic decoder."""
    pick = rng.randrange(10 if depth < 4 else 7)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.choice((0, 1, 23, 24, 255, 256, 65535, 65536, 2**32, 2**63 - 1, 2**64 - 1))
    if pick == 3:
        return -rng.choice((1, 24, 25, 256, 257, 2**63))
    if pick == 4:
        return random_bytes(rng, rng.choice((0, 1, 23, 24, 40)))
    if pick == 5:
        return "".join(rng.choice("az é😀") for _ in range(rng.randrange(30)))
    if pick == 6:
        return rng.randrange(1000)
    if pick in (7, 8):
        return [random_model_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {
        f"k{rng.randrange(50)}": random_model_value(rng, depth + 1) for _ in range(rng.randrange(4))
    }


def fuzz_decode_generic(rng: random.Random, n: int, donors: list[bytes]) -> int:
    for i in range(n):
        part = i % 5
        if part == 0:
            data = random_bytes(rng, rng.randrange(64))
        elif part == 1:
            data = mutate_bytes(rng, rng.choice(donors), donors)
        elif part == 2:  # a valid value, maybe one mutation, maybe at the cap's edge
            data = encode(random_model_value(rng))
            if rng.random() < 0.5:
                data = mutate_bytes(rng, data, donors)
        elif part == 3:  # maps with duplicate or unsorted keys, non-canonical forms
            value = random_model_value(rng)
            if rng.random() < 0.5:
                data = encode_loose(value, rng, 0.3) if _map_free(value) else encode(value)
            else:
                data = _map_variants(rng)
        else:
            data = wrap(rng.choice(donors), random_bytes(rng, 64))
            data = mutate_bytes(rng, data, donors) if rng.random() < 0.5 else data
        cap = rng.choice((len(data), len(data) - 1, len(data) + 1, 16, MAX_EVENT_BYTES))
        value = expect_decode(data, max(cap, 0))
        if part == 2 and value is None and len(data) <= cap:
            pass  # a mutation made it invalid
    return n


def _map_free(value: Any) -> bool:
    if type(value) is dict:
        return False
    if type(value) is list:
        return all(map(_map_free, value))
    return True


def _map_variants(rng: random.Random) -> bytes:
    """Maps the canonical encoder would never write: duplicate keys, unsorted keys, int keys."""
    a, b = encode("a"), encode("b")
    return rng.choice(
        (
            b"\xa2" + a + b"\x01" + a + b"\x02",  # duplicate key
            b"\xa2" + b + b"\x01" + a + b"\x02",  # keys out of order
            b"\xa1\x01\x02",  # non-text key
            b"\xa1" + a + b"\xa1" + b + b"\x01",  # nested, canonical (accepted)
            b"\xb8\x01" + a + b"\x01",  # overlong map head
            b"\xa1\x78\x01a\x01",  # overlong key head
        )
    )


@pytest.mark.slow
def test_fuzz_encoding_decode(corpus: Corpus) -> None:
    run_part("decode_generic", corpus)


# --- InviteLink.parse -------------------------------------------------------------------------


def expect_parse(text: str) -> InviteLink | None:
    try:
        link = InviteLink.parse(text)
    except DecodeError:
        return None
    except Exception as exc:
        raise AssertionError(f"InviteLink.parse raised {exc!r} for {text[:300]!r}") from exc
    assert InviteLink.parse(link.encode()) == link
    assert all(len(x) == 32 for x in (link.server, link.invite, link.seed))
    return link


def fuzz_invite_parse(rng: random.Random, n: int, link: InviteLink) -> int:
    valid = link.encode()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567ABCDEFGHIJKLMNOPQRSTUVWXYZ0189=:/ \n\t-_.é😀"
    for i in range(n):
        part = i % 4
        if part == 0:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(120)))
            if rng.random() < 0.5:
                text = "willow:join:" + text
        elif part == 1:  # character-level mutations of a valid link
            chars = list(valid)
            for _ in range(rng.randint(1, 3)):
                pos = rng.randrange(len(chars))
                op = rng.randrange(4)
                if op == 0:
                    chars[pos] = rng.choice(alphabet)
                elif op == 1:
                    del chars[pos]
                elif op == 2:
                    chars.insert(pos, rng.choice(alphabet))
                else:
                    del chars[pos:]
                    break
            text = "".join(chars) or "w"
        elif part == 2:  # valid links in noise: case, whitespace, URLs, prefixes
            text = rng.choice(
                (valid.upper(), valid, " ".join(valid[j : j + 7] for j in range(0, len(valid), 7)))
            )
            text = rng.choice(("", "https://willow.example/#", "join me: ", "\n")) + text
            text += rng.choice(("", " ", "\t", "\n\n"))
            assert expect_parse(text) == link, text
        else:  # base32 of random or mutated CBOR behind the prefix; overlong texts
            raw = mutate_bytes(
                rng, base64.b32decode(valid[12:].upper() + "=" * (-len(valid[12:]) % 8)), []
            )
            if rng.random() < 0.2:
                raw = random_bytes(rng, rng.choice((10, 100, MAX_LINK_CHARS)))
            text = "willow:join:" + base64.b32encode(raw).decode().rstrip("=").lower()
        expect_parse(text)
    return n


@pytest.mark.slow
def test_fuzz_invite_parse(corpus: Corpus) -> None:
    run_part("invite_parse", corpus)


def test_invite_link_is_found_in_text_with_any_characters() -> None:
    """A link pasted with surrounding text parses whatever that text contains."""
    link = InviteLink(bytes(32), bytes([1]) * 32, bytes([2]) * 32, ("wss://relay.example",))
    assert InviteLink.parse("join us: " + link.encode()) == link
    assert InviteLink.parse("ẞ ﬁ " + link.encode()) == link


def test_invite_link_after_text_whose_lowercase_is_longer() -> None:
    link = InviteLink(bytes(32), bytes([1]) * 32, bytes([2]) * 32, ("wss://relay.example",))
    assert InviteLink.parse("İstanbul meetup: " + link.encode()) == link


# --- ManagedDag.receive of signed hostile events ----------------------------------------------


class Hostile:
    """Builds validly signed events with hostile semantics from a community's events."""

    def __init__(self, corpus: Corpus, rng: random.Random) -> None:
        self.corpus = corpus
        self.rng = rng
        self.strangers = [cached_identity(f"fuzz-stranger-{i}") for i in range(3)]
        self.keys = {**corpus.keys, **{i.public_key: i for i in self.strangers}}
        self.ids = [ev.id for ev in corpus.events]
        #: author -> their last event in the batch being built (not in the DAG yet)
        self.batch_heads: dict[bytes, Event] = {}
        #: whether the last ``sign`` kept the author's own valid signature
        self.signed_honestly = True

    def ref(self) -> bytes:
        rng = self.rng
        pick = rng.randrange(6)
        if pick == 0:
            return random_bytes(rng, 32)
        if pick == 1:
            return rng.choice(list(self.keys))
        if pick == 2:
            return self.corpus.server_id
        if pick == 3:
            return self.corpus.link.invite
        return rng.choice(self.ids)

    def payload(self, author: Identity) -> tuple[Payload, list[bytes]]:
        """A hostile payload and the deps it would need to be structurally plausible."""
        rng, ref = self.rng, self.ref
        target = ref()
        link = self.corpus.link
        choices: list[Callable[[], Payload]] = [
            lambda: Vote(target, rng.random() < 0.5),
            lambda: Join(target, random_bytes(rng, 64)),
            lambda: Join(
                link.invite,
                sign_join(link.seed, self.corpus.server_id, link.invite, author.public_key),
            ),
            lambda: Join(
                link.invite, sign_join(link.seed, self.corpus.server_id, link.invite, ref())
            ),
            lambda: Join(
                target, sign_join(link.seed, self.corpus.server_id, target, author.public_key)
            ),
            lambda: Message(
                target,
                "x" * rng.randrange(50),
                rng.choice((None, ref())),
                rng.choice((None, ref())),
            ),
            lambda: Reaction(target, rng.choice(("👍", "a" * 32, "é"))),
            lambda: RemoveReaction(target, "👍"),
            lambda: AssignRole(ref(), target),
            lambda: UnassignRole(ref(), target),
            lambda: SetPermission(target, rng.choice(list(Permission)), rng.random() < 0.5),
            lambda: Propose(
                rng.choice(
                    (
                        KickMember(target, rng.random() < 0.5),
                        GrantAdmin(target),
                        RevokeAdmin(target),
                        UnbanMember(target),
                        SetVoteThreshold(
                            Threshold(rng.choice(list(ThresholdMode)), rng.randrange(4))
                        ),
                    )
                )
            ),
            lambda: DeleteChannel(target),
            lambda: RenameChannel(target, "n"),
            lambda: CreateThread(target, ref(), "t"),
            lambda: PinMessage(target, ref()),
            lambda: UnpinMessage(target, ref()),
            lambda: EditMessage(target, "edited"),
            lambda: DeleteMessage(target),
            lambda: RevokeInvite(target),
            lambda: DeleteRole(target),
            lambda: RemoveEmoji(target),
            lambda: GrantPermission(target, rng.choice(list(Permission))),
            lambda: RevokePermission(target, rng.choice(list(Permission))),
            lambda: SetChannelOverwrite(
                target,
                rng.choice(list(OverwriteTarget)),
                ref(),
                frozenset(rng.sample(list(Permission), 2)),
                frozenset(),
            ),
            lambda: RotateChannelKey(
                target,
                random_bytes(rng, 16),
                tuple(KeyShare(random_bytes(rng, 32), b"k") for _ in range(rng.choice((0, 1, 10)))),
            ),
            lambda: CreateInvite(
                random_bytes(rng, 32), rng.randrange(3), rng.choice((0, 1, 2**63 - 1))
            ),
            lambda: CreateChannel("c" * rng.randint(1, 100)),
            lambda: CreateRole("r"),
            lambda: Leave(),
            lambda: MuteGrove(True),
            lambda: SetProfile("p"),
        ]
        payload = rng.choice(choices)()
        needs = [target] if isinstance(payload, (Vote, Join)) and rng.random() < 0.7 else []
        return payload, needs

    def event(self, dag: EventDag, pool: list[Event], p_mutate: float) -> Event | None:
        """A signed hostile event; None if ``sign_event`` refuses its structure.

        Most extend an author's chain correctly (next seq, present parents, sane time) with a
        hostile payload, so replay's rules get exercised; with probability ``p_mutate`` an
        existing event's fields are mutated instead (wrong seq/prev/server, times, deps), which
        also creates forks (after which replay ignores that author: hence the low rate).
        """
        rng = self.rng
        if rng.random() >= p_mutate:
            return self.extend(dag, pool)
        base = rng.choice(pool)
        author = self.keys.get(base.author, self.strangers[0])
        server: bytes | None = base.server
        seq, prev, deps, ts = base.seq, base.prev, list(base.deps), base.ts
        payload: Payload = base.payload
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(9)
            if op == 0:
                seq = max(1, seq + rng.choice((-2, -1, 1, 2, 5, 2**40)))
                prev = ZERO_ID if seq == 1 else prev
            elif op == 1:
                prev = rng.choice((random_bytes(rng, 32), rng.choice(pool).id, self.ref()))
                seq = max(seq, 2)
            elif op == 2:
                ts = rng.choice((0, max(0, ts - 1), ts + 1, ts + 10**12, UINT_MAX))
                ts = min(ts, UINT_MAX)  # beyond it nothing decodes (see the sign_event test)
            elif op == 3:
                deps.append(rng.choice((random_bytes(rng, 32), rng.choice(pool).id)))
            elif op == 4:
                deps = [rng.choice(pool).id for _ in range(rng.choice((1, 2, MAX_DEPS)))]
            elif op == 5 and deps:
                deps.pop(rng.randrange(len(deps)))
            elif op == 6:
                payload, needs = self.payload(author)
                deps += needs
            elif op == 7:
                server = rng.choice((random_bytes(rng, 32), None, self.corpus.server_id))
            else:  # a newcomer: seq 1 of a chain nobody has seen
                author, seq, prev = rng.choice(self.strangers), 1, ZERO_ID
                deps = deps or [rng.choice(pool).id]
        return self.sign(author, server, seq, prev, deps, ts, payload)

    def extend(self, dag: EventDag, pool: list[Event]) -> Event | None:
        rng = self.rng
        author = rng.choice(list(self.keys.values()))
        head = self.batch_heads.get(author.public_key) or dag.head(author.public_key)
        payload, deps = self.payload(author)
        if head is None and rng.random() < 0.5:  # most newcomers join first
            link = self.corpus.link
            proof = sign_join(link.seed, self.corpus.server_id, link.invite, author.public_key)
            payload, deps = Join(link.invite, proof), [link.invite]
        deps += [rng.choice(pool).id for _ in range(rng.randint(0 if head else 1, 3))]
        parents = [dag.events[d] for d in deps if d in dag.events]
        if head is not None:
            parents.append(head)
        ts = min(max((p.ts for p in parents), default=START_MS) + rng.randrange(1_000), UINT_MAX)
        ev = self.sign(
            author,
            self.corpus.server_id,
            1 if head is None else head.seq + 1,
            ZERO_ID if head is None else head.id,
            deps,
            ts,
            payload,
        )
        if ev is not None and self.signed_honestly:
            self.batch_heads[author.public_key] = ev  # the next one in this batch follows it
        return ev

    def sign(
        self,
        author: Identity,
        server: bytes | None,
        seq: int,
        prev: bytes,
        deps: list[bytes],
        ts: int,
        payload: Payload,
    ) -> Event | None:
        rng = self.rng
        deps = [d for d in dict.fromkeys(deps) if d != prev][:MAX_DEPS]
        try:
            ev = sign_event(
                secret_key=author.secret_key,
                author=author.public_key,
                server=server,
                seq=seq,
                prev=prev,
                deps=deps,
                ts=ts,
                payload=payload,
            )
        except LocalError:
            return None
        roll = rng.random()
        self.signed_honestly = roll >= 0.06
        if roll < 0.04:  # a signature by someone else
            other = rng.choice(list(self.keys.values()))
            ev = ev._replace(sig=other.sign(ev.signable))
        elif roll < 0.06:  # a corrupted signature
            sig = bytearray(ev.sig)
            sig[rng.randrange(64)] ^= 1 << rng.randrange(8)
            ev = ev._replace(sig=bytes(sig))
        return ev


SIGNABLE_BUT_UNDECODABLE = {
    "ts=2**63": {"ts": 2**63},
    "ts=-1": {"ts": -1},
    "ts=True": {"ts": True},
    "seq=2**63": {"seq": 2**63},
    "ts=2**64 (a bignum tag)": {"ts": 2**64},
    "server of 31 bytes": {"server": bytes(31)},
    "prev of 33 bytes": {"prev": bytes([1]) * 33},
    "a 5-byte dep": {"deps": [b"abcde"]},
}


@pytest.mark.parametrize(
    "override", SIGNABLE_BUT_UNDECODABLE.values(), ids=list(SIGNABLE_BUT_UNDECODABLE)
)
def test_sign_event_refuses_what_would_not_decode(override: dict[str, Any]) -> None:
    """``sign_event`` promises ``LocalError`` for an event that would not decode, but checks
    neither header ranges (seq/ts in 0..2**63-1, ints not bools) nor 32-byte server, author,
    prev and deps: it signs events that every peer's ``decode_event`` refuses (and
    ``ManagedDag.receive`` accepts such ``Event`` objects in-process)."""
    who = cached_identity("fuzz-owner")
    fields: dict[str, Any] = {
        "secret_key": who.secret_key,
        "author": who.public_key,
        "server": bytes(32),
        "seq": 2,
        "prev": bytes([1]) * 32,
        "deps": (),
        "ts": 0,
        "payload": MuteGrove(True),
        **override,
    }
    try:
        ev = sign_event(**fields)
    except LocalError:
        return  # the contract: refused before signing
    decode_event(ev.wire)  # today: DecodeError, the event is unusable by anyone else


def check_dag_invariants(managed: ManagedDag) -> None:
    dag = managed.dag
    for ev in dag.events.values():
        assert all(p in dag.events for p in ev.parents), "an event entered before a parent"
    assert len(managed.order) == len(dag)
    state = managed.state
    assert state is not None
    assert state_hash(state) == state_hash(materialize(dag))
    expected = topological_order(dag.events.values(), dag.depth)
    assert [e.id for e in managed.order] == [e.id for e in expected]


def fuzz_receive(rng: random.Random, n: int, corpus: Corpus) -> int:
    hostile = Hostile(corpus, rng)
    count = 0
    rounds = 0
    while count < n:
        rounds += 1
        managed = ManagedDag(corpus.server_id)
        managed.receive(corpus.events, START_MS, verified=True)
        pool = list(corpus.events)
        round_end = min(n, count + 1_000)
        p_mutate = (0.0, 0.05, 0.4)[rounds % 3]
        now = START_MS + 10**7
        while count < round_end:
            batch: list[Event] = []
            size = min(rng.randint(1, 12), round_end - count)
            hostile.batch_heads.clear()
            while len(batch) < size:
                ev = hostile.event(managed.dag, pool, p_mutate)
                if ev is not None:
                    # Through the wire, as a peer would get it: what we sign decodes to itself.
                    decoded = decode_event(ev.wire)
                    assert decoded == ev
                    batch.append(decoded)
            if rng.random() < 0.2:  # replay something old alongside
                batch.append(rng.choice(pool))
            dropped_before = managed.pending.dropped
            now += rng.randrange(10**6)
            try:
                receipt = managed.receive(batch, now)
            except Exception as exc:  # pragma: no cover - this is the bug report
                wires = [ev.wire.hex() for ev in batch]
                raise AssertionError(f"receive raised {exc!r} for batch {wires}") from exc
            count += len(batch)
            refused = {event_id for event_id, _ in receipt.refused}
            unplaced = [
                ev
                for ev in batch
                if ev.id not in managed.dag
                and ev.id not in managed.pending
                and ev.id not in refused
            ]
            assert len(unplaced) <= managed.pending.dropped - dropped_before
            for ev in receipt.inserted:
                assert verify_event(ev), "an event with a bad signature entered the DAG"
                pool.append(ev)
            if rng.random() < 0.1:
                managed.pending.expire(now)
        check_dag_invariants(managed)
    assert rounds >= 2
    return count


@pytest.mark.slow
def test_fuzz_receive_hostile_signed_events(corpus: Corpus) -> None:
    run_part("receive_hostile", corpus)


# --- size caps are enforced before parsing ----------------------------------------------------


def test_no_input_over_the_cap_reaches_the_parser(
    monkeypatch: pytest.MonkeyPatch, corpus: Corpus
) -> None:
    seen: list[int] = []
    real_loads = cbor2.loads

    def recording_loads(data: bytes, *args: Any, **kwargs: Any) -> Any:
        seen.append(len(data))
        return real_loads(data, *args, **kwargs)

    # The decoders call ``cbor2.loads`` through the module object they imported.
    assert vars(encoding_module)["cbor2"] is cbor2
    monkeypatch.setattr(cbor2, "loads", recording_loads)
    # Sanity: the wrapper is what the decoders call.
    decode_event(corpus.wires[1])
    decode(encode([1, 2]), max_bytes=10)
    assert seen, "the monkeypatch did not reach the decoder"
    seen.clear()

    big_signable = encode([EVENT_TAG, "x" * MAX_EVENT_BYTES])
    oversized = [
        wrap(big_signable, bytes(64)),
        b"\x82\x5a" + (MAX_EVENT_BYTES + 1).to_bytes(4, "big") + bytes(MAX_EVENT_BYTES + 67),
        bytes(MAX_EVENT_BYTES + 1),
        corpus.wires[1] + bytes(MAX_EVENT_BYTES),
    ]
    for wire in oversized:
        assert len(wire) > MAX_EVENT_BYTES
        with pytest.raises(DecodeError):
            decode_event(wire)
    for cap in (0, 1, 10, 1000, MAX_EVENT_BYTES):
        for data in (encode("y" * cap), encode([bytes(cap)]), bytes(cap + 1)):
            if len(data) > cap:
                with pytest.raises(DecodeError):
                    decode(data, max_bytes=cap)
        seen_over = [n for n in seen if n > cap]
        assert not seen_over
    with pytest.raises(DecodeError):
        InviteLink.parse("willow:join:" + "a" * MAX_LINK_CHARS)
    assert seen == [], "an oversized input reached cbor2.loads"


HUGE_DECLARATIONS = [
    b"\x9b" + b"\xff" * 8,  # array of 2**64 - 1 items
    b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00",  # array of 2**32 items
    b"\x9a\xff\xff\xff\xff\x00",  # array of 2**32 - 1 items, one present
    b"\x5b\x00\x00\x00\x10\x00\x00\x00\x00",  # byte string of 64 GiB
    b"\x5b" + b"\xff" * 8,
    b"\x5a\xff\xff\xff\xff" + bytes(100),
    b"\x7b\x00\x00\x00\x10\x00\x00\x00\x00abc",  # text of 64 GiB
    b"\xbb" + b"\xff" * 8,  # map of 2**64 - 1 pairs
    b"\xba\x7f\xff\xff\xff\x61a\x00",
    b"\x9f" * 1000,  # indefinite arrays
    b"\x5f\x41a\xff",  # indefinite byte string
    b"\xc2\x5b" + b"\xff" * 8,  # a bignum tag around a huge string
    b"\x81" * 100_000 + b"\x00",  # deep nesting
    b"\xa1\x61a" * 10_000 + b"\x00",  # deep map nesting
    b"\xd8\x18" * 10_000 + b"\x00",  # nested tags
]


@pytest.mark.parametrize("data", HUGE_DECLARATIONS, ids=lambda d: d[:10].hex())
def test_huge_declared_lengths_and_deep_nesting_are_refused_cheaply(data: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            decode(data, max_bytes=len(data))
        wire = wrap(data, bytes(64))
        with pytest.raises(DecodeError):
            decode_event(wire)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Refusing must not allocate what the input declares (memory, unlike time, is stable).
    assert peak < 8 * len(wire) + 4 * 1024 * 1024


def test_nesting_limit() -> None:
    """Up to ``MAX_DEPTH`` levels of nesting decode; a little deeper never does."""
    assert decode(b"\x81" * MAX_DEPTH + b"\x00", max_bytes=100) is not None
    for depth in (MAX_DEPTH + 2, MAX_DEPTH + 10, 1000):
        with pytest.raises(DecodeError):
            decode(b"\x81" * depth + b"\x00", max_bytes=2000)


# --- the budget -------------------------------------------------------------------------------


def run_part(name: str, corpus: Corpus) -> None:
    """Feed part ``name`` its budget of inputs from its own seeded generator; record the count."""
    rng = random.Random(f"{SEED}/{name}")
    n = BUDGET[name]
    wires = corpus.wires
    if name == "event_random":
        count = fuzz_event_random(rng, n)
    elif name == "event_bytes":
        count = fuzz_event_bytes(rng, n, wires)
    elif name == "event_values":
        count = fuzz_event_values(rng, n, wires)
    elif name == "event_noncanonical":
        count = fuzz_event_noncanonical(rng, n, wires)
    elif name == "decode_generic":
        count = fuzz_decode_generic(rng, n, [decode_event(w).signable for w in wires] + wires)
    elif name == "invite_parse":
        count = fuzz_invite_parse(rng, n, corpus.link)
    else:
        assert name == "receive_hostile"
        count = fuzz_receive(rng, n, corpus)
    assert count >= n
    COUNTS[name] = count


def test_total_inputs(corpus: Corpus) -> None:
    """At least 100,000 fuzz inputs were fed (parts not run in this session run here)."""
    for name in BUDGET:
        if name not in COUNTS:
            run_part(name, corpus)
    assert sum(COUNTS.values()) >= 100_000

"""Sealed-channel benchmarks (issue 5): what end-to-end encryption adds to sending, and what
rotating a big channel's key costs, each against the crypto it cannot avoid.

* ``seal``: one member sends ``SEAL_MESSAGES`` chat messages to a sealed channel of
  ``SEAL_MEMBERS`` members. The subject is the send path as the issue defines it, encrypt +
  sign + encode, run by the very calls a client makes to send: ``Community.seal`` (find the
  current epoch, seal the body: a fresh salt, HKDF, ChaCha20-Poly1305), then
  ``Community.build_signed`` of the ``SealedMessage`` (seq, prev, deps and timestamp chosen,
  the signable bytes written, signed, the id hashed), then the event's wire bytes. Not in the
  subject: the local apply (``Community.apply_own``: the replay-rules check and applying the
  event to the sender's own state), which a client runs after building each message and before
  publishing it (``Community.author`` is both). The subject builds every message as the next
  event of the same state, so nothing is applied between them, as nothing is between the bare
  signatures; notes give the apply's cost, and the send path timed between applies, as a client
  runs it. Baseline: a bare Ed25519 sign loop over the very bytes the subject signed
  (``crypto.ed25519_sign``, the same backend). Goal <= 1.25. A note gives the floor of the
  same loop in Python with nothing but the crypto a sealed send cannot skip (16 random bytes,
  HKDF-SHA256's four SHA-256 calls, the AEAD, SHA-256 of the signable, the signature): no
  event, record or encoding at all.
* ``rotate``: a sealed channel of ``ROTATE_MEMBERS`` members, every one with a published
  X25519 key, whose epoch has reached the age limit; the owner's ``Community.key_work`` does
  what is due, as clients do about once a second: one ``ROTATE_CHANNEL_KEY`` carrying a share
  for each member, signed, checked, applied, encoded. Baseline: the bare cost of wrapping a
  32-byte key for each member with X25519 + AEAD, as the share scheme must (a fresh ephemeral
  key per share): per member, 32 random bytes, the ephemeral public key (X25519 base point),
  the DH with the member's key, ChaCha20-Poly1305 of the key under the DH output. Not in the
  baseline: HKDF, the share's AAD, the event (build, sign, check, apply, encode), choosing the
  readers. A note also gives the ratio against DH + AEAD alone (no ephemeral key made), the
  floor of a scheme without fresh ephemerals. Goal <= 1.5.

Fixtures (identities, joins, published keys, the first epoch) are built before anything is
timed, and every timed round does the same work: each round of ``rotate`` gets its own copy of
the community, and ``seal``'s subject applies nothing, so its rounds share one sender.
Nothing is mocked: entropy is ``os.urandom``, crypto is the product's backend.
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from collections.abc import Callable, Iterator

from willow_core import crypto
from willow_core.client import Community
from willow_core.encoding import encode
from willow_core.event import ZERO_ID, Event, decode_event, sign_event
from willow_core.identity import Identity
from willow_core.invite import invite_key, sign_join
from willow_core.keyring import KeyPolicy
from willow_core.kinds import (
    CreateInvite,
    CreateSealedChannel,
    HistoryVisibility,
    Join,
    PublishKey,
    RotateChannelKey,
    SealedMessage,
)
from willow_core.testing import identity, seed_bytes

from .harness import Result, best_time, report

__all__ = ["seal", "rotate"]

#: Members of the channel the messages are sent to (all readers).
SEAL_MEMBERS = 100
#: Messages sent per timed round.
SEAL_MESSAGES = 1_000
#: Rounds of each side (short rounds, many of them: the best is the least disturbed).
SEAL_ROUNDS = 30
SEAL_GOAL = 1.25
#: Messages the sender has sent before the timed ones (its deps have settled).
WARM_MESSAGES = 5
#: Conversations (build, apply, next) timed for the notes, each on a fresh replica.
CONVERSE_ROUNDS = 3
#: Built events checked to be the sender's valid next event.
SPOT_CHECKS = 100
#: Members of the channel whose key is rotated (all readers, each with a published key).
ROTATE_MEMBERS = 1_000
ROTATE_ROUNDS = 9
ROTATE_GOAL = 1.5
#: Wall clock of the fixtures (2025-10-09); every step after it is a millisecond or more.
T0 = 1_760_000_000_000
#: Beyond the default ``KeyPolicy`` age limit: the epoch is due for rotation.
PAST_MAX_AGE_MS = KeyPolicy().max_age_ms + 1

#: The vocabulary of the generated chat (a little accented text and emoji among it).
_VOCABULARY = (
    "ok yes no maybe lol thanks sure see you later tomorrow tonight meeting call the a to of "
    "and is it that this for on with we i you they just can do not have be at will what when "
    "where how deploy build release fix bug test merge review branch ticket issue docs "
    "server client coffee lunch weekend plan idea great nice cool awesome agreed done "
    "waiting looking into it sounds good let me check pushed shipped broken again works now "
    "café naïve 🎉 👍 😂 ❤️"
)
_WORDS = _VOCABULARY.split()
#: (percent of messages, fewest words, most words): chat is mostly short lines.
_LENGTHS = ((45, 1, 8), (35, 8, 30), (15, 30, 90), (5, 90, 220))


def chat_bodies(count: int, label: str = "bench/e2ee/bodies") -> list[str]:
    """``count`` deterministic chat messages of realistic lengths (a few words to a page)."""
    state = int.from_bytes(seed_bytes(label, 8), "big")
    out: list[str] = []
    for _ in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        roll = (state >> 8) % 100
        fewest, most = _LENGTHS[-1][1:]
        for share, low, high in _LENGTHS:
            if roll < share:
                fewest, most = low, high
                break
            roll -= share
        words = fewest + (state >> 16) % (most - fewest + 1)
        picks = [(state >> 24) + i * 2654435761 for i in range(words)]
        out.append(" ".join(_WORDS[p % len(_WORDS)] for p in picks))
    return out


class _Fixture:
    """A community founded by ``owner`` with a sealed channel, ``members`` readers with
    published keys and a first epoch shared with all of them, as signed events."""

    def __init__(self, members: int, label: str) -> None:
        self.owner = identity(f"{label}/owner")
        founder, _genesis = Community.create(self.owner, "bench", T0)
        self.server = founder.server_id
        seed = seed_bytes(f"{label}/invite")
        invite = founder.author(CreateInvite(invite_key(seed)[0], 0, 0), T0 + 1)
        sealed = CreateSealedChannel("sealed", "", HistoryVisibility.FULL)
        self.channel = founder.author(sealed, T0 + 2).id
        joined: list[Event] = []
        for i in range(1, members):
            joined += self._join(identity(f"{label}/member/{i}"), invite.id, seed, T0 + 3)
        receipt = founder.receive(joined, T0 + 4, verified=True)
        if receipt.refused or receipt.buffered:
            raise AssertionError("fixture members did not join cleanly")
        founder.key_work(T0 + 5, os.urandom)  # the owner's key
        founder.key_work(T0 + 6, os.urandom)  # the first epoch, shared with every member
        epochs = founder.state.channel_keys.get(self.channel, {})
        if len(epochs) != 1 or len(next(iter(epochs.values())).shares) != members:
            raise AssertionError("fixture epoch is not shared with every member")
        self.epoch_started = next(iter(epochs.values())).started
        self.events = list(founder.dag.events.values())

    def _join(self, person: Identity, invite: bytes, seed: bytes, ts: int) -> list[Event]:
        join = sign_event(
            secret_key=person.secret_key,
            author=person.public_key,
            server=self.server,
            seq=1,
            prev=ZERO_ID,
            deps=[invite],
            ts=ts,
            payload=Join(invite, sign_join(seed, self.server, invite, person.public_key)),
        )
        publish = sign_event(
            secret_key=person.secret_key,
            author=person.public_key,
            server=self.server,
            seq=2,
            prev=join.id,
            deps=[],
            ts=ts,
            payload=PublishKey(person.x25519_public, person.binding),
        )
        return [join, publish]

    def owner_replica(self) -> Community:
        """A fresh copy of the owner's community (its keyring learns the epoch by unwrapping)."""
        community = Community(self.owner, self.server)
        receipt = community.receive(self.events, T0 + 7, verified=True)
        if receipt.refused or receipt.buffered or not community.ready:
            raise AssertionError("fixture history did not replay cleanly")
        return community


def _send(community: Community, channel: bytes, body: str, wall_ms: int) -> Event:
    """The send path a client runs for one message, up to its wire bytes (not applied)."""
    key_events, sealed = community.seal(channel, body, "message", wall_ms, os.urandom)
    if key_events:
        raise AssertionError("sending needed key work the fixture should have done")
    return community.build_signed(SealedMessage(channel, sealed), wall_ms)


def _converse(
    community: Community, channel: bytes, bodies: list[str], start_ms: int
) -> tuple[float, float]:
    """Send ``bodies`` one after the other as a client does (build, apply, next): returns the
    seconds spent in the send path (up to the wire bytes) and in the local apply."""
    clock = time.perf_counter
    send_s = apply_s = 0.0
    wall_ms = start_ms
    for body in bodies:
        wall_ms += 1
        t0 = clock()
        ev = _send(community, channel, body, wall_ms)
        _ = ev.wire
        t1 = clock()
        community.apply_own(ev, wall_ms)
        send_s += t1 - t0
        apply_s += clock() - t1
    return send_s, apply_s


def seal(messages: int = SEAL_MESSAGES, rounds: int = SEAL_ROUNDS) -> Result:
    """Send path of a sealed message vs a bare Ed25519 sign of the same bytes (goal <= 1.25)."""
    fixture = _Fixture(SEAL_MEMBERS, "bench/e2ee/seal")
    channel = fixture.channel
    bodies = chat_bodies(messages)
    start_ms = T0 + 10_000
    sender = fixture.owner_replica()
    # A conversation already under way: the sender's deps have settled on what it has seen.
    _converse(sender, channel, bodies[:WARM_MESSAGES], start_ms)
    start_ms += WARM_MESSAGES
    wires: list[bytes] = []

    def subject() -> None:
        wall_ms = start_ms
        out = []
        for body in bodies:
            wall_ms += 1
            out.append(_send(sender, channel, body, wall_ms).wire)
        wires[:] = out

    subject()
    sent = [decode_event(w) for w in wires]
    _check_next_events(sender, sent)
    signed = [ev.signable for ev in sent]
    secret_key = fixture.owner.secret_key
    sign = crypto.ed25519_sign

    def baseline() -> None:
        for message in signed:
            sign(secret_key, message)

    subject_s, baseline_s = best_time(subject, baseline, rounds)
    seal_s = _best_of(
        lambda: [sender.seal(channel, b, "message", start_ms, os.urandom) for b in bodies],
        rounds,
    )
    # The same messages sent as a client sends them: each applied before the next is built.
    conversations = [
        _converse(fixture.owner_replica(), channel, bodies, start_ms)
        for _ in range(CONVERSE_ROUNDS)
    ]
    between_s = min(send_s for send_s, _ in conversations)
    apply_s = min(apply_s for _, apply_s in conversations)
    floor_s = _best_of(_crypto_floor(fixture, bodies, signed), rounds)
    per = 1e6 / messages
    text_bytes = sum(len(b.encode()) for b in bodies)
    notes = [
        f"{messages} messages ({text_bytes / messages:.0f} text bytes, "
        f"{sum(map(len, signed)) / messages:.0f} signed bytes on average) to a sealed channel "
        f"of {SEAL_MEMBERS} members",
        f"per message: subject {subject_s * per:.1f} us (seal {seal_s * per:.1f}; build, "
        f"sign and encode {(subject_s - seal_s) * per:.1f}); bare sign {baseline_s * per:.1f} us",
        f"local apply of each message sent (replay-rules check and apply), not in the "
        f"subject: {apply_s * per:.1f} us",
        f"the send path timed between local applies, as a client sends: "
        f"{between_s * per:.1f} us, ratio {between_s / baseline_s:.3f} (caches are cold "
        f"after each apply)",
        f"floor: the crypto a sealed send cannot skip (salt, HKDF, AEAD, event hash, "
        f"signature) and nothing else, in the same loop: ratio {floor_s / baseline_s:.3f}",
    ]
    ratio = subject_s / baseline_s
    return report(Result("seal", subject_s, baseline_s, "s", ratio, "<=", SEAL_GOAL), notes)


def _check_next_events(sender: Community, sent: list[Event]) -> None:
    """Each event the subject built is one the sender could publish next: the successor of
    its head, validly signed, accepted by the replay rules."""
    head = sender.dag.head(sender.identity.public_key)
    if head is None:
        raise AssertionError("the sender has sent nothing yet")
    for ev in sent[:SPOT_CHECKS]:
        if (
            ev.seq != head.seq + 1
            or ev.prev != head.id
            or not crypto.ed25519_verify(ev.author, ev.signable, ev.sig)
            or sender.managed.try_apply(ev) is not None
        ):
            raise AssertionError("the subject did not build the sender's next event")


def _crypto_floor(fixture: _Fixture, bodies: list[str], signed: list[bytes]) -> Callable[[], None]:
    """The crypto a sealed send cannot skip, with no event, record or encoding around it:
    per message 16 random bytes, HKDF-SHA256 (four SHA-256 calls, the salt-independent parts
    joined once), ChaCha20-Poly1305, SHA-256 of the subject's signable and the signature."""
    sha256 = hashlib.sha256
    aead, sign = crypto.aead_encrypt, crypto.ed25519_sign
    key, aad, nonce = os.urandom(32), os.urandom(120), bytes(crypto.AEAD_NONCE_BYTES)
    ipad = bytes(x ^ 0x36 for x in range(256))
    opad = bytes(x ^ 0x5C for x in range(256))
    extract_tail, expand_tail = b"\x36" * 48 + key, b"\x36" * 32 + aad + b"\x01"
    salt_opad, prk_opad = b"\x5c" * 48, b"\x5c" * 32
    secret_key = fixture.owner.secret_key
    items = [(b.encode(), s) for b, s in zip(bodies, signed, strict=True)]

    def run() -> None:
        for plaintext, signable in items:
            salt = os.urandom(16)
            inner = sha256(salt.translate(ipad) + extract_tail).digest()
            prk = sha256(salt.translate(opad) + salt_opad + inner).digest()
            inner = sha256(prk.translate(ipad) + expand_tail).digest()
            one_time = sha256(prk.translate(opad) + prk_opad + inner).digest()
            aead(one_time, nonce, plaintext, aad)
            sha256(signable).digest()
            sign(secret_key, signable)

    return run


def _best_of(run: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def _bare_wraps(recipients: list[bytes], aad: bytes, *, ephemeral: bool) -> Callable[[], None]:
    """Wrap a 32-byte key for each recipient with nothing but X25519 and the AEAD, through
    the same facade and backend as the product (``ephemeral``: a fresh key pair each)."""
    keypair, x25519, aead = crypto.x25519_keypair_from_seed, crypto.x25519, crypto.aead_encrypt
    key, nonce = os.urandom(32), bytes(crypto.AEAD_NONCE_BYTES)
    fixed = os.urandom(32)

    def run() -> None:
        for recipient in recipients:
            private = keypair(os.urandom(32))[1] if ephemeral else fixed
            aead(x25519(private, recipient), nonce, key, aad)

    return run


def rotate(members: int = ROTATE_MEMBERS, rounds: int = ROTATE_ROUNDS) -> Result:
    """Rotating a sealed channel of 1,000 members vs 1,000 bare X25519 + AEAD wraps
    (goal <= 1.5)."""
    fixture = _Fixture(members, "bench/e2ee/rotate")
    due_ms = fixture.epoch_started + PAST_MAX_AGE_MS
    replicas: Iterator[Community] = iter([fixture.owner_replica() for _ in range(rounds + 1)])
    recipients = list(next(replicas).state.member_keys.values())
    kid = os.urandom(16)
    share_aad = encode(
        ["willow/key-share/v1", fixture.server, fixture.channel, kid, fixture.owner.public_key]
    )
    rotations: list[RotateChannelKey] = []
    wire_bytes: list[int] = []

    def subject() -> None:
        community = next(replicas)
        events = community.key_work(due_ms, os.urandom)
        wire_bytes.append(sum(len(ev.wire) for ev in events))
        rotations.extend(ev.payload for ev in events if isinstance(ev.payload, RotateChannelKey))
        if len(events) != 1 or len(rotations[-1].shares) != members:
            raise AssertionError("key work did not rotate the channel for every member")

    ephemeral = _bare_wraps(recipients, share_aad, ephemeral=True)
    subject_s, baseline_s = best_time(subject, ephemeral, rounds)
    dh_only_s = _best_of(_bare_wraps(recipients, share_aad, ephemeral=False), rounds)
    per = 1e6 / members
    notes = [
        f"{members} members; one ROTATE_CHANNEL_KEY of {wire_bytes[-1]:,} wire bytes",
        f"per member: subject {subject_s * per:.1f} us, bare wrap with a fresh ephemeral key "
        f"{baseline_s * per:.1f} us, bare DH + AEAD alone {dh_only_s * per:.1f} us "
        f"(ratio against that {subject_s / dh_only_s:.3f})",
    ]
    ratio = subject_s / baseline_s
    return report(Result("rotate", subject_s, baseline_s, "s", ratio, "<=", ROTATE_GOAL), notes)

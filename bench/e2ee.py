"""Sealed-channel benchmarks (issue 5): what end-to-end encryption adds to sending, and what
rotating a big channel's key costs, each against the crypto it cannot avoid.

* ``seal``: one member sends ``SEAL_MESSAGES`` chat messages to a sealed channel of
  ``SEAL_MEMBERS`` members, exactly as the clients do (``Community.seal``, then
  ``Community.author`` of the ``SealedMessage``, then the event's wire bytes). That is the
  whole send path: find the current epoch, seal the body (HKDF + ChaCha20-Poly1305), choose
  the deps, build and sign the event, check it against the replay rules and apply it locally
  (a client never publishes what it has not applied), encode it. Baseline: a bare Ed25519 sign
  loop over the very bytes the subject signed (``crypto.ed25519_sign``, the same backend).
  Goal <= 1.25.
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
timed; each timed round gets its own copy of the community, so every round does the same work.
Nothing is mocked: entropy is ``os.urandom``, crypto is the product's backend.
"""

from __future__ import annotations

import gc
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
SEAL_MESSAGES = 3_000
SEAL_ROUNDS = 7
SEAL_GOAL = 1.25
#: Re-signed events compared byte for byte with the originals (the breakdown's sanity check).
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


def _send_all(
    community: Community, channel: bytes, bodies: list[str], start_ms: int
) -> list[bytes]:
    """The client's send path for each body; returns the wire bytes published."""
    wires = []
    wall_ms = start_ms
    for body in bodies:
        wall_ms += 1
        key_events, sealed = community.seal(channel, body, "message", wall_ms, os.urandom)
        if key_events:
            raise AssertionError("sending needed key work the fixture should have done")
        wires.append(community.author(SealedMessage(channel, sealed), wall_ms).wire)
    return wires


def seal(messages: int = SEAL_MESSAGES, rounds: int = SEAL_ROUNDS) -> Result:
    """Send path of a sealed message vs a bare Ed25519 sign of the same bytes (goal <= 1.25)."""
    fixture = _Fixture(SEAL_MEMBERS, "bench/e2ee/seal")
    bodies = chat_bodies(messages)
    start_ms = T0 + 10_000
    replicas = iter([fixture.owner_replica() for _ in range(rounds + 1)])
    sent = [decode_event(w) for w in _send_all(next(replicas), fixture.channel, bodies, start_ms)]
    signed = [ev.signable for ev in sent]
    secret_key = fixture.owner.secret_key
    sign = crypto.ed25519_sign

    def subject() -> None:
        _send_all(next(replicas), fixture.channel, bodies, start_ms)

    def baseline() -> None:
        for message in signed:
            sign(secret_key, message)

    subject_s, baseline_s = best_time(subject, baseline, rounds)
    # Where the time goes, each step timed alone on the same inputs: sealing (the epoch, the
    # salt, HKDF, the AEAD), then building, signing and encoding the very same events again
    # (``sign_event`` with the fields the subject chose, and ``wire``); the rest of the subject
    # is choosing deps, the replay-rules check and the local apply in ``Community.author``.
    sealer = fixture.owner_replica()
    seal_s = _best_of(
        lambda: [sealer.seal(fixture.channel, b, "message", start_ms, os.urandom) for b in bodies],
        rounds,
    )
    build_s = _best_of(lambda: [_resign(ev, secret_key).wire for ev in sent], rounds)
    if any(_resign(ev, secret_key).signable != ev.signable for ev in sent[:SPOT_CHECKS]):
        raise AssertionError("re-signing did not rebuild the same events")
    per = 1e6 / messages
    text_bytes = sum(len(b.encode()) for b in bodies)
    rest_s = subject_s - seal_s - build_s
    notes = [
        f"{messages} messages ({text_bytes / messages:.0f} text bytes, "
        f"{sum(map(len, signed)) / messages:.0f} signed bytes on average) to a sealed channel "
        f"of {SEAL_MEMBERS} members",
        f"per message: subject {subject_s * per:.1f} us = seal {seal_s * per:.1f} + build, "
        f"sign and encode {build_s * per:.1f} + deps, check and local apply about "
        f"{rest_s * per:.1f}; bare sign {baseline_s * per:.1f} us",
        f"encrypt + build + sign + encode alone: ratio {(seal_s + build_s) / baseline_s:.3f}",
    ]
    ratio = subject_s / baseline_s
    return report(Result("seal", subject_s, baseline_s, "s", ratio, "<=", SEAL_GOAL), notes)


def _resign(ev: Event, secret_key: bytes) -> Event:
    """``ev`` built and signed again by ``sign_event`` from its own fields."""
    return sign_event(
        secret_key=secret_key,
        author=ev.author,
        server=ev.server,
        seq=ev.seq,
        prev=ev.prev,
        deps=ev.deps,
        ts=ev.ts,
        payload=ev.payload,
    )


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

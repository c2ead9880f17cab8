"""Channel content encryption: wrapping epoch keys for members, sealing, and every way a box
must refuse to open (tampered, moved to another channel/epoch/author/purpose, forged share,
small-order keys)."""

from __future__ import annotations

import pytest

from willow_core.errors import CryptoError
from willow_core.safety import safety_number
from willow_core.sealing import (
    SHARE_BYTES,
    Sealed,
    key_id,
    open_sealed,
    seal,
    unwrap_key,
    wrap_key,
)
from willow_core.testing import identity

SERVER, CHANNEL = b"\x01" * 32, b"\x02" * 32
KEY = bytes(range(32))
BOB = identity("sealing/bob")
ALICE = identity("sealing/alice")


def _share(recipient=BOB, seed: bytes = b"\x09" * 32) -> bytes:  # type: ignore[no-untyped-def]
    return wrap_key(
        KEY,
        server=SERVER,
        channel=CHANNEL,
        recipient=recipient.public_key,
        recipient_x25519=recipient.x25519_public,
        ephemeral_seed=seed,
    )


def _unwrap(share: bytes, recipient=BOB, channel: bytes = CHANNEL) -> bytes:  # type: ignore[no-untyped-def]
    return unwrap_key(
        share,
        server=SERVER,
        channel=channel,
        kid=key_id(KEY),
        recipient=recipient.public_key,
        x25519_private=recipient.x25519_private,
        x25519_public=recipient.x25519_public,
    )


def test_share_round_trip_and_binding() -> None:
    share = _share()
    assert len(share) == SHARE_BYTES
    assert _unwrap(share) == KEY
    with pytest.raises(CryptoError):
        _unwrap(share, recipient=ALICE)  # someone else's share
    with pytest.raises(CryptoError):
        _unwrap(share, channel=b"\x03" * 32)  # moved to another channel
    tampered = share[:40] + bytes([share[40] ^ 1]) + share[41:]
    with pytest.raises(CryptoError):
        _unwrap(tampered)


def test_a_share_of_another_key_under_the_right_id_is_refused() -> None:
    other = wrap_key(
        b"\x07" * 32,
        server=SERVER,
        channel=CHANNEL,
        recipient=BOB.public_key,
        recipient_x25519=BOB.x25519_public,
        ephemeral_seed=b"\x05" * 32,
    )
    with pytest.raises(CryptoError):
        _unwrap(other)  # names KEY's id but carries another key


def test_small_order_recipient_key_is_refused() -> None:
    with pytest.raises(CryptoError):
        wrap_key(
            KEY,
            server=SERVER,
            channel=CHANNEL,
            recipient=BOB.public_key,
            recipient_x25519=bytes(32),
            ephemeral_seed=b"\x09" * 32,
        )


def test_seal_open_and_what_the_aad_binds() -> None:
    kw = {"server": SERVER, "channel": CHANNEL, "author": ALICE.public_key}
    sealed = seal(b"hello", KEY, purpose="message", salt=b"s" * 16, **kw)
    assert sealed.key == key_id(KEY)
    assert b"hello" not in sealed.box
    assert open_sealed(sealed, KEY, purpose="message", **kw) == b"hello"
    for change in (
        {"channel": b"\x03" * 32},
        {"server": b"\x04" * 32},
        {"author": BOB.public_key},
    ):
        with pytest.raises(CryptoError):
            open_sealed(sealed, KEY, purpose="message", **{**kw, **change})
    with pytest.raises(CryptoError):
        open_sealed(sealed, KEY, purpose="thread", **kw)
    with pytest.raises(CryptoError):
        open_sealed(sealed._replace(box=sealed.box[:-1] + b"\x00"), KEY, purpose="message", **kw)
    with pytest.raises(CryptoError):
        open_sealed(Sealed(sealed.key, b"t" * 16, sealed.box), KEY, purpose="message", **kw)
    with pytest.raises(CryptoError):
        open_sealed(sealed, b"\x07" * 32, purpose="message", **kw)


def test_fresh_salts_give_unrelated_boxes() -> None:
    kw = {"server": SERVER, "channel": CHANNEL, "author": ALICE.public_key}
    a = seal(b"same", KEY, purpose="message", salt=b"a" * 16, **kw)
    b = seal(b"same", KEY, purpose="message", salt=b"b" * 16, **kw)
    assert a.box != b.box


def test_golden_values() -> None:
    """Fixed inputs give fixed bytes (a second implementation must match these)."""
    assert key_id(KEY).hex() == "6e3aae8b5be3573fbb33acf1c636f879"
    kw = {"server": SERVER, "channel": CHANNEL, "author": ALICE.public_key}
    sealed = seal(b"golden", KEY, purpose="message", salt=bytes(16), **kw)
    assert sealed.box.hex() == GOLDEN_BOX


def test_safety_numbers_are_symmetric_and_distinct() -> None:
    ab = safety_number(ALICE.public_key, BOB.public_key)
    assert ab == safety_number(BOB.public_key, ALICE.public_key)
    assert len(ab.replace(" ", "")) == 60
    assert ab != safety_number(ALICE.public_key, identity("sealing/carol").public_key)


GOLDEN_BOX = "8ed70283d762f6f8471382f690ab824f381661d4b423"

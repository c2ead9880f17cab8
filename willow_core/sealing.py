"""Channel content encryption (D7): epoch keys, key wrapping for members, sealed content.

Key schedule (docs/protocol.md has the full text and the reasons):

* An **epoch key** ``K`` is 32 random bytes (the shell supplies them). Its **key id** is
  ``SHA-256("willow/channel-key-id/v1" || K)[:16]``: it names the epoch in messages without
  revealing anything, and lets a recipient check that an unwrapped key is the one named.
* **Wrapping** ``K`` for a member ``R`` (Ed25519 key ``P_R``, bound X25519 key ``X_R``): a fresh
  ephemeral X25519 key ``e`` (from 32 random bytes); ``s = X25519(e, X_R)`` (all-zero refused);
  ``w = HKDF-SHA256(ikm=s, salt=e_pub || X_R, info=AAD_wrap, 32)``; the share is
  ``e_pub || ChaCha20-Poly1305(w, nonce=0, K, AAD_wrap)``, where
  ``AAD_wrap = CBOR["willow/key-share/v1", server, channel, key id, P_R]``. ``w`` is used once
  (a fresh ephemeral per share), so the zero nonce never repeats under one key.
* **Sealing** content under ``K``: a 16-byte random salt; ``k = HKDF-SHA256(ikm=K, salt=salt,
  info=AAD, 32)``; ``box = ChaCha20-Poly1305(k, nonce=0, plaintext, AAD)`` with
  ``AAD = CBOR["willow/sealed/v1", purpose, server, channel, key id, author]``. Every sealed
  item has its own one-time key ``k`` (salts are random: a repeat needs 2^64 items under one
  epoch), so no (key, nonce) pair is ever used twice. The AAD binds the community, channel,
  epoch and author: a box moved to another channel, epoch or author fails to open.

Purposes keep the kinds of sealed content apart (a message body cannot be replayed as a thread
title): ``message``, ``edit``, ``thread``, ``file``.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from . import crypto
from .encoding import encode
from .errors import CryptoError

__all__ = [
    "KEY_BYTES",
    "KEY_ID_BYTES",
    "SALT_BYTES",
    "SHARE_BYTES",
    "PURPOSES",
    "Sealed",
    "Sealer",
    "ShareWriter",
    "key_id",
    "wrap_key",
    "unwrap_key",
    "seal",
    "open_sealed",
]

KEY_BYTES = 32
KEY_ID_BYTES = 16
SALT_BYTES = 16
#: ephemeral public key + wrapped key + tag
SHARE_BYTES = 32 + KEY_BYTES + 16
PURPOSES = frozenset({"message", "edit", "thread", "file"})
_ZERO_NONCE = bytes(12)
_KEY_ID_TAG = b"willow/channel-key-id/v1"
_SHARE_TAG = "willow/key-share/v1"
_SEALED_TAG = "willow/sealed/v1"
#: SHA-256's block: HMAC pads (or first hashes) its key to this length.
_HMAC_BLOCK = 64
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_IPAD_BYTE = b"\x36"
#: what follows a 16-byte salt (as a key) and a 32-byte PRK in their outer HMAC key blocks
_SALT_OPAD_TAIL = b"\x5c" * (_HMAC_BLOCK - SALT_BYTES)
_PRK_OPAD_TAIL = b"\x5c" * (_HMAC_BLOCK - 32)
_sha256 = hashlib.sha256
_aead_encrypt = crypto.aead_encrypt
_new = tuple.__new__


class Sealed(NamedTuple):
    """Content sealed under one epoch key: which key, the salt, the box (ciphertext + tag)."""

    key: bytes
    salt: bytes
    box: bytes


def key_id(channel_key: bytes) -> bytes:
    if len(channel_key) != KEY_BYTES:
        raise CryptoError("a channel key is 32 bytes")
    return _sha256(_KEY_ID_TAG + channel_key).digest()[:KEY_ID_BYTES]


def _hmac(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) spelled out over ``hashlib``: for the short keys and messages
    here, two hash calls cost less than setting up an ``hmac`` object."""
    if len(key) > _HMAC_BLOCK:
        key = _sha256(key).digest()
    key = key.ljust(_HMAC_BLOCK, b"\0")
    inner = _sha256(key.translate(_IPAD) + message).digest()
    return _sha256(key.translate(_OPAD) + inner).digest()


def _hkdf32(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) for one 32-byte output block: ``crypto.hkdf_sha256(ikm, salt,
    info, 32)``, byte for byte. Every share and every sealed item derives one such key, so
    this is on the path of each message sent and of each member in a rotation."""
    return _hmac(_hmac(salt or bytes(32), ikm), info + b"\x01")


def _share_aad(server: bytes, channel: bytes, kid: bytes, recipient: bytes) -> bytes:
    return encode([_SHARE_TAG, server, channel, kid, recipient])


class ShareWriter:
    """Wraps one epoch key for many members (a rotation wraps it for every reader): the key
    id and the part of the share AAD common to all recipients are computed once."""

    __slots__ = ("channel_key", "kid", "_aad_head")

    def __init__(self, channel_key: bytes, *, server: bytes, channel: bytes) -> None:
        self.channel_key = channel_key
        self.kid = key_id(channel_key)
        # A canonical array is its head followed by its items' encodings, so the AAD of each
        # share is this prefix plus the encoded recipient.
        self._aad_head = encode([_SHARE_TAG, server, channel, self.kid, b""])[:-1]

    def wrap(self, recipient: bytes, recipient_x25519: bytes, ephemeral_seed: bytes) -> bytes:
        """The share for one member (see the module docstring); ``CryptoError`` for a
        small-order ``recipient_x25519``."""
        e_pub, e_priv = crypto.x25519_keypair_from_seed(ephemeral_seed)
        shared = crypto.x25519(e_priv, recipient_x25519)
        aad = self._aad_head + encode(recipient)
        wrapping = _hkdf32(shared, e_pub + recipient_x25519, aad)
        return e_pub + crypto.aead_encrypt(wrapping, _ZERO_NONCE, self.channel_key, aad)


def wrap_key(
    channel_key: bytes,
    *,
    server: bytes,
    channel: bytes,
    recipient: bytes,
    recipient_x25519: bytes,
    ephemeral_seed: bytes,
) -> bytes:
    """The share of ``channel_key`` for one member (see the module docstring)."""
    writer = ShareWriter(channel_key, server=server, channel=channel)
    return writer.wrap(recipient, recipient_x25519, ephemeral_seed)


def unwrap_key(
    share: bytes,
    *,
    server: bytes,
    channel: bytes,
    kid: bytes,
    recipient: bytes,
    x25519_private: bytes,
    x25519_public: bytes,
) -> bytes:
    """The epoch key in ``share``; raises ``CryptoError`` if it is corrupt or not ``kid``."""
    if len(share) != SHARE_BYTES:
        raise CryptoError("a key share has the wrong length")
    e_pub, boxed = share[:32], share[32:]
    shared = crypto.x25519(x25519_private, e_pub)
    aad = _share_aad(server, channel, kid, recipient)
    wrapping = _hkdf32(shared, e_pub + x25519_public, aad)
    channel_key = crypto.aead_decrypt(wrapping, _ZERO_NONCE, boxed, aad)
    if key_id(channel_key) != kid:
        raise CryptoError("the unwrapped key is not the epoch it claims")
    return channel_key


def _aad(purpose: str, server: bytes, channel: bytes, kid: bytes, author: bytes) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown sealing purpose {purpose!r}")
    return encode([_SEALED_TAG, purpose, server, channel, kid, author])


class Sealer:
    """Seals one author's content of one purpose in one channel under one epoch key. The key
    id and the AAD are the same for every item, so a sender keeps one per epoch and purpose
    and each message costs only its salt's key derivation and the AEAD.

    The derivation is ``_hkdf32(channel_key, salt, aad)`` spelled out over four SHA-256 calls,
    with the parts that do not depend on the salt joined once here: HMAC's key block is the key
    XOR a pad, zero-padded to 64 bytes, so the extract's inner input is the salt XOR ipad, then
    48 ipad bytes and the channel key; the expand's is the 32-byte PRK XOR ipad, then 32 ipad
    bytes, the AAD and the block counter 1.
    """

    __slots__ = ("channel_key", "kid", "aad", "_extract_tail", "_expand_tail")

    def __init__(
        self, channel_key: bytes, *, purpose: str, server: bytes, channel: bytes, author: bytes
    ) -> None:
        self.channel_key = channel_key
        self.kid = key_id(channel_key)
        self.aad = _aad(purpose, server, channel, self.kid, author)
        self._extract_tail = _IPAD_BYTE * (_HMAC_BLOCK - SALT_BYTES) + channel_key
        self._expand_tail = _IPAD_BYTE * (_HMAC_BLOCK - 32) + self.aad + b"\x01"

    def seal(self, plaintext: bytes, salt: bytes) -> Sealed:
        """Seal ``plaintext`` with a fresh 16-byte random ``salt``."""
        if type(salt) is not bytes or len(salt) != SALT_BYTES:
            raise CryptoError("a sealing salt is 16 random bytes")
        sha = _sha256
        inner = sha(salt.translate(_IPAD) + self._extract_tail).digest()
        prk = sha(salt.translate(_OPAD) + _SALT_OPAD_TAIL + inner).digest()
        inner = sha(prk.translate(_IPAD) + self._expand_tail).digest()
        one_time = sha(prk.translate(_OPAD) + _PRK_OPAD_TAIL + inner).digest()
        box = _aead_encrypt(one_time, _ZERO_NONCE, plaintext, self.aad)
        return _new(Sealed, (self.kid, salt, box))


def seal(
    plaintext: bytes,
    channel_key: bytes,
    *,
    purpose: str,
    server: bytes,
    channel: bytes,
    author: bytes,
    salt: bytes,
) -> Sealed:
    """Seal ``plaintext`` for the channel's members under ``channel_key``."""
    if len(salt) != SALT_BYTES:
        raise CryptoError("a sealing salt is 16 random bytes")
    sealer = Sealer(channel_key, purpose=purpose, server=server, channel=channel, author=author)
    return sealer.seal(plaintext, salt)


def open_sealed(
    sealed: Sealed,
    channel_key: bytes,
    *,
    purpose: str,
    server: bytes,
    channel: bytes,
    author: bytes,
) -> bytes:
    """The plaintext; raises ``CryptoError`` if the box was altered, moved or forged."""
    if key_id(channel_key) != sealed.key:
        raise CryptoError("sealed under another epoch key")
    aad = _aad(purpose, server, channel, sealed.key, author)
    one_time = _hkdf32(channel_key, sealed.salt, aad)
    return crypto.aead_decrypt(one_time, _ZERO_NONCE, sealed.box, aad)

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


class Sealed(NamedTuple):
    """Content sealed under one epoch key: which key, the salt, the box (ciphertext + tag)."""

    key: bytes
    salt: bytes
    box: bytes


def key_id(channel_key: bytes) -> bytes:
    if len(channel_key) != KEY_BYTES:
        raise CryptoError("a channel key is 32 bytes")
    return hashlib.sha256(_KEY_ID_TAG + channel_key).digest()[:KEY_ID_BYTES]


def _share_aad(server: bytes, channel: bytes, kid: bytes, recipient: bytes) -> bytes:
    return encode([_SHARE_TAG, server, channel, kid, recipient])


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
    kid = key_id(channel_key)
    e_pub, e_priv = crypto.x25519_keypair_from_seed(ephemeral_seed)
    shared = crypto.x25519(e_priv, recipient_x25519)
    aad = _share_aad(server, channel, kid, recipient)
    wrapping = crypto.hkdf_sha256(shared, e_pub + recipient_x25519, aad, 32)
    return e_pub + crypto.aead_encrypt(wrapping, _ZERO_NONCE, channel_key, aad)


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
    wrapping = crypto.hkdf_sha256(shared, e_pub + x25519_public, aad, 32)
    channel_key = crypto.aead_decrypt(wrapping, _ZERO_NONCE, boxed, aad)
    if key_id(channel_key) != kid:
        raise CryptoError("the unwrapped key is not the epoch it claims")
    return channel_key


def _aad(purpose: str, server: bytes, channel: bytes, kid: bytes, author: bytes) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown sealing purpose {purpose!r}")
    return encode([_SEALED_TAG, purpose, server, channel, kid, author])


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
    kid = key_id(channel_key)
    aad = _aad(purpose, server, channel, kid, author)
    one_time = crypto.hkdf_sha256(channel_key, salt, aad, 32)
    return Sealed(kid, salt, crypto.aead_encrypt(one_time, _ZERO_NONCE, plaintext, aad))


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
    one_time = crypto.hkdf_sha256(channel_key, sealed.salt, aad, 32)
    return crypto.aead_decrypt(one_time, _ZERO_NONCE, sealed.box, aad)

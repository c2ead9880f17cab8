"""The seam between the crypto facade and a libsodium binding (D2).

A backend implements only the raw primitives; the facade (``willow_core.crypto``) does every
length check, the all-zero X25519 check and the hash/HKDF work, so both backends share one set of
rules. The native backend is PyNaCl; the browser registers a libsodium.js backend at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["CryptoBackend"]


class CryptoBackend(Protocol):
    """Raw libsodium primitives. Inputs arrive already length-checked."""

    name: str

    def ed25519_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        """Return ``(public_key, secret_key)``; the secret is libsodium's 64-byte form."""
        ...

    def ed25519_sign(self, secret_key: bytes, message: bytes) -> bytes:
        """Return the 64-byte detached signature."""
        ...

    def ed25519_verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is valid, using libsodium's strict rules."""
        ...

    def ed25519_verify_many(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        """Verify ``(public_key, message, signature)`` triples; one call saves FFI crossings."""
        ...

    def x25519_base(self, private_key: bytes) -> bytes:
        """Return the public key for ``private_key``."""
        ...

    def x25519(self, private_key: bytes, public_key: bytes) -> bytes | None:
        """Return the shared secret, or ``None`` where libsodium refuses (all-zero output)."""
        ...

    def aead_encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """ChaCha20-Poly1305-IETF: ciphertext followed by the 16-byte tag."""
        ...

    def aead_decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
        """Return the plaintext, or ``None`` when authentication fails."""
        ...

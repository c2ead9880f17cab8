"""A person is a key: an Ed25519 identity from a 32-byte seed, with a bound X25519 key.

The X25519 key (for key wrapping and direct messages) is derived from the same seed through a
domain-separated HKDF rather than converted from the Ed25519 key, and bound to the identity by
an Ed25519 signature that anyone can check (``binding``).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import crypto
from .encoding import encode

__all__ = ["Identity", "x25519_binding_message", "verify_x25519_binding"]

_X25519_INFO = b"willow/identity/x25519/v1"
_BINDING_TAG = "willow/x25519-binding/v1"


def x25519_binding_message(public_key: bytes, x25519_public: bytes) -> bytes:
    """What an identity signs to vouch for its X25519 key."""
    return encode([_BINDING_TAG, public_key, x25519_public])


def verify_x25519_binding(public_key: bytes, x25519_public: bytes, signature: bytes) -> bool:
    return crypto.ed25519_verify(
        public_key, x25519_binding_message(public_key, x25519_public), signature
    )


@dataclass(frozen=True, slots=True, repr=False)
class Identity:
    """Secret material for one person. ``repr`` never shows secrets."""

    seed: bytes
    public_key: bytes
    secret_key: bytes
    x25519_public: bytes
    x25519_private: bytes
    binding: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """Derive the whole identity from 32 random bytes (the shell supplies them)."""
        public_key, secret_key = crypto.ed25519_keypair_from_seed(seed)
        x_seed = crypto.hkdf_sha256(seed, b"", _X25519_INFO, 32)
        x_public, x_private = crypto.x25519_keypair_from_seed(x_seed)
        binding = crypto.ed25519_sign(secret_key, x25519_binding_message(public_key, x_public))
        return cls(seed, public_key, secret_key, x_public, x_private, binding)

    def sign(self, message: bytes) -> bytes:
        return crypto.ed25519_sign(self.secret_key, message)

    def __repr__(self) -> str:
        return f"Identity({self.public_key.hex()[:16]}…)"

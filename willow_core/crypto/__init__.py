"""Crypto facade (D2): plain functions over bytes, one rule set, a pluggable libsodium backend.

Every function checks lengths and raises ``CryptoError`` on malformed input, so a backend only
does the primitive. Both backends are libsodium (PyNaCl natively, libsodium.js in the browser),
so signature verdicts and ciphertexts are byte-identical: two verifiers that disagree on one
edge-case signature would split a community in two. Hashes and HMAC use ``hashlib``/``hmac``.
No function here draws randomness: seeds and nonces are passed in by the shells.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from operator import itemgetter

from ..errors import CryptoError
from .backend import CryptoBackend

__all__ = [
    "CryptoBackend",
    "set_backend",
    "get_backend",
    "SEED_BYTES",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "AEAD_KEY_BYTES",
    "AEAD_NONCE_BYTES",
    "AEAD_TAG_BYTES",
    "ed25519_keypair_from_seed",
    "ed25519_sign",
    "ed25519_verify",
    "ed25519_verify_many",
    "x25519_keypair_from_seed",
    "x25519",
    "aead_encrypt",
    "aead_decrypt",
    "hkdf_sha256",
    "hmac_sha256",
    "blake2b",
    "sha256",
]

SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
ED25519_SECRET_BYTES = 64
SIGNATURE_BYTES = 64
AEAD_KEY_BYTES = 32
AEAD_NONCE_BYTES = 12
AEAD_TAG_BYTES = 16
#: RFC 5869: HKDF-SHA256 can expand to at most 255 blocks.
HKDF_MAX_BYTES = 255 * 32

_backend: CryptoBackend | None = None
_first, _third = itemgetter(0), itemgetter(2)
_KEY_LENGTH, _SIGNATURE_LENGTH = {PUBLIC_KEY_BYTES}, {SIGNATURE_BYTES}


def set_backend(backend: CryptoBackend) -> None:
    """Install the backend every facade function uses (the browser calls this at start-up)."""
    global _backend
    _backend = backend


def get_backend() -> CryptoBackend:
    """Return the installed backend, installing the native PyNaCl one on first use."""
    global _backend
    if _backend is None:
        from .nacl_backend import NaclBackend

        _backend = NaclBackend()
    return _backend


def _need(name: str, value: bytes, length: int) -> None:
    if type(value) is not bytes:
        raise CryptoError(f"{name} must be bytes, not {type(value).__name__}")
    if len(value) != length:
        raise CryptoError(f"{name} must be {length} bytes, got {len(value)}")


def ed25519_keypair_from_seed(seed: bytes) -> tuple[bytes, bytes]:
    """Return ``(public_key, secret_key)`` for a 32-byte seed (secret is 64 bytes)."""
    _need("seed", seed, SEED_BYTES)
    return get_backend().ed25519_seed_keypair(seed)


def ed25519_sign(secret_key: bytes, message: bytes) -> bytes:
    """Sign ``message`` with a 64-byte secret key; returns a 64-byte signature."""
    if type(secret_key) is not bytes or len(secret_key) != ED25519_SECRET_BYTES:
        _need("secret_key", secret_key, ED25519_SECRET_BYTES)
    backend = _backend if _backend is not None else get_backend()
    return backend.ed25519_sign(secret_key, bytes(message))


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Return whether ``signature`` over ``message`` is valid for ``public_key``.

    Wrong-length keys or signatures are a malformed input, reported as ``False`` because they
    come from remote data; nothing here raises on a bad signature.
    """
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    return get_backend().ed25519_verify(public_key, message, signature)


def ed25519_verify_many(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """Verify many ``(public_key, message, signature)`` triples in one backend call."""
    if (
        set(map(len, map(_first, items))) <= _KEY_LENGTH
        and set(map(len, map(_third, items))) <= _SIGNATURE_LENGTH
    ):  # all well formed (checked without a Python step per item)
        return list(get_backend().ed25519_verify_many(items))
    well_formed = [
        len(pk) == PUBLIC_KEY_BYTES and len(sig) == SIGNATURE_BYTES for pk, _, sig in items
    ]
    checked = [t for t, ok in zip(items, well_formed, strict=True) if ok]
    verdicts = get_backend().ed25519_verify_many(checked)
    it = iter(verdicts)
    return [next(it) if ok else False for ok in well_formed]


def x25519_keypair_from_seed(seed: bytes) -> tuple[bytes, bytes]:
    """Return ``(public_key, private_key)``; the private key is the seed (clamped on use)."""
    _need("seed", seed, SEED_BYTES)
    return get_backend().x25519_base(seed), seed


def x25519(private_key: bytes, public_key: bytes) -> bytes:
    """Diffie-Hellman; raises ``CryptoError`` on an all-zero result (small-order public key)."""
    _need("private_key", private_key, SEED_BYTES)
    _need("public_key", public_key, PUBLIC_KEY_BYTES)
    shared = get_backend().x25519(private_key, public_key)
    if shared is None or not any(shared):
        raise CryptoError("x25519 produced the all-zero value (small-order public key)")
    return shared


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """ChaCha20-Poly1305-IETF; returns ciphertext followed by the 16-byte tag."""
    if type(key) is not bytes or len(key) != AEAD_KEY_BYTES:
        _need("key", key, AEAD_KEY_BYTES)
    if type(nonce) is not bytes or len(nonce) != AEAD_NONCE_BYTES:
        _need("nonce", nonce, AEAD_NONCE_BYTES)
    backend = _backend if _backend is not None else get_backend()
    return backend.aead_encrypt(key, nonce, bytes(plaintext), bytes(aad))


def aead_decrypt(key: bytes, nonce: bytes, ciphertext_with_tag: bytes, aad: bytes) -> bytes:
    """Open a ChaCha20-Poly1305-IETF box; raises ``CryptoError`` on any failure."""
    _need("key", key, AEAD_KEY_BYTES)
    _need("nonce", nonce, AEAD_NONCE_BYTES)
    if len(ciphertext_with_tag) < AEAD_TAG_BYTES:
        raise CryptoError("ciphertext is shorter than the authentication tag")
    plaintext = get_backend().aead_decrypt(key, nonce, bytes(ciphertext_with_tag), bytes(aad))
    if plaintext is None:
        raise CryptoError("decryption failed: wrong key, nonce, associated data or forged")
    return plaintext


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256."""
    return hmac.new(key, message, hashlib.sha256).digest()


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF with SHA-256; an empty salt means 32 zero bytes, as the RFC says."""
    if not 0 < length <= HKDF_MAX_BYTES:
        raise CryptoError(f"HKDF length must be in 1..{HKDF_MAX_BYTES}")
    prk = hmac_sha256(salt or bytes(32), ikm)
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac_sha256(prk, block + info + bytes([counter]))
        out += block
        counter += 1
    return out[:length]


def blake2b(data: bytes, *, digest_size: int = 32, key: bytes = b"", person: bytes = b"") -> bytes:
    """BLAKE2b (RFC 7693) with optional key and personalization."""
    if not 1 <= digest_size <= 64:
        raise CryptoError("blake2b digest_size must be in 1..64")
    if len(key) > 64 or len(person) > 16:
        raise CryptoError("blake2b key is at most 64 bytes and person at most 16")
    return hashlib.blake2b(data, digest_size=digest_size, key=key, person=person).digest()


def sha256(data: bytes) -> bytes:
    """SHA-256."""
    return hashlib.sha256(data).digest()

"""Native crypto backend: libsodium through PyNaCl's compiled cffi module, called directly.

PyNaCl's Python wrappers cost more than the primitive for the small inputs Willow signs and
seals (argument checks that format messages, a zeroed output allocation per call, a copy of the
whole signed message back out): ``nacl.bindings`` is still imported, for the libsodium
initialisation it does, but every call goes to the C function itself, with output written into
a pooled scratch buffer and only the result copied out.

Every method checks the lengths of its fixed-size inputs, as the C functions read them without
any: a wrong length is a ``CryptoError``, never a read past the end of a buffer. Failures
libsodium reports are ``CryptoError`` too, except where the protocol wants a value (a bad
signature is ``False``, a failed decryption or an all-zero X25519 output ``None``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import nacl.bindings  # noqa: F401  (initialises libsodium: sodium_init picks the fastest code)
from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib

from ..errors import CryptoError

__all__ = ["NaclBackend"]


class _Buffer(Protocol):
    """What ``ffi.buffer`` returns, as used here: slicing copies bytes out."""

    def __getitem__(self, index: slice) -> bytes: ...


_NULL: object = _ffi.NULL
_buffer: Callable[[object, int], _Buffer] = _ffi.buffer
#: Output buffers are written before they are read: no need to zero them first.
_alloc: Callable[[str, int], object] = _ffi.new_allocator(should_clear_after_alloc=False)
#: The C functions (each returns libsodium's status: 0 for success).
_sign: Callable[..., int] = _lib.crypto_sign
_sign_open: Callable[..., int] = _lib.crypto_sign_open
_seed_keypair: Callable[..., int] = _lib.crypto_sign_seed_keypair
_scalarmult: Callable[..., int] = _lib.crypto_scalarmult
_scalarmult_base: Callable[..., int] = _lib.crypto_scalarmult_base
_aead_encrypt: Callable[..., int] = _lib.crypto_aead_chacha20poly1305_ietf_encrypt
_aead_decrypt: Callable[..., int] = _lib.crypto_aead_chacha20poly1305_ietf_decrypt
#: Outputs up to this size are written to a pooled scratch buffer; larger ones (big file
#: chunks) get a buffer of their own, dropped after the call.
SCRATCH_BYTES = 65_536
_SIG = 64
_TAG = 16


#: Idle scratch buffers of ``SCRATCH_BYTES``. A call takes one and puts it back once its
#: output is copied out: cffi releases the GIL during the C call, so two threads must never
#: share one. ``list.pop`` and ``append`` are atomic, so no lock is needed; the pool holds at
#: most one buffer per thread that ever signed or sealed at the same time as another.
_pool: list[object] = []


def _take(size: int) -> object:
    if size <= SCRATCH_BYTES:
        try:
            return _pool.pop()
        except IndexError:
            return _alloc("unsigned char[]", SCRATCH_BYTES)
    return _alloc("unsigned char[]", size)


def _give(out: object) -> None:
    if len(out) == SCRATCH_BYTES:  # type: ignore[arg-type]  # a cffi array has a length
        _pool.append(out)


def _offset(out: object, at: int) -> object:
    at_offset: Any = out
    return at_offset + at  # a pointer ``at`` bytes into a cffi array


def _need(value: bytes, length: int, what: str) -> None:
    if type(value) is not bytes or len(value) != length:
        raise CryptoError(f"{what} must be {length} bytes")


class NaclBackend:
    """libsodium via PyNaCl's cffi module. One instance serves the whole process."""

    name = "pynacl"

    def ed25519_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        _need(seed, 32, "an Ed25519 seed")
        out = _alloc("unsigned char[]", 96)
        if _seed_keypair(out, _offset(out, 32), seed) != 0:
            raise CryptoError("libsodium could not derive the key pair")
        pair = _buffer(out, 96)[:]
        return pair[:32], pair[32:]

    def ed25519_sign(self, secret_key: bytes, message: bytes) -> bytes:
        if type(secret_key) is not bytes or len(secret_key) != 64:
            raise CryptoError("an Ed25519 secret key is 64 bytes")
        size = len(message)
        # crypto_sign writes signature || message; only the signature is read back.
        out = _take(size + _SIG)
        try:
            if _sign(out, _NULL, message, size, secret_key) != 0:
                raise CryptoError("libsodium could not sign")
            return _buffer(out, _SIG)[:]
        finally:
            _give(out)

    def ed25519_verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if (
            type(public_key) is not bytes
            or len(public_key) != 32
            or type(signature) is not bytes
            or len(signature) != _SIG
        ):
            return False
        signed = signature + message
        size = len(signed)
        out = _take(size)
        try:
            return _sign_open(out, _NULL, signed, size, public_key) == 0
        finally:
            _give(out)

    def ed25519_verify_many(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        verify = self.ed25519_verify
        return [verify(pk, msg, sig) for pk, msg, sig in items]

    def x25519_base(self, private_key: bytes) -> bytes:
        _need(private_key, 32, "an X25519 private key")
        out = _alloc("unsigned char[]", 32)
        if _scalarmult_base(out, private_key) != 0:
            raise CryptoError("libsodium refused the X25519 private key")
        return _buffer(out, 32)[:]

    def x25519(self, private_key: bytes, public_key: bytes) -> bytes | None:
        _need(private_key, 32, "an X25519 private key")
        _need(public_key, 32, "an X25519 public key")
        out = _alloc("unsigned char[]", 32)
        if _scalarmult(out, private_key, public_key) != 0:
            return None  # libsodium refuses an all-zero output (a small-order point)
        return _buffer(out, 32)[:]

    def aead_encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        if type(key) is not bytes or len(key) != 32:
            raise CryptoError("a ChaCha20-Poly1305 key is 32 bytes")
        if type(nonce) is not bytes or len(nonce) != 12:
            raise CryptoError("a ChaCha20-Poly1305-IETF nonce is 12 bytes")
        size = len(plaintext)
        out = _take(size + _TAG)
        try:
            if _aead_encrypt(out, _NULL, plaintext, size, aad, len(aad), _NULL, nonce, key) != 0:
                raise CryptoError("libsodium could not encrypt")
            return _buffer(out, size + _TAG)[:]
        finally:
            _give(out)

    def aead_decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
        _need(key, 32, "a ChaCha20-Poly1305 key")
        _need(nonce, 12, "a ChaCha20-Poly1305-IETF nonce")
        size = len(ciphertext) - _TAG
        if size < 0:
            return None
        out = _take(size)
        try:
            if _aead_decrypt(out, _NULL, _NULL, ciphertext, size + _TAG, aad, len(aad), nonce, key):
                return None
            return _buffer(out, size)[:]
        finally:
            _give(out)

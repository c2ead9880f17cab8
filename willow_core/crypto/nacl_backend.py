"""Native crypto backend: libsodium through PyNaCl's low-level bindings."""

from __future__ import annotations

from collections.abc import Sequence

from nacl import bindings as _sodium
from nacl import exceptions as _nacl_errors

__all__ = ["NaclBackend"]


class NaclBackend:
    """libsodium via PyNaCl. Stateless; one instance serves the whole process."""

    name = "pynacl"

    def ed25519_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        public_key, secret_key = _sodium.crypto_sign_seed_keypair(seed)
        return bytes(public_key), bytes(secret_key)

    def ed25519_sign(self, secret_key: bytes, message: bytes) -> bytes:
        return bytes(_sodium.crypto_sign(message, secret_key)[:64])

    def ed25519_verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        try:
            _sodium.crypto_sign_open(signature + message, public_key)
        except _nacl_errors.BadSignatureError:
            return False
        except (_nacl_errors.ValueError, _nacl_errors.TypeError):
            return False
        return True

    def ed25519_verify_many(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        return [self.ed25519_verify(pk, msg, sig) for pk, msg, sig in items]

    def x25519_base(self, private_key: bytes) -> bytes:
        return bytes(_sodium.crypto_scalarmult_base(private_key))

    def x25519(self, private_key: bytes, public_key: bytes) -> bytes | None:
        try:
            return bytes(_sodium.crypto_scalarmult(private_key, public_key))
        except _nacl_errors.RuntimeError:
            # libsodium returns -1 when the output is all zeros (small-order point).
            return None

    def aead_encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return bytes(_sodium.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key))

    def aead_decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
        try:
            return bytes(
                _sodium.crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, key)
            )
        except _nacl_errors.CryptoError:
            return None

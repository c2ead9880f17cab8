"""The browser crypto backend (D2): libsodium.js (libsodium-wrappers-sumo) through Pyodide's FFI.

Both backends are libsodium, so verdicts and ciphertexts match PyNaCl byte for byte (the browser
tests run the whole vector suite in both and compare every verdict). Each FFI crossing costs
about 10 us per converted buffer, which dominates small calls, so signature verification, the
hot path of ingest, crosses once per batch: the triples are packed into one buffer, copied into
libsodium's wasm heap in one go, and a small JS loop calls the very C function the wrapper's
``crypto_sign_verify_detached`` calls (``_crypto_sign_verify_detached``) on pointers into it.

The module imports in CPython (for type checking and tests of the packing); ``pyodide`` is
imported only when a backend is constructed, inside the worker.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

__all__ = ["SodiumBackend", "pack_verify_batch", "VERIFY_BATCH_JS"]

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
#: Message lengths travel as little-endian u32: libsodium takes the length as a 64-bit value
#: split in two 32-bit halves, and no event or envelope comes near 4 GiB (frames are capped).
LENGTH_BYTES = 4
_LENGTH = struct.Struct("<I")
MAX_MESSAGE_BYTES = 2**32 - 1

#: Verifies a packed batch in JS. Layout per item: public key (32) | signature (64) | message
#: length (u32 LE) | message. Returns one byte per item: 1 valid, 0 invalid. The heap view is
#: re-read after malloc because growing wasm memory replaces the buffer.
VERIFY_BATCH_JS = """
(function (sodium) {
  const lib = sodium.libsodium;
  return function verifyBatch(batch, count) {
    const out = new Uint8Array(count);
    if (count === 0) return out;
    const base = lib._malloc(batch.length);
    if (base === 0) throw new Error("libsodium malloc failed");
    try {
      lib.HEAPU8.set(batch, base);
      const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
      let offset = 0;
      for (let i = 0; i < count; i++) {
        const pk = base + offset;
        const sig = pk + 32;
        const length = view.getUint32(offset + 96, true);
        const msg = sig + 64 + 4;
        out[i] = lib._crypto_sign_verify_detached(sig, msg, length, 0, pk) === 0 ? 1 : 0;
        offset += 100 + length;
      }
      if (offset !== batch.length) throw new Error("malformed verify batch");
    } finally {
      lib._free(base);
    }
    return out;
  };
})
"""


def pack_verify_batch(items: Sequence[tuple[bytes, bytes, bytes]]) -> bytes:
    """Pack ``(public_key, message, signature)`` triples in VERIFY_BATCH_JS's layout."""
    parts: list[bytes] = []
    for public_key, message, signature in items:
        if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
            raise ValueError("public key or signature of the wrong length")
        if len(message) > MAX_MESSAGE_BYTES:
            raise ValueError("message too long for one verification")
        parts += (public_key, signature, _LENGTH.pack(len(message)), message)
    return b"".join(parts)


class SodiumBackend:
    """libsodium.js, already ``await sodium.ready``-ed, as a ``CryptoBackend``."""

    name = "libsodium.js"

    def __init__(self, sodium_js: Any) -> None:
        from pyodide.code import run_js
        from pyodide.ffi import JsException, to_js

        self._sodium = sodium_js
        self._to_js = to_js
        self._js_error: type[Exception] = JsException
        self._verify_batch = run_js(VERIFY_BATCH_JS)(sodium_js)

    def _js(self, data: bytes) -> Any:
        return self._to_js(data)

    def ed25519_seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        pair = self._sodium.crypto_sign_seed_keypair(self._js(seed))
        return bytes(pair.publicKey.to_bytes()), bytes(pair.privateKey.to_bytes())

    def ed25519_sign(self, secret_key: bytes, message: bytes) -> bytes:
        signature = self._sodium.crypto_sign_detached(self._js(message), self._js(secret_key))
        return bytes(signature.to_bytes())

    def ed25519_verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return self.ed25519_verify_many([(public_key, message, signature)])[0]

    def ed25519_verify_many(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        if not items:
            return []
        verdicts = self._verify_batch(self._js(pack_verify_batch(items)), len(items))
        return [b == 1 for b in verdicts.to_bytes()]

    def x25519_base(self, private_key: bytes) -> bytes:
        return bytes(self._sodium.crypto_scalarmult_base(self._js(private_key)).to_bytes())

    def x25519(self, private_key: bytes, public_key: bytes) -> bytes | None:
        try:
            shared = self._sodium.crypto_scalarmult(self._js(private_key), self._js(public_key))
        except self._js_error:
            # libsodium returns -1 (the wrapper throws) when the output is all zeros.
            return None
        return bytes(shared.to_bytes())

    def aead_encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        box = self._sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
            self._js(plaintext), self._js(aad), None, self._js(nonce), self._js(key)
        )
        return bytes(box.to_bytes())

    def aead_decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
        try:
            plain = self._sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
                None, self._js(ciphertext), self._js(aad), self._js(nonce), self._js(key)
            )
        except self._js_error:
            return None
        return bytes(plain.to_bytes())

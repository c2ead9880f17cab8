"""Safety numbers: what two members compare (aloud, or side by side) to verify each other's keys.

Each key gets a 30-digit fingerprint: SHA-512 iterated ``ITERATIONS`` times over a version tag
and the key (the iteration makes finding a second key with the same digits expensive), its first
30 bytes read as six 5-byte numbers, each reduced mod 100000 to 5 digits. A pair's safety
number is the two fingerprints in key order, so both sides see the same 60 digits (12 groups of
5). The X25519 key used for channel keys is bound to the Ed25519 identity by signature, so
comparing identity keys covers both.
"""

from __future__ import annotations

import hashlib

__all__ = ["ITERATIONS", "fingerprint", "safety_number"]

ITERATIONS = 5200
_TAG = b"willow/safety-number/v1"


def fingerprint(public_key: bytes) -> str:
    digest = _TAG + public_key
    for _ in range(ITERATIONS):
        digest = hashlib.sha512(digest + public_key).digest()
    return "".join(
        f"{int.from_bytes(digest[i : i + 5], 'big') % 100_000:05d}" for i in range(0, 30, 5)
    )


def safety_number(a: bytes, b: bytes) -> str:
    """The 60 digits both ``a`` and ``b`` see, grouped by fives."""
    first, second = sorted((a, b))
    digits = fingerprint(first) + fingerprint(second)
    return " ".join(digits[i : i + 5] for i in range(0, 60, 5))

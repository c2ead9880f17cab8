"""Deterministic helpers for tests and benchmarks: seeded identities and byte streams.

No ``random`` module and no clock: every value is derived by hashing a label, so a failing
test reproduces exactly and the core stays free of hidden entropy.
"""

from __future__ import annotations

import hashlib

from .identity import Identity

__all__ = ["seed_bytes", "identity", "ByteStream"]


def seed_bytes(label: str, n: int = 32) -> bytes:
    """``n`` bytes determined by ``label``."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


def identity(label: str) -> Identity:
    """A reproducible identity named by ``label``."""
    return Identity.from_seed(seed_bytes(f"identity/{label}"))


class ByteStream:
    """A deterministic source of random-looking bytes (a stand-in for ``os.urandom``)."""

    __slots__ = ("_label", "_counter")

    def __init__(self, label: str) -> None:
        self._label = label
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        self._counter += 1
        return seed_bytes(f"{self._label}/{self._counter}", n)

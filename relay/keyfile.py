"""The relay's own identity: an Ed25519 seed in a file of the data directory.

The relay's key proves only that you are talking to the same relay as before (it signs the
HELLO challenge context and the capability document). It is not a community key and carries no
authority. The seed is 32 bytes from ``os.urandom``, created once with mode 0600 in a directory
created with mode 0700; it is never logged or served.
"""

from __future__ import annotations

import os
from pathlib import Path

from willow_core.identity import Identity

__all__ = ["SEED_FILE", "KeyFileError", "load_or_create_identity"]

SEED_FILE = "relay.seed"
_SEED_BYTES = 32


class KeyFileError(Exception):
    """The seed file exists but is not a 32-byte seed."""


def load_or_create_identity(data_dir: str | os.PathLike[str]) -> Identity:
    """Read the relay's seed from ``data_dir``, creating it (atomically) on first start."""
    directory = Path(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / SEED_FILE
    if not path.exists():
        _create(directory, path)
    seed = path.read_bytes()
    if len(seed) != _SEED_BYTES:
        raise KeyFileError(f"{path} holds {len(seed)} bytes, not a {_SEED_BYTES}-byte seed")
    return Identity.from_seed(seed)


def _create(directory: Path, path: Path) -> None:
    """Write a fresh seed to a temporary file, then link it into place: a crash leaves either
    no seed file or a whole one, and of two relays starting at once exactly one seed wins."""
    temporary = directory / f".{SEED_FILE}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, os.urandom(_SEED_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process created it first; use theirs
    finally:
        os.unlink(temporary)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

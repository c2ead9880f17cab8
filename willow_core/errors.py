"""The one exception tree of willow_core: whose fault it was, with structured fields.

    WillowError
    ├── LocalError              the caller misused the API (built an invalid event, bad argument)
    │   └── NotPermitted        a local action the current state refuses (no seq is consumed)
    ├── RemoteError             bytes or events from elsewhere are invalid; they never enter the DAG
    │   ├── DecodeError         not canonical CBOR, over a size cap, wrong shape or type
    │   └── InsertError         a well-formed event that breaks a DAG rule (see ``reason``)
    └── CryptoError             wrong key/nonce lengths, failed decryption, all-zero X25519 output

Rejections by the replay rules (permission denied, caps, used-up invite) are *values*
(``willow_core.results.Rejected``), never exceptions: they must replay identically everywhere.
"""

from __future__ import annotations

__all__ = [
    "WillowError",
    "LocalError",
    "NotPermitted",
    "RemoteError",
    "DecodeError",
    "InsertError",
    "CryptoError",
]


class WillowError(Exception):
    """Root of every error raised by willow_core."""


class LocalError(WillowError):
    """The caller did something the API does not allow."""


class NotPermitted(LocalError):
    """A locally authored event would be rejected by replay, so it was never signed.

    ``reason`` is the ``RejectReason`` the replay rules gave.
    """

    def __init__(self, reason: object) -> None:
        super().__init__(f"not permitted: {reason}")
        self.reason = reason


class RemoteError(WillowError):
    """Data that came from another party is invalid."""


class DecodeError(RemoteError):
    """Input is not a valid canonical encoding of the expected shape."""


class InsertError(RemoteError):
    """A decoded, signed event violates a DAG insert rule.

    ``reason`` is a short stable code (for example ``"bad-signature"``, ``"wrong-server"``)
    that tests and logs match on; ``detail`` is free text for humans.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class CryptoError(WillowError):
    """A cryptographic operation failed or was given malformed key material."""

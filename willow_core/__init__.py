"""willow_core: everything that must behave identically in CPython and in Pyodide.

Pure: no sockets, files, clock or randomness of its own; shells pass time and random bytes in.
Start with ``client.Community`` (author and receive events), ``managed.ManagedDag`` (the
incremental replay engine), ``kinds`` (what events say) and ``apply`` (the replay rules).
"""

from __future__ import annotations

from .client import Community
from .dag import EventDag
from .errors import (
    CryptoError,
    DecodeError,
    InsertError,
    LocalError,
    NotPermitted,
    RemoteError,
    WillowError,
)
from .event import Event, decode_event, sign_event, verify_event
from .hlc import HybridClock
from .identity import Identity
from .invite import InviteLink
from .kinds import Kind
from .managed import ManagedDag, Receipt
from .materialize import materialize
from .permissions import Permission
from .results import RejectReason
from .state import ServerState, state_hash

__all__ = [
    "Community",
    "EventDag",
    "ManagedDag",
    "Receipt",
    "Event",
    "decode_event",
    "sign_event",
    "verify_event",
    "HybridClock",
    "Identity",
    "InviteLink",
    "Kind",
    "Permission",
    "RejectReason",
    "ServerState",
    "state_hash",
    "materialize",
    "WillowError",
    "LocalError",
    "NotPermitted",
    "RemoteError",
    "DecodeError",
    "InsertError",
    "CryptoError",
]

"""Replay outcomes as values: an event either applies or is rejected for a stable reason.

A rejected event stays in the DAG and syncs like any other (so every peer reaches the same
verdict); it just has no effect. Reasons are wire-stable integers because they feed the state
hash and the UI ("invite used up", "not a member").
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["RejectReason"]


class RejectReason(IntEnum):
    NOT_MEMBER = 1
    NOT_ADMIN = 2
    MISSING_PERMISSION = 3
    NOT_AUTHOR = 4
    UNKNOWN_CHANNEL = 5
    UNKNOWN_MESSAGE = 6
    UNKNOWN_ROLE = 7
    UNKNOWN_THREAD = 8
    UNKNOWN_PROPOSAL = 9
    UNKNOWN_INVITE = 10
    UNKNOWN_EMOJI = 11
    UNKNOWN_MEMBER = 12
    CAP_EXCEEDED = 13
    LAST_ADMIN = 14
    BANNED = 15
    ALREADY_MEMBER = 16
    INVITE_REVOKED = 17
    INVITE_USED_UP = 18
    INVITE_EXPIRED = 19
    BAD_INVITE_PROOF = 20
    EQUIVOCATION = 21
    ESCALATION = 22
    INVALID_TARGET = 23
    DUPLICATE_NAME = 24
    #: sealed content, or a key, for a channel that is not end-to-end encrypted
    NOT_SEALED = 25
    #: plaintext content for an end-to-end encrypted channel
    SEALED_CHANNEL = 26
    #: sealed content naming a key epoch its channel does not have (yet)
    UNKNOWN_KEY = 27

"""Invites: a key pair whose public half goes into a CreateInvite event and whose secret half
travels in the invite link. Holding the link lets you sign a Join for your own key; replay
enforces revocation, max uses and expiry.

Link format: ``willow:join:`` + lowercase base32 (no padding) of the canonical CBOR array
``["willow/invite/v1", server_id, invite_id, invite_seed, [relay urls...]]``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from . import crypto
from .dag import join_proof_message
from .encoding import decode, encode
from .errors import DecodeError

__all__ = ["InviteLink", "invite_key", "sign_join", "LINK_PREFIX", "MAX_LINK_CHARS"]

LINK_PREFIX = "willow:join:"
_LINK_TAG = "willow/invite/v1"
#: A link is pasted by people; anything longer is not one of ours.
MAX_LINK_CHARS = 2048
MAX_RELAY_HINTS = 4
MAX_RELAY_URL_CHARS = 200
#: The prefix, in any case, with line breaks or spaces anywhere inside it (pasted text wraps).
_PREFIX = re.compile(r"\s*".join(map(re.escape, LINK_PREFIX)), re.IGNORECASE)
_BODY = re.compile(r"[A-Za-z2-7\s]*")


def invite_key(seed: bytes) -> tuple[bytes, bytes]:
    """``(public_key, secret_key)`` of an invite from its 32-byte seed."""
    return crypto.ed25519_keypair_from_seed(seed)


def sign_join(seed: bytes, server: bytes, invite: bytes, joiner: bytes) -> bytes:
    """The Join proof: the invite key's signature over the joiner's public key."""
    _, secret = invite_key(seed)
    return crypto.ed25519_sign(secret, join_proof_message(server, invite, joiner))


@dataclass(frozen=True, slots=True)
class InviteLink:
    server: bytes
    invite: bytes
    seed: bytes
    relays: tuple[str, ...] = ()

    def encode(self) -> str:
        raw = encode([_LINK_TAG, self.server, self.invite, self.seed, list(self.relays)])
        return LINK_PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()

    @classmethod
    def parse(cls, text: str) -> InviteLink:
        """Parse a pasted link: any case, line breaks inside it, text before it; the link ends
        at the first character that is neither base32 nor whitespace (``>``, ``?``, ``,``...)."""
        if len(text) > 4 * MAX_LINK_CHARS:
            raise DecodeError("invite link too long")
        found = _PREFIX.search(text)
        if found is None:
            raise DecodeError("not a willow invite link")
        run = _BODY.match(text, found.end())
        body = "".join(run.group(0).split()).upper() if run else ""
        if len(LINK_PREFIX) + len(body) > MAX_LINK_CHARS:
            raise DecodeError("invite link too long")
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
        except ValueError:
            raise DecodeError("invite link is not base32") from None
        value = decode(raw, max_bytes=MAX_LINK_CHARS)
        if (
            type(value) is not list
            or len(value) != 5
            or value[0] != _LINK_TAG
            or not all(type(v) is bytes and len(v) == 32 for v in value[1:4])
            or type(value[4]) is not list
            or len(value[4]) > MAX_RELAY_HINTS
            or not all(type(u) is str and len(u) <= MAX_RELAY_URL_CHARS for u in value[4])
        ):
            raise DecodeError("malformed invite link")
        return cls(value[1], value[2], value[3], tuple(value[4]))

"""Write ``tests/vectors/events.json``: golden signed events for the wire format (D1, D3).

Run ``.venv/bin/python tests/vectors/make_event_vectors.py`` to regenerate. The output is fully
deterministic: identities and the invite key come from ``willow_core.testing`` (hashes of
labels), timestamps are fixed, and Ed25519 signatures are deterministic. The events form one
small valid history (every one passes the DAG insert rules in order):

    genesis -> create_channel -> create_invite -> message        (owner, seq 1..4)
    join (depends on the invite) -> reply (replies to the message) -> update_profile (mira, 1..3)
    set_channel_overwrite (depends on mira's profile) -> propose_kick_ban -> vote (owner, 5..7)

``tests/core/test_event_vectors.py`` checks the file against the live code, and checks that
this script still produces it byte for byte.
"""

from __future__ import annotations

import json
import sys
from enum import IntEnum
from pathlib import Path
from typing import Any, NamedTuple

# willow_core from this checkout, however this file was started (the package is not installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from willow_core.event import ZERO_ID, Event, sign_event
from willow_core.identity import Identity
from willow_core.invite import invite_key, sign_join
from willow_core.kinds import (
    ChannelKind,
    CreateChannel,
    CreateInvite,
    CreateServer,
    Ephemeral,
    EphemeralKind,
    Join,
    KickMember,
    Message,
    OverwriteTarget,
    Payload,
    ProfileDelta,
    Propose,
    SetChannelOverwrite,
    UpdateProfile,
    Vote,
)
from willow_core.permissions import Permission
from willow_core.testing import identity, seed_bytes

__all__ = [
    "OUTPUT",
    "SIGNERS",
    "INVITE_SEED_LABEL",
    "build_events",
    "build_vectors",
    "render",
    "dumps",
]

OUTPUT = Path(__file__).resolve().parent / "events.json"
#: Vector signers: label for ``willow_core.testing.identity``.
SIGNERS = {"owner": "vectors/owner", "mira": "vectors/mira"}
INVITE_SEED_LABEL = "vectors/invite"
#: 2025-10-09T08:53:20Z; each event is one second after the previous one.
T0 = 1_760_000_000_000


class Signed(NamedTuple):
    name: str
    signer: str
    event: Event


class _History:
    def __init__(self) -> None:
        self.people: dict[str, Identity] = {who: identity(label) for who, label in SIGNERS.items()}
        self.heads: dict[str, Event] = {}
        self.server: bytes | None = None
        self.out: list[Signed] = []

    def emit(self, name: str, who: str, payload: Payload, deps: tuple[bytes, ...] = ()) -> Event:
        person = self.people[who]
        head = self.heads.get(who)
        event = sign_event(
            secret_key=person.secret_key,
            author=person.public_key,
            server=self.server,
            seq=1 if head is None else head.seq + 1,
            prev=ZERO_ID if head is None else head.id,
            deps=deps,
            ts=T0 + 1000 * len(self.out),
            payload=payload,
        )
        if self.server is None:
            self.server = event.id
        self.heads[who] = event
        self.out.append(Signed(name, who, event))
        return event


def build_events() -> list[Signed]:
    """The vector events, in an order where each one's parents come first."""
    h = _History()
    owner, mira = h.people["owner"], h.people["mira"]
    genesis = h.emit("genesis", "owner", CreateServer("Willow Vectors"))
    channel = h.emit(
        "create_channel",
        "owner",
        CreateChannel(
            "scratch",
            ChannelKind.TEXT,
            "Short-lived notes; idles out after a day",
            Ephemeral(EphemeralKind.CHANNEL, 86_400_000),
        ),
    )
    invite_public, _ = invite_key(seed_bytes(INVITE_SEED_LABEL))
    invite = h.emit("create_invite", "owner", CreateInvite(invite_public, 5, T0 + 7 * 86_400_000))
    message = h.emit("message", "owner", Message(channel.id, "Welcome to the scratch channel!"))
    proof = sign_join(seed_bytes(INVITE_SEED_LABEL), genesis.id, invite.id, mira.public_key)
    h.emit("join", "mira", Join(invite.id, proof), deps=(invite.id,))
    h.emit(
        "message_reply",
        "mira",
        Message(channel.id, "Thanks! Glad to be here \N{SEEDLING}", None, message.id),
        deps=(message.id,),
    )
    profile = h.emit(
        "update_profile",
        "mira",
        UpdateProfile(
            ProfileDelta(
                display_name=("Mira",),
                pronouns=("she/her",),
                bio=(None,),
                crest_color=(0x3366CC,),
            )
        ),
    )
    h.emit(
        "set_channel_overwrite",
        "owner",
        SetChannelOverwrite(
            channel.id,
            OverwriteTarget.MEMBER,
            mira.public_key,
            frozenset({Permission.SEND_MESSAGES, Permission.ATTACH_FILES}),
            frozenset({Permission.ADD_REACTIONS}),
        ),
        deps=(profile.id,),
    )
    proposal = h.emit("propose_kick_ban", "owner", Propose(KickMember(mira.public_key, True)))
    h.emit("vote", "owner", Vote(proposal.id, True))
    assert owner.public_key == genesis.author
    return h.out


def render(value: Any) -> Any:
    """A JSON rendering of a payload value: records are objects with ``@type`` and their
    fields in order, bytes are lowercase hex, enums are their wire integers, sets are
    ascending arrays, tuples are arrays."""
    if isinstance(value, IntEnum):
        return int(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        out: dict[str, Any] = {"@type": type(value).__name__}
        for field in value._fields:
            out[field] = render(getattr(value, field))
        return out
    if isinstance(value, tuple | list):
        return [render(v) for v in value]
    if isinstance(value, frozenset):
        return sorted(render(v) for v in value)
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"cannot render {type(value).__name__}")


def build_vectors() -> dict[str, Any]:
    vectors = []
    for name, who, ev in build_events():
        vectors.append(
            {
                "name": name,
                "signer": SIGNERS[who],
                "kind": int(ev.kind),
                "kind_name": ev.kind.name,
                "server_hex": None if ev.server is None else ev.server.hex(),
                "author_hex": ev.author.hex(),
                "seq": ev.seq,
                "prev_hex": ev.prev.hex(),
                "deps_hex": [d.hex() for d in ev.deps],
                "ts": ev.ts,
                "payload": render(ev.payload),
                "signable_hex": ev.signable.hex(),
                "id_hex": ev.id.hex(),
                "sig_hex": ev.sig.hex(),
                "wire_hex": ev.wire.hex(),
            }
        )
    return {
        "_about": (
            "Golden Willow events (docs/protocol.md). wire = canonical CBOR "
            "[bstr signable, bstr(64) Ed25519 signature over signable]; id = SHA-256(signable). "
            "Signers are willow_core.testing.identity(signer); the invite seed is "
            f"willow_core.testing.seed_bytes({INVITE_SEED_LABEL!r}). "
            "Regenerate with: python tests/vectors/make_event_vectors.py"
        ),
        "vectors": vectors,
    }


def dumps(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    OUTPUT.write_text(dumps(build_vectors()), encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()

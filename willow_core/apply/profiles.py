"""Community name and description (admins) and member profiles (each member's own)."""

from __future__ import annotations

from ..event import Event
from ..journal import Journal
from ..kinds import RenameServer, SetProfile, SetServerDescription, UpdateProfile
from ..state import Profile, ServerState
from ._common import Outcome

__all__ = [
    "apply_rename_server",
    "apply_set_description",
    "apply_set_profile",
    "apply_update_profile",
]

_PROFILE_FIELDS = ("display_name", "pronouns", "bio", "tagline", "crest_color", "avatar")


def apply_rename_server(state: ServerState, ev: Event, p: RenameServer, j: Journal) -> Outcome:
    j.attr(state, "name", p.name)
    return None


def apply_set_description(
    state: ServerState, ev: Event, p: SetServerDescription, j: Journal
) -> Outcome:
    j.attr(state, "description", p.description)
    return None


def _profile(state: ServerState, peer: bytes, j: Journal) -> Profile:
    profile = state.profiles.get(peer)
    if profile is None:
        profile = Profile()
        j.set(state.profiles, peer, profile)
    return profile


def apply_set_profile(state: ServerState, ev: Event, p: SetProfile, j: Journal) -> Outcome:
    j.attr(_profile(state, ev.author, j), "display_name", p.display_name)
    return None


def apply_update_profile(state: ServerState, ev: Event, p: UpdateProfile, j: Journal) -> Outcome:
    profile = _profile(state, ev.author, j)
    for name in _PROFILE_FIELDS:
        change = getattr(p.delta, name)
        if change:
            j.attr(profile, name, change[0])
    return None

"""The message list redraws only what changed (``views.chat.ListMemo``) and the page patches
only the rows that changed; whatever happens, both must equal a list drawn from scratch. Random
steps by two people (messages, replies, threads, reactions, pins, edits, deletes, renames,
verification, late arrivals) are checked after each delivery against a fresh ``ViewCache``, and
the page's list is rebuilt from every render, patch and append the app posted."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from willow_web.app import App
from willow_web.views import ViewCache, chat
from willow_web.views.chat import _waiting, message_list

from .harness import act, regions
from .harness import st as state_of
from .test_render_hold import _pair

STEPS = ("send", "reply", "react", "unreact", "pin", "thread", "edit", "delete", "rename", "verify")


def _drawn(app: App) -> tuple[str, str]:
    lst = message_list(app)
    if not lst.patches:
        assert lst.whole == lst.shown + lst.new
    whole = lst.whole
    state, channel = app.state, app.channel_id
    assert state is not None
    assert channel is not None
    return whole, _waiting(app, state, channel)


def _fresh(app: App) -> tuple[str, str]:
    kept = app.view_cache
    app.view_cache = ViewCache(anchors=dict(kept.anchors))
    try:
        return _drawn(app)
    finally:
        app.view_cache = kept


def _step(rng: random.Random, person: App, other: App, n: int) -> None:
    state = state_of(person)
    channel = person.channel_id
    assert channel is not None
    ids = [m for m in state.channels[channel].messages if not state.messages[m].deleted]
    target = rng.choice(ids).hex() if ids else None
    step = rng.choice(STEPS)
    if step == "send" or target is None:
        act(person, "send", text=f"message {n} for @{other.display_name} **bold**")
    elif step == "reply":
        act(person, "reply", id=target)
        act(person, "send", text=f"reply {n}")
    elif step in ("react", "unreact"):
        act(person, "react", id=target, emoji=rng.choice(["👍", "🎉"]))
    elif step == "pin":
        if state.owner == person.me:  # only the founder may pin here
            act(person, "pin", id=target)
    elif step == "thread":
        if bytes.fromhex(target) not in {t.root for t in state.threads.values()}:
            act(person, "create-thread", id=target, name=f"thread {n}")
        act(person, "send", text=f"in thread {n}", target="thread")
        act(person, "close-thread")
    elif step == "edit":
        mine = [m for m in ids if state.messages[m].author == person.me]
        if mine:
            act(person, "save-edit", id=rng.choice(mine).hex(), text=f"edited {n}")
    elif step == "delete":
        mine = [m for m in ids if state.messages[m].author == person.me]
        if mine:
            act(person, "confirm-delete", id=rng.choice(mine).hex())
    elif step == "rename":
        act(person, "set-name", name=f"{person.display_name[:5]}{n}")
    elif step == "verify":
        act(person, "verify", peer=other.me.hex(), on=rng.choice(["0", "1"]))


@pytest.mark.parametrize("seed", range(10))
def test_redrawn_list_equals_a_fresh_one(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    net, alice, bob = _pair(tmp_path)
    people = [alice, bob]
    if seed % 2:  # a small window, so it moves on (rows trimmed from the top) many times
        monkeypatch.setattr(chat, "SLACK", 1)
        for app in people:
            app.ui.window = 2
    for n in range(40):
        person = rng.choice(people)
        _step(rng, person, people[1 - people.index(person)], n)
        if rng.random() < 0.6:  # otherwise the other side gets several steps at once
            net.settle(ticks=1)
        for app in people:
            app.render()
            fresh = _fresh(app)
            assert _drawn(app) == fresh
            # what the page holds after every render, patch and append it was posted
            assert regions(app)["message-list"] == fresh[0]
    net.settle()
    for app in people:
        assert _drawn(app) == _fresh(app)

"""Sealed (end-to-end encrypted) channels, tried as members would use them: key publication,
the first epoch, reading, a kick that rotates the key, newcomers under both history
visibilities, concurrent rotations, and a corrupt key share. No network: replicas sync by
exchanging events, as in every scenario test."""

from __future__ import annotations

import os

import pytest

from willow_core import Community
from willow_core.keyring import STAGGER_MS, Unreadable
from willow_core.kinds import (
    CreateSealedChannel,
    HistoryVisibility,
    KeyShare,
    SealedMessage,
    ShareChannelKey,
)
from willow_core.results import RejectReason

from .helpers import Clock, admit, assert_converged, found, history, kick, sync

R = RejectReason


def rng(n: int) -> bytes:
    return os.urandom(n)


def settle(clock: Clock, *cs: Community, rounds: int = 8) -> None:
    """Everyone does due key work and syncs, with time passing for staggered work."""
    for _ in range(rounds):
        for c in cs:
            if c.ready:
                c.key_work(clock(), rng)
        sync(clock, *cs)
        clock.ms += STAGGER_MS


def send(c: Community, channel: bytes, text: str, clock: Clock) -> bytes:
    _events, sealed = c.seal(channel, text, "message", clock(), rng)
    return c.author(SealedMessage(channel, sealed), clock()).id


def read(c: Community, message_id: bytes) -> str | Unreadable:
    opened = c.keyring.open_message(c.state, c.state.messages[message_id])
    return opened.text if opened.text is not None else opened.reason  # type: ignore[return-value]


def community(history_mode: HistoryVisibility = HistoryVisibility.FULL):  # type: ignore[no-untyped-def]
    clock = Clock()
    owner = found(clock)
    bob = admit(owner, "bob", clock)
    carol = admit(owner, "carol", clock)
    sync(clock, owner, bob, carol)
    channel = owner.author(CreateSealedChannel("secret", "", history_mode), clock()).id
    settle(clock, owner, bob, carol)
    return clock, owner, bob, carol, channel


def test_members_read_and_the_wire_holds_only_ciphertext() -> None:
    clock, owner, bob, carol, channel = community()
    m = send(owner, channel, "the plan is secret", clock)
    sync(clock, owner, bob, carol)
    assert read(bob, m) == "the plan is secret"
    assert read(carol, m) == "the plan is secret"
    assert all(b"the plan is secret" not in ev.wire for ev in history(owner))
    assert_converged(owner, bob, carol)


def test_plaintext_in_a_sealed_channel_is_refused() -> None:
    from willow_core.errors import NotPermitted
    from willow_core.kinds import Message

    clock, owner, _bob, _carol, channel = community()
    with pytest.raises(NotPermitted) as refused:
        owner.author(Message(channel, "in the clear"), clock())
    assert refused.value.reason is R.SEALED_CHANNEL


def test_a_kicked_member_cannot_read_what_is_sent_after_the_kick() -> None:
    clock, owner, bob, carol, channel = community()
    before = send(owner, channel, "before the kick", clock)
    settle(clock, owner, bob, carol)
    assert read(carol, before) == "before the kick"
    kick(owner, "carol", clock)
    settle(clock, owner, bob, carol)  # the remaining readers rotate: the old epoch is exposed
    after = send(bob, channel, "after the kick", clock)
    sync(clock, owner, bob, carol)  # carol still receives every event
    assert read(owner, after) == "after the kick"
    assert read(carol, after) is Unreadable.NOT_A_READER
    assert all(b"after the kick" not in ev.wire for ev in history(owner))
    assert_converged(owner, bob, carol)


@pytest.mark.parametrize("mode", list(HistoryVisibility))
def test_newcomers_read_what_history_visibility_allows(mode: HistoryVisibility) -> None:
    clock, owner, bob, carol, channel = community(mode)
    old = send(owner, channel, "old news", clock)
    settle(clock, owner, bob, carol)
    dave = admit(owner, "dave", clock)
    settle(clock, owner, bob, carol, dave)
    new = send(bob, channel, "fresh news", clock)
    settle(clock, owner, bob, carol, dave)
    assert read(dave, new) == "fresh news"
    if mode is HistoryVisibility.FULL:
        assert read(dave, old) == "old news"
    else:
        assert read(dave, old) is Unreadable.NOT_A_READER


def test_concurrent_rotations_converge_and_nothing_is_lost() -> None:
    clock, owner, bob, carol, channel = community()
    # Both rotate without seeing each other, then each sends under their own new epoch.
    owner.author(owner.keyring.rotation(owner.state, channel, rng), clock())
    bob.author(bob.keyring.rotation(bob.state, channel, rng), clock())
    a = send(owner, channel, "from the owner", clock)
    b = send(bob, channel, "from bob", clock)
    settle(clock, owner, bob, carol)
    for c in (owner, bob, carol):
        assert read(c, a) == "from the owner"
        assert read(c, b) == "from bob"
    assert owner.keyring.current(owner.state, channel) == bob.keyring.current(bob.state, channel)
    assert_converged(owner, bob, carol)


def test_a_forged_key_share_reads_as_corrupt_not_as_missing() -> None:
    clock, owner, bob, carol, channel = community(HistoryVisibility.FULL)
    epoch = next(iter(owner.state.channel_keys[channel].values()))
    m = send(owner, channel, "hello", clock)
    sync(clock, owner, bob, carol)
    dave = admit(owner, "dave", clock)
    sync(clock, owner, bob, carol, dave)
    dave.key_work(clock(), rng)  # dave publishes a key
    sync(clock, owner, bob, carol, dave)
    # carol "shares" garbage with dave before anyone honest does: the first share wins.
    carol.author(
        ShareChannelKey(channel, epoch.key, (KeyShare(dave.identity.public_key, bytes(80)),)),
        clock(),
    )
    sync(clock, owner, bob, carol, dave)
    assert read(dave, m) is Unreadable.CORRUPT


def test_a_since_joining_newcomer_reads_what_is_sent_once_its_key_is_known() -> None:
    """A sender who already holds a newcomer's key must not seal under an epoch the newcomer
    will never be given (since-joining epochs are never shared, only replaced): it starts a
    fresh epoch for everyone instead, as it does when the current one is exposed."""
    clock, owner, bob, carol, channel = community(HistoryVisibility.SINCE_JOINING)
    old = send(owner, channel, "before dave", clock)
    dave = admit(owner, "dave", clock)
    sync(clock, owner, bob, carol, dave)
    dave.key_work(clock(), rng)  # dave publishes his key...
    sync(clock, owner, bob, carol, dave)  # ...and bob sees it before anyone rotates for him
    after = send(bob, channel, "after dave's key is known", clock)
    settle(clock, owner, bob, carol, dave)
    assert read(dave, old) is Unreadable.NOT_A_READER
    assert read(dave, after) == "after dave's key is known"
    for c in (owner, carol):
        assert read(c, after) == "after dave's key is known"
    assert_converged(owner, bob, carol, dave)


def test_a_sealed_file_message_keeps_its_content_hash_and_opens_to_its_metadata() -> None:
    from willow_core.kinds import SealedFileMessage

    clock, owner, bob, carol, channel = community()
    content = bytes(range(32))
    _events, sealed = owner.seal(channel, '{"name": "plan.pdf"}', "file", clock(), rng)
    m = owner.author(SealedFileMessage(channel, content, sealed), clock()).id
    sync(clock, owner, bob, carol)
    for c in (owner, bob, carol):
        message = c.state.messages[m]
        assert message.file is not None
        assert message.file.content == content  # in the clear, to fetch the file
        assert (message.file.name, message.file.mime, message.file.size) == ("", "", 0)
        assert read(c, m) == '{"name": "plan.pdf"}'
    assert all(b"plan.pdf" not in ev.wire for ev in history(owner))
    assert_converged(owner, bob, carol)


def test_an_epoch_held_only_by_a_member_who_equivocated_does_not_block_the_channel() -> None:
    """The only holder of the newest epoch forks its log (an old backup restored): replay
    ignores everything it authors from then on, so it can never share that epoch. It is no
    reader any more, the epoch is exposed, and the others start a fresh one and talk."""
    from willow_core.kinds import CreateChannel

    from .helpers import forge, inject

    clock = Clock()
    owner = found(clock)
    channel = owner.author(CreateSealedChannel("secret", "", HistoryVisibility.FULL), clock()).id
    owner.key_work(clock(), rng)  # the owner publishes its key...
    owner.key_work(clock(), rng)  # ...and starts the first epoch, for itself alone
    lost = send(owner, channel, "before anyone else had a key", clock)
    bob = admit(owner, "bob", clock)
    carol = admit(owner, "carol", clock)
    sync(clock, owner, bob, carol)
    for c in (bob, carol):
        c.key_work(clock(), rng)
    sync(clock, owner, bob, carol)
    head = owner.author(CreateChannel("one branch"), clock())
    sync(clock, owner, bob, carol)
    other = forge(
        owner, owner.identity, CreateChannel("another"), seq=head.seq, prev=head.prev, ts=head.ts
    )
    for c in (owner, bob, carol):
        inject(c, other, clock)
    assert owner.identity.public_key in bob.dag.fork_seq
    settle(clock, owner, bob, carol)
    m = send(bob, channel, "the channel still works", clock)
    settle(clock, owner, bob, carol)
    assert read(carol, m) == "the channel still works"
    assert read(owner, m) is Unreadable.NOT_A_READER
    assert read(carol, lost) is Unreadable.KEY_LOST  # only the owner ever held it
    assert_converged(owner, bob, carol)

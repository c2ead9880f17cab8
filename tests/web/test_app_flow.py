"""The browser app's controller, end to end under CPython: every flow a person uses, three
people on one in-memory relay, state hashes compared, and a reload from the store."""

from __future__ import annotations

from pathlib import Path

from willow_core.permissions import Permission
from willow_core.state import state_hash

from .harness import Net, act, regions, st, text


def test_full_flow_three_people(tmp_path: Path) -> None:
    net = Net()
    alice = net.app(tmp_path / "a", "Alice")
    bob = net.app(tmp_path / "b", "Bob")
    carol = net.app(tmp_path / "c", "Carol")

    act(alice, "create-community", name="Book club")
    server = alice.ui.community
    assert server is not None
    state = st(alice)
    assert state.name == "Book club"
    general = alice.channel_id
    assert general is not None
    assert state.channels[general].name == "general"

    act(alice, "create-invite", max_uses="5", days="7")
    invite_id = next(iter(alice.ui.invites))
    from willow_core.invite import InviteLink

    link = InviteLink(server, invite_id, alice.ui.invites[invite_id]).encode()
    assert "svg" in regions(alice)["overlay"]  # the QR code is shown with the link
    act(bob, "join", link=link)
    act(carol, "join", link=link)
    net.settle()
    assert bob.me in st(alice).members
    assert carol.me in st(alice).members

    act(alice, "send", text="Hello **everyone** <script>x</script>")
    net.settle()
    message_id = st(alice).channels[general].messages[-1]
    html = regions(bob)["message-list"]
    assert "<strong>everyone</strong>" in html
    assert "&lt;script&gt;" in html
    assert "<script>" not in html

    act(bob, "reply", id=message_id.hex())
    act(bob, "send", text="Hi @Alice")
    net.settle()
    reply_id = st(bob).channels[general].messages[-1]
    reply = st(alice).messages[reply_id]
    assert reply.reply_to == message_id
    assert f"<@{alice.me.hex()}>" in (text(alice, reply_id) or "")
    assert reply.body == ""  # sealed: the replicated state holds only ciphertext
    assert reply.sealed is not None
    assert 'class="mention me"' in regions(alice)["message-list"]

    act(carol, "react", id=message_id.hex(), emoji="🎉")
    act(bob, "create-thread", id=message_id.hex(), name="Planning")
    act(bob, "send", text="in the thread", target="thread")
    act(alice, "edit", id=message_id.hex())
    act(alice, "save-edit", id=message_id.hex(), text="Hello everyone (edited)")
    act(alice, "pin", id=message_id.hex())
    net.settle()
    for app in (alice, bob, carol):
        m = st(app).messages[message_id]
        assert text(app, message_id) == "Hello everyone (edited)"
        assert m.edited
        assert m.reactions == {"🎉": {carol.me}}
        assert message_id in st(app).channels[general].pins
        (thread,) = st(app).threads.values()
        assert app.community is not None
        assert app.community.keyring.open_thread(st(app), thread).text == "Planning"
        assert len(thread.messages) == 1
    act(bob, "delete", id=reply_id.hex())
    act(bob, "confirm-delete", id=reply_id.hex())

    act(alice, "create-channel", name="Off Topic", topic="anything")
    act(alice, "create-role", name="Mods", color="#ff0000")
    role = next(r for r in st(alice).roles.values() if r.name == "Mods").id
    act(alice, "role-permission", role=role.hex(), perm=str(int(Permission.MANAGE_MESSAGES)))
    act(alice, "assign-role", role=role.hex(), peer=bob.me.hex())
    off_topic = alice.channel_id
    assert off_topic is not None
    act(
        alice,
        "overwrite",
        channel=off_topic.hex(),
        target=server.hex(),
        kind="role",
        perm=str(int(Permission.SEND_MESSAGES)),
    )
    act(
        alice,
        "overwrite",
        channel=off_topic.hex(),
        target=server.hex(),
        kind="role",
        perm=str(int(Permission.SEND_MESSAGES)),
    )  # allow -> deny
    net.settle()
    assert st(bob).channels[off_topic].overwrites[server].deny == {Permission.SEND_MESSAGES}

    # governance: Bob becomes admin at once (founder's proposal), then Bob proposes to kick
    # Carol, which needs Alice's vote too.
    act(alice, "propose", kind="grant-admin", peer=bob.me.hex())
    net.settle()
    assert bob.me in st(bob).admins
    act(bob, "propose", kind="kick", peer=carol.me.hex())
    net.settle()
    (proposal,) = st(alice).proposals
    act(alice, "vote", id=proposal.hex(), accept="1")
    net.settle()
    assert carol.me not in st(alice).members
    assert carol.me not in st(bob).members

    hashes = {state_hash(st(app)) for app in (alice, bob, carol)}
    assert len(hashes) == 1

    # after the kick the key rotates: Carol, still receiving everything, sees a reason instead
    act(alice, "select-channel", id=general.hex())
    act(alice, "send", text="after the kick")
    net.settle()
    after = st(alice).channels[general].messages[-1]
    assert text(bob, after) == "after the kick"
    assert text(carol, after) is None
    assert carol.undecryptable() == {"NOT_A_READER": 1}
    carol.ui.channel[server] = general
    carol.render()
    assert 'data-reason="not_a_reader"' in regions(carol)["message-list"]
    assert "after the kick" not in regions(carol)["message-list"]

    # safety numbers: Alice verifies Bob; the badge shows and survives a reload
    act(alice, "open-member", peer=bob.me.hex())
    assert "safety-number" in regions(alice)["overlay"]
    act(alice, "verify", peer=bob.me.hex(), on="1")
    act(alice, "close")
    assert 'class="verified"' in regions(alice)["members"]
    alice2 = net.reload(alice, tmp_path / "a")
    assert bob.me in alice2.ui.verified
    assert alice2.ui.invites  # invite seeds too (read marks, drafts of joins) survive

    # a reload shows the same state from the store, before any network
    before = state_hash(st(bob))
    bob2 = net.reload(bob, tmp_path / "b")
    assert bob2.display_name == "Bob"
    assert state_hash(st(bob2)) == before
    assert "Hello everyone (edited)" in regions(bob2)["message-list"]


def test_offline_messages_are_sent_on_reconnect(tmp_path: Path) -> None:
    net = Net()
    alice = net.app(tmp_path / "a", "Alice")
    bob = net.app(tmp_path / "b", "Bob")
    act(alice, "create-community", name="Team")
    act(alice, "create-invite", max_uses="0", days="0")
    from willow_core.invite import InviteLink

    invite_id = next(iter(alice.ui.invites))
    server = alice.ui.community
    assert server is not None
    act(bob, "join", link=InviteLink(server, invite_id, alice.ui.invites[invite_id]).encode())
    net.settle()
    net.offline.add(1)
    act(bob, "send", text="typed while offline")
    assert bob.node is not None
    bob.node.drain()  # the socket is down: what was queued is lost with it
    net.settle()
    assert not any(text(alice, m) == "typed while offline" for m in st(alice).messages)
    net.offline.clear()
    bob._on_link_ready()  # the next session republishes what storage has not acknowledged
    net.settle()
    assert any(text(alice, m) == "typed while offline" for m in st(alice).messages)

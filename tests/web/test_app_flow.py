"""The browser app's controller, end to end under CPython: every flow a person uses, three
people on one in-memory relay, state hashes compared, and a reload from the store."""

from __future__ import annotations

from pathlib import Path

from willow_core.permissions import Permission
from willow_core.state import state_hash

from .harness import Net, act, regions


def test_full_flow_three_people(tmp_path: Path) -> None:
    net = Net()
    alice = net.app(tmp_path / "a", "Alice")
    bob = net.app(tmp_path / "b", "Bob")
    carol = net.app(tmp_path / "c", "Carol")

    act(alice, "create-community", name="Book club")
    server = alice.ui.community
    assert server is not None
    state = alice.state
    assert state is not None and state.name == "Book club"
    general = alice.channel_id
    assert general is not None and state.channels[general].name == "general"

    act(alice, "create-invite", max_uses="5", days="7")
    invite_id = next(iter(alice.ui.invites))
    from willow_core.invite import InviteLink

    link = InviteLink(server, invite_id, alice.ui.invites[invite_id]).encode()
    assert "svg" in regions(alice)["overlay"]  # the QR code is shown with the link
    act(bob, "join", link=link)
    act(carol, "join", link=link)
    net.settle()
    assert bob.me in alice.state.members and carol.me in alice.state.members

    act(alice, "send", text="Hello **everyone** <script>x</script>")
    net.settle()
    message_id = alice.state.channels[general].messages[-1]
    html = regions(bob)["message-list"]
    assert "<strong>everyone</strong>" in html and "&lt;script&gt;" in html and "<script>" not in html

    act(bob, "reply", id=message_id.hex())
    act(bob, "send", text="Hi @Alice")
    net.settle()
    reply_id = bob.state.channels[general].messages[-1]
    reply = alice.state.messages[reply_id]
    assert reply.reply_to == message_id and f"<@{alice.me.hex()}>" in reply.body
    assert 'class="mention me"' in regions(alice)["message-list"]

    act(carol, "react", id=message_id.hex(), emoji="🎉")
    act(bob, "create-thread", id=message_id.hex(), name="Planning")
    act(bob, "send", text="in the thread", target="thread")
    act(alice, "edit", id=message_id.hex())
    act(alice, "save-edit", id=message_id.hex(), text="Hello everyone (edited)")
    act(alice, "pin", id=message_id.hex())
    net.settle()
    for app in (alice, bob, carol):
        m = app.state.messages[message_id]
        assert m.body == "Hello everyone (edited)" and m.edited
        assert m.reactions == {"🎉": {carol.me}}
        assert message_id in app.state.channels[general].pins
        (thread,) = app.state.threads.values()
        assert thread.name == "Planning" and len(thread.messages) == 1
    act(bob, "delete", id=reply_id.hex())
    act(bob, "confirm-delete", id=reply_id.hex())

    act(alice, "create-channel", name="Off Topic", topic="anything")
    act(alice, "create-role", name="Mods", color="#ff0000")
    role = next(r for r in alice.state.roles.values() if r.name == "Mods").id
    act(alice, "role-permission", role=role.hex(), perm=str(int(Permission.MANAGE_MESSAGES)))
    act(alice, "assign-role", role=role.hex(), peer=bob.me.hex())
    off_topic = alice.channel_id
    act(alice, "overwrite", channel=off_topic.hex(), target=server.hex(), kind="role",
        perm=str(int(Permission.SEND_MESSAGES)))
    act(alice, "overwrite", channel=off_topic.hex(), target=server.hex(), kind="role",
        perm=str(int(Permission.SEND_MESSAGES)))  # allow -> deny
    net.settle()
    assert bob.state.channels[off_topic].overwrites[server].deny == {Permission.SEND_MESSAGES}

    # governance: Bob becomes admin at once (founder's proposal), then Bob proposes to kick
    # Carol, which needs Alice's vote too.
    act(alice, "propose", kind="grant-admin", peer=bob.me.hex())
    net.settle()
    assert bob.me in bob.state.admins
    act(bob, "propose", kind="kick", peer=carol.me.hex())
    net.settle()
    (proposal,) = alice.state.proposals
    act(alice, "vote", id=proposal.hex(), accept="1")
    net.settle()
    assert carol.me not in alice.state.members and carol.me not in bob.state.members

    hashes = {state_hash(app.state) for app in (alice, bob, carol)}
    assert len(hashes) == 1

    # a reload shows the same state from the store, before any network
    before = state_hash(bob.state)
    bob2 = net.reload(bob, tmp_path / "b")
    assert bob2.display_name == "Bob" and state_hash(bob2.state) == before
    assert "Hello everyone (edited)" in regions(bob2)["message-list"]


def test_offline_messages_are_sent_on_reconnect(tmp_path: Path) -> None:
    net = Net()
    alice = net.app(tmp_path / "a", "Alice")
    bob = net.app(tmp_path / "b", "Bob")
    act(alice, "create-community", name="Team")
    act(alice, "create-invite", max_uses="0", days="0")
    from willow_core.invite import InviteLink

    invite_id = next(iter(alice.ui.invites))
    act(bob, "join", link=InviteLink(alice.ui.community, invite_id, alice.ui.invites[invite_id]).encode())
    net.settle()
    net.offline.add(1)
    act(bob, "send", text="typed while offline")
    bob.node.drain()  # the socket is down: what was queued is lost with it
    net.settle()
    assert not any(m.body == "typed while offline" for m in alice.state.messages.values())
    net.offline.clear()
    bob._on_link_ready()  # the next session republishes what storage has not acknowledged
    net.settle()
    assert any(m.body == "typed while offline" for m in alice.state.messages.values())

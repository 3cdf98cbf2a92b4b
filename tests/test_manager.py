"""SkytaleChannelManager against a real ``skytale dev`` (relay + API, auth on)."""

from __future__ import annotations

import re
import stat
import threading
import time

import pytest

from channels import wait_until
from conftest import DevStack
from skytale_sdk import (
    AuthError,
    ChannelError,
    Envelope,
    Protocol,
    QuotaExceededError,
    SkytaleChannelManager,
    TransportError,
)

# Only there so that a lost message fails a test instead of hanging it; never reached when things work.
PATIENCE = 60.0


def receive_exactly(manager: SkytaleChannelManager, channel: str, count: int) -> list[str]:
    """The next ``count`` messages, over as many ``receive()`` calls as it takes."""
    received: list[str] = []
    deadline = time.monotonic() + PATIENCE
    while len(received) < count and time.monotonic() < deadline:
        received += manager.receive(channel, timeout=PATIENCE)
    return received


def pair(channel: str, **bob_options: int) -> tuple[SkytaleChannelManager, SkytaleChannelManager]:
    """Alice creates ``channel`` and adds Bob with a key package (the manual path, no invite)."""
    alice = SkytaleChannelManager("alice")
    bob = SkytaleChannelManager("bob", **bob_options)
    alice.create(channel)
    bob.join(channel, alice.add_member(channel, bob.key_package()))
    return alice, bob


def test_defaults_come_from_the_environment(dev_env: DevStack, tmp_path, channel_name: str) -> None:
    with SkytaleChannelManager("alice") as alice:
        alice.create(channel_name)
    # str identity is UTF-8; the default data_dir is ~/.skytale/<hex(identity)>, readable by its owner only.
    default_dir = tmp_path / ".skytale" / b"alice".hex()
    assert stat.S_IMODE(default_dir.stat().st_mode) == 0o700
    explicit = tmp_path / "explicit"
    with SkytaleChannelManager(b"alice", data_dir=str(explicit)) as again:
        assert again.list_channels() == []
    assert explicit.is_dir()


def test_receive_returns_empty_after_the_timeout(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        started = time.monotonic()
        assert bob.receive(channel_name, timeout=0.5) == []
        assert time.monotonic() - started >= 0.4


def test_receive_wakes_when_a_message_arrives(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        sender = threading.Timer(0.3, alice.send, args=(channel_name, "wake up"))
        sender.start()
        started = time.monotonic()
        assert bob.receive(channel_name, timeout=PATIENCE) == ["wake up"]
        # Woken by the arrival, not by the end of the wait.
        assert time.monotonic() - started < PATIENCE / 2
        sender.join()


def test_receive_drains_in_order_and_decodes_text(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        for i in range(5):
            alice.send(channel_name, f"m{i}")
        alice.send(channel_name, "é".encode() + b"\xff")
        received = receive_exactly(bob, channel_name, 6)
        assert received[:5] == [f"m{i}" for i in range(5)]
        # Not UTF-8: kept losslessly as a lone surrogate.
        assert received[5].encode("utf-8", "surrogateescape") == "é".encode() + b"\xff"
        assert bob.receive(channel_name, timeout=0) == []


def test_one_receive_returns_everything_sent_before_it(dev_env: DevStack, channel_name: str) -> None:
    """``send()`` returns once the relay stored the message, so a later ``receive()`` gets all of them in one
    call, however they trickle in; the receiver's own messages in between must not make it wait or lose any."""
    alice, bob = pair(channel_name)
    with alice, bob:
        for burst in range(3):
            sent = [f"b{burst}-m{i}" for i in range(30)]
            for i, text in enumerate(sent):
                alice.send(channel_name, text)
                if i == 10:
                    bob.send(channel_name, f"bob-{burst}")
            assert bob.receive(channel_name, timeout=PATIENCE) == sent
            assert alice.receive(channel_name, timeout=PATIENCE) == [f"bob-{burst}"]
        assert bob.receive(channel_name, timeout=0) == []


def test_receive_latest_keeps_only_the_newest(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        for text in ("old", "older", "newest"):
            alice.send(channel_name, text)
        wait_until(lambda: bob.pending(channel_name) == 3)
        assert bob.receive_latest(channel_name) == "newest"
        assert bob.receive(channel_name, timeout=0) == []
        assert bob.receive_latest(channel_name, timeout=0.1) is None


def test_list_channels_and_unknown_channels(dev_env: DevStack, channel_name: str) -> None:
    with SkytaleChannelManager("alice") as alice:
        alice.create(channel_name + "-a")
        alice.create(channel_name + "-b")
        assert sorted(alice.list_channels()) == [channel_name + "-a", channel_name + "-b"]
        with pytest.raises(ChannelError, match="unknown channel"):
            alice.send("myorg/tests/never-created", "x")
        with pytest.raises(ChannelError, match="invalid channel name: bad"):
            alice.create("bad")


def test_receive_messages_reads_the_same_inbox_with_metadata(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        alice.send(channel_name, "first")
        alice.send(channel_name, "second")
        wait_until(lambda: bob.pending(channel_name) == 2)
        messages = bob.receive_messages(channel_name)
        assert [(m.payload, m.sender) for m in messages] == [(b"first", b"alice"), (b"second", b"alice")]
        assert messages[0].seq < messages[1].seq
        assert all(isinstance(m.timestamp, float) for m in messages)
        assert bob.receive(channel_name, timeout=0) == []  # the same inbox: nothing left for receive()


def test_members_and_leave(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        assert sorted(alice.members(channel_name)) == sorted(bob.members(channel_name)) == [b"alice", b"bob"]
        with bob.view(channel_name) as view:
            bob.leave(channel_name)
            assert view.receive(timeout=0) == []  # the view ended with the channel
        assert bob.list_channels() == []
        with pytest.raises(ChannelError, match="unknown channel"):
            bob.send(channel_name, "gone")
        wait_until(lambda: alice.members(channel_name) == [b"alice"])
        alice.send(channel_name, "still works")
    with SkytaleChannelManager("bob") as bob_again:
        assert channel_name not in bob_again.list_channels()


def test_remove_member_and_rotate_key(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, SkytaleChannelManager("carol") as carol:
        # A Welcome that is never used leaves a member who never joins: remove_member cleans it up.
        alice.add_member(channel_name, carol.key_package())
        assert sorted(alice.members(channel_name)) == [b"alice", b"bob", b"carol"]
        alice.remove_member(channel_name, "carol")
        wait_until(lambda: sorted(bob.members(channel_name)) == [b"alice", b"bob"])
        alice.rotate_key(channel_name)
        alice.send(channel_name, "after the rotation")
        assert receive_exactly(bob, channel_name, 1) == ["after the rotation"]
        alice.remove_member(channel_name, b"bob")
        with pytest.raises(ChannelError, match="removed from channel"):
            receive_exactly(bob, channel_name, 1)


def test_reopening_the_data_dir_resumes_every_channel(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice:
        alice.send(channel_name, "before")
        assert receive_exactly(bob, channel_name, 1) == ["before"]
        bob.close()
        alice.send(channel_name, "while bob was away 1")
        alice.send(channel_name, "while bob was away 2")
        with SkytaleChannelManager("bob") as bob_again:
            assert bob_again.list_channels() == [channel_name]
            assert receive_exactly(bob_again, channel_name, 2) == ["while bob was away 1", "while bob was away 2"]
            bob_again.send(channel_name, "back")
            assert receive_exactly(alice, channel_name, 1) == ["back"]


def test_a_script_run_again_creates_and_joins_as_no_ops_and_carries_on(dev_env: DevStack, channel_name: str) -> None:
    def run(text: str) -> list[str]:
        """What a script does: create, invite, join, exchange, in fresh managers on the same data_dirs."""
        with SkytaleChannelManager("alice") as alice, SkytaleChannelManager("bob") as bob:
            alice.create(channel_name)
            bob.join_with_token(channel_name, alice.invite(channel_name))
            alice.send(channel_name, text)
            return receive_exactly(bob, channel_name, 1)

    assert run("first run") == ["first run"]
    assert run("second run") == ["second run"]
    with SkytaleChannelManager("alice") as alice:
        assert sorted(alice.members(channel_name)) == [b"alice", b"bob"]


def test_a_channel_gone_from_a_reset_relay_is_reported_with_the_data_dir_and_what_to_do(
    make_relay, tmp_path, monkeypatch, channel_name: str
) -> None:
    for name in ("SKYTALE_API_KEY", "SKYTALE_API_URL"):
        monkeypatch.delenv(name, raising=False)
    data_dir = str(tmp_path / "alice")
    first = make_relay()
    with SkytaleChannelManager("alice", endpoint=first.endpoint, data_dir=data_dir) as alice:
        alice.create(channel_name)
        alice.send(channel_name, "before the reset")
    # Another relay, which never saw the channel: as after a new `skytale dev` stack.
    fresh = make_relay()
    with SkytaleChannelManager("alice", endpoint=fresh.endpoint, data_dir=data_dir) as alice:
        gone = f"channel error: channel {channel_name} is gone from the relay: data_dir {data_dir} holds it"
        with pytest.raises(ChannelError, match="^" + re.escape(gone)) as raised:
            alice.create(channel_name)
        assert "use a new data_dir" in str(raised.value)
        with pytest.raises(ChannelError, match=re.escape(gone)):
            alice.send(channel_name, "after the reset")


def test_envelopes_and_raw_messages_share_a_channel(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        a2a = Envelope(Protocol.A2A, "application/json", b'{"hello":1}', {"task": "t-1"})
        alice.send_envelope(channel_name, a2a)
        alice.send(channel_name, "plain text")
        received: list[Envelope] = []
        while len(received) < 2:
            received += bob.receive_envelopes(channel_name, timeout=PATIENCE)
        assert received == [a2a, Envelope(Protocol.RAW, "application/octet-stream", b"plain text")]


def test_a_full_buffer_is_an_error_after_its_messages_and_nothing_is_lost(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name, buffer_limit=3)
    with alice, bob:
        sent = [f"m{i}" for i in range(8)]
        for text in sent:
            alice.send(channel_name, text)
        wait_until(lambda: bob.pending(channel_name) == 3)
        assert bob.receive(channel_name) == sent[:3]
        with pytest.raises(QuotaExceededError) as raised:
            bob.receive(channel_name)
        assert channel_name in str(raised.value) and "buffer_limit=3" in str(raised.value)
        assert raised.value.code == "quota"
        rest: list[str] = []
        while len(rest) < 5:
            try:
                rest += bob.receive(channel_name, timeout=PATIENCE)
            except QuotaExceededError:
                pass  # the remaining five fill the inbox again (3 + 2)
        assert rest == sent[3:]


def test_close_joins_every_listener_thread(dev_env: DevStack, channel_name: str) -> None:
    before = set(threading.enumerate())
    alice, bob = pair(channel_name)
    alice.create(channel_name + "-2")
    assert len(set(threading.enumerate()) - before) == 3
    alice.close()
    bob.close()
    bob.close()  # idempotent
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(RuntimeError, match="closed"):
        alice.send(channel_name, "after close")


def test_an_invite_is_single_use_by_default(dev_env: DevStack, channel_name: str) -> None:
    with (
        SkytaleChannelManager("alice") as alice,
        SkytaleChannelManager("bob") as bob,
        SkytaleChannelManager("carol") as carol,
    ):
        alice.create(channel_name)
        token = alice.invite(channel_name)
        assert token.startswith("skt_inv_")
        bob.join_with_token(channel_name, token)
        with pytest.raises(ChannelError, match="no uses left"):
            carol.join_with_token(channel_name, token)
        assert carol.list_channels() == []
        alice.send(channel_name, "only bob")
        assert receive_exactly(bob, channel_name, 1) == ["only bob"]


def test_five_joiners_redeem_one_invite_at_once(dev_env: DevStack, channel_name: str) -> None:
    names = [f"joiner{i}" for i in range(5)]
    with SkytaleChannelManager("alice") as alice:
        alice.create(channel_name)
        token = alice.invite(channel_name, max_uses=5)
        joiners = [SkytaleChannelManager(name) for name in names]
        errors: list[BaseException] = []

        def join(manager: SkytaleChannelManager) -> None:
            try:
                manager.join_with_token(channel_name, token, timeout=PATIENCE)
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)

        threads = [threading.Thread(target=join, args=(joiner,)) for joiner in joiners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            assert errors == []
            alice.send(channel_name, "hello all")
            for joiner in joiners:
                assert receive_exactly(joiner, channel_name, 1) == ["hello all"]
        finally:
            for joiner in joiners:
                joiner.close()


def test_join_with_token_times_out_when_nobody_admits(dev_env: DevStack, channel_name: str) -> None:
    alice = SkytaleChannelManager("alice")
    alice.create(channel_name)
    token = alice.invite(channel_name)
    alice.close()
    with SkytaleChannelManager("bob") as bob:
        with pytest.raises(TransportError, match="timed out after"):
            bob.join_with_token(channel_name, token, timeout=1.0)
        assert bob.list_channels() == []


def test_a_bad_api_key_is_an_auth_error(dev_env: DevStack) -> None:
    with pytest.raises(AuthError, match="^auth error:"):
        SkytaleChannelManager("mallory", api_key="sk_live_" + "00" * 32)

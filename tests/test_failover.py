"""Failover across relay endpoints (docs/client.md, "Relay endpoints and failover"): ``SKYTALE_RELAY`` holding
several comma-separated URLs, a relay killed mid-stream and replaced by another on the same log at the next
endpoint with nothing lost or delivered twice, and malformed lists refused naming the problem."""

from __future__ import annotations

import logging
import queue
import socket
import time
from pathlib import Path

import pytest

from channels import Sender, form_channel, inbox, payloads, take
from relay_process import RelayProcess
from skytale_sdk import SkytaleChannelManager, SkytaleClient, TransportError

CHANNEL = "acme/team/failover"
# Only there so that a missing message or report fails a test instead of hanging it.
PATIENCE = 60.0


def unused_port() -> int:
    """A loopback port nothing listens on: bound to learn a free one, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_manager_takes_a_list_from_skytale_relay_and_skips_an_endpoint_nobody_listens_on(relay, monkeypatch):
    monkeypatch.setenv("SKYTALE_RELAY", f"http://127.0.0.1:{unused_port()}, {relay.endpoint}")
    with SkytaleChannelManager("alice") as alice, SkytaleChannelManager("bob") as bob:
        alice.create(CHANNEL)
        bob.join(CHANNEL, alice.add_member(CHANNEL, bob.key_package()))
        alice.send(CHANNEL, "through the second endpoint")
        received: list[str] = []
        deadline = time.monotonic() + PATIENCE
        while not received and time.monotonic() < deadline:
            received += bob.receive(CHANNEL, timeout=PATIENCE)
        assert received == ["through the second endpoint"]


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("http://a:1,,http://b:2", 'relay endpoint list "http://a:1,,http://b:2" has an empty entry (entry 2)'),
        ("", 'no relay endpoint given ("")'),
        ("127.0.0.1:5000", 'invalid relay endpoint "127.0.0.1:5000" (entry 1 of "127.0.0.1:5000")'),
    ],
)
def test_a_malformed_list_is_refused_naming_the_problem(configured, expected, monkeypatch, tmp_path):
    monkeypatch.setenv("SKYTALE_RELAY", configured)
    with pytest.raises(TransportError) as raised:
        SkytaleChannelManager("alice", data_dir=str(tmp_path / "alice"))
    message = str(raised.value)
    assert message.startswith(f"transport error: {expected}"), message
    assert "SKYTALE_RELAY" in message and "separated by commas" in message
    # Refused before anything is opened: the data_dir is not even created.
    assert not (tmp_path / "alice").exists()


def test_a_killed_relay_is_replaced_at_the_next_endpoint_losing_and_duplicating_nothing(make_relay, tmp_path: Path):
    first = make_relay()
    # The replacement serves the first relay's log (its data dir, free once the first is gone) on another port.
    second = RelayProcess(first.data_dir, tmp_path / "second.log")
    second.port = unused_port()
    endpoints = f"{first.endpoint},http://127.0.0.1:{second.port}"
    alice = SkytaleClient(endpoints, str(tmp_path / "alice"), b"alice")
    bob = SkytaleClient(endpoints, str(tmp_path / "bob"), b"bob")
    try:
        alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])
        changes: queue.Queue[bool] = queue.Queue()
        alice.on_connection_change(changes.put)
        total = 300
        sent = payloads("failover", total)
        bob_inbox = inbox(bob_channel)
        # No retry: each send rides out the failover on its own (resent with its msg-id, stored once).
        sender = Sender(alice_channel, sent)
        received = take(bob_inbox, 100)
        first.kill()
        assert changes.get(timeout=PATIENCE) is False
        second.start()
        received += take(bob_inbox, total - 100)
        sender_failures = sender.finish()
        assert changes.get(timeout=PATIENCE) is True

        alice_channel.send(b"after failover")
        received += take(bob_inbox, 1)
        assert sender_failures == []
        assert received == sent + [b"after failover"]
        assert alice.connected and bob.connected
    finally:
        alice.close()
        bob.close()
        second.stop()


def test_a_draining_relay_hands_the_client_to_the_next_endpoint_saying_so(make_relay, tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="skytale_sdk")
    first = make_relay()
    second = RelayProcess(first.data_dir, tmp_path / "second.log")
    second.port = unused_port()
    second_endpoint = f"http://127.0.0.1:{second.port}"
    alice = SkytaleClient(f"{first.endpoint}, {second_endpoint}", str(tmp_path / "alice"), b"alice")
    bob = SkytaleClient(first.endpoint, str(tmp_path / "bob"), b"bob")
    try:
        alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])
        alice_channel.send(b"before the drain")
        changes: queue.Queue[bool] = queue.Queue()
        alice.on_connection_change(changes.put)
        # A rolling restart: the first relay drains and exits, its replacement starts on its log at the second
        # endpoint. Bob only knows the first endpoint: he is told after the fact where to go.
        assert first.terminate() == 0, first.log_path.read_text()
        assert changes.get(timeout=PATIENCE) is False
        second.start()
        assert changes.get(timeout=PATIENCE) is True
        alice_channel.send(b"after the drain")
        bob.close()
        bob = SkytaleClient(second_endpoint, str(tmp_path / "bob"), b"bob")
        bob_inbox = inbox(bob.open_channel(CHANNEL))
        assert take(bob_inbox, 2) == [b"before the drain", b"after the drain"]
    finally:
        alice.close()
        bob.close()
        second.stop()
    native = [record.getMessage() for record in caplog.records if record.name.startswith("skytale_sdk.native.")]
    loud = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert any(
        "the relay is draining; reconnecting" in message and f"next={second_endpoint}" in message for message in native
    ), native
    assert any(
        "connected to another relay endpoint (failover)" in message
        and f"endpoint={second_endpoint}" in message
        and f"from={first.endpoint}" in message
        for message in native
    ), native
    # A drain is expected: the failed attempts while the replacement starts are not warnings.
    assert loud == []

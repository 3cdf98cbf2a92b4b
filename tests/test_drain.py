"""Graceful drain (docs/operations.md, "Graceful drain"): a relay stopped with SIGTERM under traffic answers what it
was sent, tells its clients it is draining and exits 0; restarted on the same port and data directory, it is
reconnected to with nothing reaching the application: no exception, no message lost or delivered twice, and
nothing logged above INFO. ``skytale dev`` drains the same way."""

from __future__ import annotations

import logging
import queue
import time

from channels import Sender, form_channel, inbox, payloads, take
from conftest import DevStack
from skytale_sdk import SkytaleChannelManager

CHANNEL = "acme/team/general"
# Only there so that a stuck sender fails the test instead of hanging it.
PATIENCE = 60.0


def test_sigterm_under_traffic_then_a_restart_is_invisible_to_the_application(relay, make_client, caplog):
    caplog.set_level(logging.INFO, logger="skytale_sdk")
    alice, bob = make_client("alice"), make_client("bob")
    alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])
    changes: queue.Queue[bool] = queue.Queue()
    alice.on_connection_change(changes.put)
    total = 300
    sent = payloads("drain", total)
    bob_inbox = inbox(bob_channel)
    # No retry: send() is expected to ride out the drain and the restart on its own.
    sender = Sender(alice_channel, sent)
    received = take(bob_inbox, 100)
    signalled = time.monotonic()
    exit_code = relay.terminate()
    exited_after = time.monotonic() - signalled
    relay.start()  # same port, same data directory
    received += take(bob_inbox, total - 100)
    sender_failures = sender.finish()

    alice_channel.send(b"after restart")
    received += take(bob_inbox, 1)
    seen = [changes.get_nowait() for _ in range(changes.qsize())]
    native = [record for record in caplog.records if record.name.startswith("skytale_sdk.native.")]
    loud = [f"{record.levelname} {record.getMessage()}" for record in native if record.levelno >= logging.WARNING]
    # What the application saw, for the test log.
    print(f"relay exited {exit_code} {exited_after:.2f}s after SIGTERM; connection changes {seen}; loud records {loud}")

    assert exit_code == 0, relay.log_path.read_text()
    assert sender_failures == []
    assert received == sent + [b"after restart"]
    assert seen == [False, True]
    assert loud == []
    assert any("relay is draining" in record.getMessage() for record in native)
    assert " ERROR " not in relay.log_path.read_text()


def test_skytale_dev_drains_on_sigterm_and_exits_0(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="skytale_sdk")
    stack = DevStack(tmp_path / "dev")
    stack.start()
    try:
        for name, value in stack.env.items():
            monkeypatch.setenv(name, value)
        with SkytaleChannelManager("alice", data_dir=str(tmp_path / "alice")) as alice:
            alice.create("myorg/tests/drain")
            alice.send("myorg/tests/drain", "before the drain")
            changes: queue.Queue[bool] = queue.Queue()
            alice.on_connection_change(changes.put)
            exit_code = stack.terminate()
            assert changes.get(timeout=PATIENCE) is False
    finally:
        stack.stop()
    native = [record for record in caplog.records if record.name.startswith("skytale_sdk.native.")]
    assert exit_code == 0, stack.log_path.read_text()
    assert any("relay is draining" in record.getMessage() for record in native)
    assert [record.getMessage() for record in native if record.levelno >= logging.ERROR] == []
    assert " ERROR " not in stack.log_path.read_text()

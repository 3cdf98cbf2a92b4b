"""Processes: the relay killed mid-stream, a client process killed while others keep talking, and a second
process refused the data_dir of a running one."""

from __future__ import annotations

import asyncio
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from channels import Sender, form_channel, inbox, payloads, take, wait_until
from skytale_sdk import DataDirError, SkytaleChannelManager, SkytaleClient
from skytale_sdk.aio import AsyncSkytaleChannelManager

CHANNEL = "acme/team/general"
AGENT_SCRIPT = Path(__file__).with_name("agent.py")
# Only there so that a missing report fails a test instead of hanging it.
PATIENCE = 60.0


def test_relay_killed_mid_stream_loses_and_duplicates_nothing(relay, make_client):
    alice_channel, bob_channel = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    total = 400
    sent = payloads("alice", total)

    bob_inbox = inbox(bob_channel)
    # send() returns only once the relay stored the message; while the relay is down the client reconnects on its
    # own. A transport error means "not stored": retrying is then the caller's job.
    sender = Sender(alice_channel, sent, retry=True)
    received = take(bob_inbox, 100)
    relay.kill()
    relay.start()  # same port, same data directory
    received += take(bob_inbox, total - 100)
    assert sender.finish() == []

    alice_channel.send(b"after recovery")
    received += take(bob_inbox, 1)
    assert received == sent + [b"after recovery"]


class AgentProcess:
    """``tests/agent.py`` in a child process, read line by line."""

    def __init__(self, endpoint: str, data_dir: Path, identity: str, mode: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(AGENT_SCRIPT), endpoint, str(data_dir), identity, CHANNEL, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def read(self, kind: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"agent exited (code {self.process.poll()}) while the test expected '{kind}'"
        found_kind, _, value = line.rstrip("\n").partition(" ")
        assert found_kind == kind, f"expected '{kind}', agent printed {line!r}"
        return value

    def read_messages(self, count: int) -> list[bytes]:
        return [bytes.fromhex(self.read("message")) for _ in range(count)]

    def write(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def test_killed_client_process_gets_exactly_the_missed_messages_on_restart(relay, make_client, tmp_path):
    alice = make_client("alice")
    alice_channel = alice.create_channel(CHANNEL)
    bob_dir = tmp_path / "bob-agent"

    bob = AgentProcess(relay.endpoint, bob_dir, "bob", "join")
    try:
        bob.write(alice_channel.add_member(bytes.fromhex(bob.read("key-package"))).hex())
        bob.read("ready")
        before = payloads("before", 5)
        for payload in before:
            alice_channel.send(payload)
        assert bob.read_messages(len(before)) == before
    finally:
        bob.kill()

    missed = payloads("missed", 20)
    for payload in missed:
        alice_channel.send(payload)

    bob = AgentProcess(relay.endpoint, bob_dir, "bob", "resume")
    try:
        bob.read("ready")
        assert bob.read_messages(len(missed)) == missed
        # The next line is the next live message: nothing before it was delivered twice.
        alice_channel.send(b"live")
        assert bob.read_messages(1) == [b"live"]
    finally:
        bob.kill()


def test_connected_and_the_callbacks_say_whether_the_relay_is_there(relay, make_client, tmp_path):
    client = make_client("alice")
    client_changes: queue.Queue[bool] = queue.Queue()
    client.on_connection_change(client_changes.put)
    with SkytaleChannelManager(identity="bob", endpoint=relay.endpoint, data_dir=str(tmp_path / "bob")) as bob:
        manager_changes: queue.Queue[bool] = queue.Queue()
        bob.on_connection_change(manager_changes.put)
        assert client.connected and bob.connected
        for _ in range(2):
            relay.kill()
            assert client_changes.get(timeout=PATIENCE) is False
            assert manager_changes.get(timeout=PATIENCE) is False
            assert not client.connected and not bob.connected
            relay.start()  # same port, same data directory
            assert client_changes.get(timeout=PATIENCE) is True
            assert manager_changes.get(timeout=PATIENCE) is True
            wait_until(lambda: client.connected and bob.connected)
    client.close()
    assert not client.connected
    # Closing is not a disconnection: nothing more was reported.
    assert client_changes.empty() and manager_changes.empty()


def test_a_connection_callback_that_raises_is_reported_and_still_called(relay, make_client, monkeypatch):
    raised: queue.Queue[BaseException | None] = queue.Queue()
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: raised.put(unraisable.exc_value))
    calls: list[bool] = []

    def callback(connected: bool) -> None:
        calls.append(connected)
        raise ValueError(f"callback failed with connected={connected}")

    client = make_client("alice")
    client.on_connection_change(callback)
    relay.kill()
    assert str(raised.get(timeout=PATIENCE)) == "callback failed with connected=False"
    relay.start()
    assert str(raised.get(timeout=PATIENCE)) == "callback failed with connected=True"
    assert calls == [False, True]
    client.on_connection_change(None)
    relay.kill()
    wait_until(lambda: not client.connected)
    client.close()
    assert calls == [False, True]


def test_the_async_connection_callback_runs_on_the_loop(relay, tmp_path):
    async def scenario() -> None:
        loop_thread = threading.get_ident()
        changes: asyncio.Queue[tuple[bool, int]] = asyncio.Queue()
        async with await AsyncSkytaleChannelManager.open(
            "alice", endpoint=relay.endpoint, data_dir=str(tmp_path / "alice")
        ) as alice:
            alice.on_connection_change(lambda connected: changes.put_nowait((connected, threading.get_ident())))
            relay.kill()
            assert await asyncio.wait_for(changes.get(), PATIENCE) == (False, loop_thread)
            relay.start()
            assert await asyncio.wait_for(changes.get(), PATIENCE) == (True, loop_thread)

    asyncio.run(scenario())


def test_a_second_process_on_a_data_dir_is_refused_naming_the_holder_and_the_first_keeps_working(
    relay, make_client, tmp_path
):
    alice_channel = make_client("alice").create_channel(CHANNEL)
    bob_dir = tmp_path / "bob-agent"
    bob = AgentProcess(relay.endpoint, bob_dir, "bob", "join")
    try:
        bob.write(alice_channel.add_member(bytes.fromhex(bob.read("key-package"))).hex())
        bob.read("ready")
        in_use = f"data_dir error: {bob_dir} is in use by process {bob.process.pid}"
        with pytest.raises(DataDirError, match="^" + in_use) as refused:
            SkytaleClient(relay.endpoint, str(bob_dir), b"bob")
        assert "SKYTALE_DATA_DIR" in str(refused.value)
        assert refused.value.code == "data_dir"
        with pytest.raises(DataDirError, match="^" + in_use):
            SkytaleChannelManager(identity="bob", endpoint=relay.endpoint, data_dir=str(bob_dir))

        alice_channel.send(b"still delivered")
        assert bob.read_messages(1) == [b"still delivered"]
    finally:
        bob.kill()
    # The lock went with the process: the directory opens again, with bob's channel in it.
    with SkytaleClient(relay.endpoint, str(bob_dir), b"bob") as again:
        assert again.channels() == [CHANNEL]

"""Crashes: the relay killed mid-stream, a client process killed while others keep talking."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from channels import form_channel, inbox, payloads, take
from skytale_sdk import TransportError

CHANNEL = "acme/team/general"
AGENT_SCRIPT = Path(__file__).with_name("agent.py")


def test_relay_killed_mid_stream_loses_and_duplicates_nothing(relay, make_client):
    alice_channel, bob_channel = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    total = 400
    sent = payloads("alice", total)

    def send_all():
        for payload in sent:
            # send() returns only once the relay stored the message; while the relay is down the client
            # reconnects on its own. A transport error means "not stored": retrying is then the caller's job.
            while True:
                try:
                    alice_channel.send(payload)
                    break
                except TransportError:
                    continue

    bob_inbox = inbox(bob_channel)
    sender = threading.Thread(target=send_all)
    sender.start()
    received = take(bob_inbox, 100)
    relay.kill()
    relay.start()  # same port, same data directory
    received += take(bob_inbox, total - 100)
    sender.join()

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

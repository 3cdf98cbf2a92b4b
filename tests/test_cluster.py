"""Two `skytale relay` processes over one 3-server NATS JetStream cluster (`--store nats://...`, R3) are one
Delivery Service: clients given both endpoints talk through either, and when the relay a client uses dies, the
client moves to the other and nothing is lost or duplicated (docs/relay.md, "The JetStream log")."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from channels import Sender, form_channel, inbox, payloads, take
from nats_servers import NatsCluster
from relay_process import REPO_ROOT, RelayProcess, pump_lines
from skytale_sdk import SkytaleClient

CHANNEL = "acme/cluster/general"
# Only there so that a stuck script fails the test instead of hanging it: the whole topology starts in seconds.
CLUSTER_STARTUP = 180.0
CLUSTER_EXPORTS = ("SKYTALE_RELAY", "SKYTALE_API_URL", "SKYTALE_ALT_API_URL", "SKYTALE_API_KEY")


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "nats")
    yield cluster
    cluster.stop()


@pytest.fixture
def relays(tmp_path: Path, nats: NatsCluster) -> Iterator[list[RelayProcess]]:
    started = []
    for index in range(2):
        relay = RelayProcess(tmp_path / f"relay{index}", tmp_path / f"relay{index}.log", store=nats.urls)
        relay.start()
        started.append(relay)
    yield started
    for relay in started:
        relay.stop()


def test_members_on_different_relays_share_one_channel(tmp_path: Path, relays: list[RelayProcess]) -> None:
    alice = SkytaleClient(relays[0].endpoint, str(tmp_path / "alice"), b"alice")
    bob = SkytaleClient(relays[1].endpoint, str(tmp_path / "bob"), b"bob")
    try:
        alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])
        alice_channel.send(b"from alice, stored by relay 0")
        bob_channel.send(b"from bob, stored by relay 1")
        assert take(inbox(bob_channel), 1) == [b"from alice, stored by relay 0"]
        assert take(inbox(alice_channel), 1) == [b"from bob, stored by relay 1"]
    finally:
        alice.close()
        bob.close()


def test_a_client_moves_to_the_other_relay_when_its_relay_dies_and_nothing_is_lost_or_duplicated(
    tmp_path: Path, relays: list[RelayProcess]
) -> None:
    both = ",".join(relay.endpoint for relay in relays)
    # Both start on relay 0, the first endpoint; relay 1 is where they go.
    alice = SkytaleClient(both, str(tmp_path / "alice"), b"alice")
    bob = SkytaleClient(both, str(tmp_path / "bob"), b"bob")
    try:
        alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])
        total = 300
        sent = payloads("alice", total)
        bob_inbox = inbox(bob_channel)
        sender = Sender(alice_channel, sent)
        received = take(bob_inbox, 100)
        relays[0].kill()
        received += take(bob_inbox, total - 100)
        assert sender.finish() == []
        alice_channel.send(b"after the fail-over")
        received += take(bob_inbox, 1)
        assert received == sent + [b"after the fail-over"]
    finally:
        alice.close()
        bob.close()


def test_the_quickstart_example_runs_unchanged_against_scripts_cluster_sh(tmp_path: Path) -> None:
    cluster = subprocess.Popen(
        [str(REPO_ROOT / "scripts" / "cluster.sh")], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert cluster.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=pump_lines, args=(cluster.stdout, lines), daemon=True).start()
        exports: dict[str, str] = {}
        while len(exports) < len(CLUSTER_EXPORTS):
            line = lines.get(timeout=CLUSTER_STARTUP)
            assert line is not None, f"scripts/cluster.sh exited with {cluster.wait()} before printing its exports"
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = value
        assert sorted(exports) == sorted(CLUSTER_EXPORTS)
        assert len(exports["SKYTALE_RELAY"].split(",")) == 2

        example = subprocess.run(
            [sys.executable, str(REPO_ROOT / "examples" / "full_example.py")],
            env={**os.environ, **exports, "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=CLUSTER_STARTUP,
        )
        assert example.returncode == 0, example.stderr
        assert "Bob received: Hello from Alice!" in example.stdout
        assert "Bob received: Another message!" in example.stdout
    finally:
        cluster.send_signal(signal.SIGTERM)
        assert cluster.wait(timeout=60) == 0


def test_killing_the_log_streams_leader_while_clients_send_loses_and_duplicates_nothing(
    tmp_path: Path, nats: NatsCluster, relays: list[RelayProcess]
) -> None:
    both = ",".join(relay.endpoint for relay in relays)
    alice = SkytaleClient(both, str(tmp_path / "alice"), b"alice")
    bob = SkytaleClient(relays[1].endpoint + "," + relays[0].endpoint, str(tmp_path / "bob"), b"bob")
    try:
        alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])
        sent = payloads("alice", 300)
        bob_inbox = inbox(bob_channel)
        sender = Sender(alice_channel, sent)
        received = take(bob_inbox, 100)
        nats.kill(nats.stream_leader("SKYTALE_LOG"))
        received += take(bob_inbox, len(sent) - 100)
        assert sender.finish() == []
        assert received == sent
    finally:
        alice.close()
        bob.close()


def test_restarting_every_relay_and_every_nats_server_in_turn_under_traffic_loses_nothing(
    tmp_path: Path, nats: NatsCluster, relays: list[RelayProcess]
) -> None:
    both = ",".join(relay.endpoint for relay in relays)
    alice = SkytaleClient(both, str(tmp_path / "alice"), b"alice")
    bob = SkytaleClient(both, str(tmp_path / "bob"), b"bob")
    restarts: list[Callable[[], None]] = [relays[0].kill, relays[0].start, relays[1].kill, relays[1].start]
    for index in range(3):
        restarts += [lambda index=index: nats.kill(index), lambda index=index: nats.restart(index)]
    try:
        alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])
        sent = payloads("alice", 50 * (len(restarts) + 1))
        bob_inbox = inbox(bob_channel)
        sender = Sender(alice_channel, sent)
        received = take(bob_inbox, 50)
        for restart in restarts:
            restart()
            received += take(bob_inbox, 50)
        assert sender.finish() == []
        assert received == sent
    finally:
        alice.close()
        bob.close()

"""Two `skytale relay` processes over one 3-server NATS JetStream cluster (`--store nats://...`, R3) are one
Delivery Service: clients given both endpoints talk through either, and when the relay a client uses dies, the
client moves to the other and nothing is lost or duplicated (docs/relay.md, "The JetStream log"). Against
`scripts/cluster.sh`, whose two API instances share one PostgreSQL, a joiner on one instance is admitted by an owner
on the other at once (docs/api.md, "Several instances on one PostgreSQL")."""

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

from channels import RECEIVE_TIMEOUT, Sender, form_channel, inbox, payloads, take
from nats_servers import NatsCluster
from relay_process import REPO_ROOT, RelayProcess, pump_lines
from skytale_sdk import SkytaleChannelManager, SkytaleClient

CHANNEL = "acme/cluster/general"
# Only there so that a stuck script fails the test instead of hanging it: the whole topology starts in seconds.
CLUSTER_STARTUP = 180.0
CLUSTER_EXPORTS = ("SKYTALE_RELAY", "SKYTALE_API_URL", "SKYTALE_ALT_API_URL", "SKYTALE_API_KEY")
# In org `myorg`, the org of the API key scripts/cluster.sh creates.
INVITE_CHANNEL = "myorg/cluster/invites"
# The joiner's whole wait for admission. The owner polls for join requests 25 s at a time (LONG_POLL_WAIT in
# crates/client/src/api.rs, not configurable) from `create` on, and the joiner polls for its Welcome for what is
# left of this timeout: so an owner that only sees the request when its poll runs out answers too late, and a
# joiner that is not woken by the Welcome fails with a TransportError (timed out).
CROSS_INSTANCE_JOIN_TIMEOUT = 10.0


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


@pytest.fixture
def cluster_sh() -> Iterator[dict[str, str]]:
    """`scripts/cluster.sh` running, as the `export` lines it printed; stopped afterwards, which must be clean."""
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
        yield exports
    finally:
        cluster.send_signal(signal.SIGTERM)
        assert cluster.wait(timeout=60) == 0


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


def test_the_quickstart_example_runs_unchanged_against_scripts_cluster_sh(
    tmp_path: Path, cluster_sh: dict[str, str]
) -> None:
    example = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "full_example.py")],
        env={**os.environ, **cluster_sh, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=CLUSTER_STARTUP,
    )
    assert example.returncode == 0, example.stderr
    assert "Bob received: Hello from Alice!" in example.stdout
    assert "Bob received: Another message!" in example.stdout


def test_a_joiner_on_another_api_instance_is_admitted_without_waiting_out_a_long_poll(
    tmp_path: Path, cluster_sh: dict[str, str]
) -> None:
    owner_api, joiner_api = cluster_sh["SKYTALE_API_URL"], cluster_sh["SKYTALE_ALT_API_URL"]
    assert owner_api != joiner_api, "both API URLs name one instance: nothing would cross between instances"
    relays, api_key = cluster_sh["SKYTALE_RELAY"], cluster_sh["SKYTALE_API_KEY"]
    owner = SkytaleChannelManager(b"owner", relays, str(tmp_path / "owner"), api_key, owner_api)
    joiner = SkytaleChannelManager(b"joiner", relays, str(tmp_path / "joiner"), api_key, joiner_api)
    try:
        # From here the owner long-polls its instance for join requests (the SDK's admission task).
        owner.create(INVITE_CHANNEL)
        token = owner.invite(INVITE_CHANNEL)
        # The request lands on the joiner's instance and must wake the owner's poll on the other one; the owner's
        # Welcome lands on the owner's instance and must wake the joiner's poll. Either wake-up lost, and the
        # join would wait for a poll to run out, which CROSS_INSTANCE_JOIN_TIMEOUT does not allow.
        joiner.join_with_token(INVITE_CHANNEL, token, timeout=CROSS_INSTANCE_JOIN_TIMEOUT)
        owner.send(INVITE_CHANNEL, "from the owner")
        joiner.send(INVITE_CHANNEL, "from the joiner")
        assert joiner.receive(INVITE_CHANNEL, timeout=RECEIVE_TIMEOUT) == ["from the owner"]
        assert owner.receive(INVITE_CHANNEL, timeout=RECEIVE_TIMEOUT) == ["from the joiner"]
    finally:
        owner.close()
        joiner.close()


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

"""The relay's per-account quotas through the SDK, against a real ``skytale dev`` whose relay lets an account
publish a burst of 8 messages and one more a second, and open 2 streams (docs/operations.md, "Quotas"). One
account floods a channel: its sends over the rate raise ``QuotaExceededError`` and are never delivered; the other
account's sends, made meanwhile, all succeed and all arrive. Checked by results: the rate is so low that the flood
is over it however slow the machine."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from conftest import DevStack
from relay_process import SKYTALE_BIN
from skytale_sdk import QuotaExceededError, SkytaleChannelManager

BURST = 8
STREAMS = 2
FLAGS = ("--publishes-per-second", "1", "--publish-burst", str(BURST), "--max-streams-per-account", str(STREAMS))
# Sends the flooding account tries: far beyond its burst and what refills while they run.
FLOOD = 40
# Only there so that a lost message fails the test instead of hanging it; never reached when things work.
PATIENCE = 60.0


@pytest.fixture(scope="module")
def quota_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    stack = DevStack(tmp_path_factory.mktemp("skytale-dev-quotas"), flags=FLAGS)
    stack.start()
    yield stack
    stack.stop()


def new_account_key(stack: DevStack) -> str:
    """A new account in the dev org, made in the running stack's API database with ``skytale keys create``."""
    api_dir = stack.directory / "stack" / "api"
    created = subprocess.run(
        [str(SKYTALE_BIN), "keys", "create", "--org", "myorg", "--name", "tests", "--data-dir", str(api_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for line in created.stdout.splitlines():
        if line.startswith("export SKYTALE_API_KEY="):
            return line.removeprefix("export SKYTALE_API_KEY=").strip()
    raise AssertionError(f"skytale keys create printed no key: {created.stdout!r} {created.stderr!r}")


def manager(stack: DevStack, identity: str, api_key: str) -> SkytaleChannelManager:
    env = stack.env
    return SkytaleChannelManager(identity, env["SKYTALE_RELAY"], api_key=api_key, api_url=env["SKYTALE_API_URL"])


def send_once_refilled(sender: SkytaleChannelManager, channel: str, message: str) -> None:
    """Sends ``message``, again each time the account is over its rate, until its bucket has refilled."""
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            sender.send(channel, message)
            return
        except QuotaExceededError:
            assert time.monotonic() < deadline, "the bucket never refilled"
            time.sleep(0.2)


def receive_exactly(receiver: SkytaleChannelManager, channel: str, count: int) -> list[str]:
    received: list[str] = []
    deadline = time.monotonic() + PATIENCE
    while len(received) < count and time.monotonic() < deadline:
        received += receiver.receive(channel, timeout=PATIENCE)
    return received


def test_an_account_flooding_sends_gets_quota_exceeded_while_another_accounts_sends_all_arrive(
    quota_stack: DevStack,
) -> None:
    channel = "myorg/quotas/flood"
    with (
        manager(quota_stack, "alice", quota_stack.env["SKYTALE_API_KEY"]) as alice,
        manager(quota_stack, "bob", new_account_key(quota_stack)) as bob,
    ):
        alice.create(channel)
        bob.join(channel, alice.add_member(channel, bob.key_package()))

        accepted: list[str] = []
        refusals: list[QuotaExceededError] = []
        bob_sent: list[str] = []
        for i in range(FLOOD):
            try:
                alice.send(channel, f"alice {i}")
                accepted.append(f"alice {i}")
            except QuotaExceededError as refusal:
                refusals.append(refusal)
            if i % 8 == 0:  # five sends: within Bob's own burst, whatever Alice does
                bob.send(channel, f"bob {i}")
                bob_sent.append(f"bob {i}")

        assert refusals, f"all {FLOOD} sends of the flooding account were accepted"
        assert len(accepted) <= FLOOD - 10, accepted
        message = str(refusals[0])
        assert refusals[0].code == "quota"
        assert "quota_exceeded" in message and "publish rate" in message and "--publishes-per-second" in message
        # The other account's sends all arrive, and exactly the flooding account's accepted ones do, in order.
        assert receive_exactly(alice, channel, len(bob_sent)) == bob_sent
        assert receive_exactly(bob, channel, len(accepted)) == accepted

        # The flooding account's stream stays usable: once its bucket refills (a second), a send succeeds.
        send_once_refilled(alice, channel, "after the flood")
        assert receive_exactly(bob, channel, 1) == ["after the flood"]


def test_a_client_whose_account_has_its_streams_open_gets_quota_exceeded_until_one_closes(
    quota_stack: DevStack,
) -> None:
    key = new_account_key(quota_stack)
    first = manager(quota_stack, "carol-1", key)
    with manager(quota_stack, "carol-2", key):
        with pytest.raises(QuotaExceededError) as refused:
            manager(quota_stack, "carol-3", key)
        message = str(refused.value)
        assert refused.value.code == "quota"
        assert f"has {STREAMS} streams open" in message and "--max-streams-per-account" in message, message
        # Another account connects meanwhile.
        manager(quota_stack, "dave", new_account_key(quota_stack)).close()
        # Once a stream of the account ends, a client connects again (the relay frees the slot as it notices).
        first.close()
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                manager(quota_stack, "carol-3", key).close()
                break
            except QuotaExceededError:
                assert time.monotonic() < deadline, "the closed client's stream never freed its slot"
                time.sleep(0.1)


def test_messages_after_a_flood_of_refusals_longer_than_the_receivers_key_window_still_decrypt(
    quota_stack: DevStack,
) -> None:
    # Each refused message used a key of the sender's ratchet; receivers derive at most 1 024 keys ahead of the last
    # message they read, so the sender must start a new epoch before its next message lands beyond that.
    channel = "myorg/quotas/gap"
    flood = [f"flood {i}".encode() for i in range(1_100)]
    with (
        manager(quota_stack, "erin", new_account_key(quota_stack)) as erin,
        manager(quota_stack, "frank", new_account_key(quota_stack)) as frank,
    ):
        erin.create(channel)
        frank.join(channel, erin.add_member(channel, frank.key_package()))
        with pytest.raises(QuotaExceededError) as refused:
            erin.send_many(channel, flood)
        assert "of the batch's 1100 messages were stored" in str(refused.value)

        send_once_refilled(erin, channel, "after the flood")
        deadline = time.monotonic() + PATIENCE
        received: list[str] = []
        while "after the flood" not in received and time.monotonic() < deadline:
            received += frank.receive(channel, timeout=PATIENCE)
        assert received[-1] == "after the flood", received
        assert all(message.startswith("flood ") for message in received[:-1]), received

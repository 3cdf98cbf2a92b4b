"""``Channel.send_many`` and ``SkytaleChannelManager.send_many`` against a real relay: order, oversized payloads
refused before anything is sent, a relay killed mid-batch, and ``receive()`` returning a whole acknowledged batch
in one call."""

from __future__ import annotations

import threading

import pytest

from channels import form_channel, inbox, payloads, take
from conftest import DevStack
from skytale_sdk import ChannelError, SkytaleChannelManager

CHANNEL = "acme/team/batch"
PATIENCE = 60.0


def test_send_many_keeps_order(make_client) -> None:
    alice, bob = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    first, second = payloads("first", 300), payloads("second", 5)
    alice.send_many(first)
    alice.send(b"single")
    alice.send_many(second)
    alice.send_many([])
    assert take(inbox(bob), 306) == first + [b"single"] + second


def test_an_oversized_payload_fails_the_batch_before_anything_is_sent(make_relay, make_client) -> None:
    relay = make_relay(max_payload=4096)
    alice_client, bob_client = make_client("alice", relay.endpoint), make_client("bob", relay.endpoint)
    alice, bob = form_channel(CHANNEL, [alice_client, bob_client])
    too_large = b"x" * (alice_client.max_payload + 1)
    refused = (
        r"payload 1 of the batch \(4097 bytes\) exceeds the relay limit of 4096 bytes once encrypted "
        r"\(an MLS message of \d+ bytes\); send at most \d+ bytes per message; nothing was sent"
    )
    with pytest.raises(ChannelError, match=refused):
        alice.send_many([b"before", too_large, b"after"])
    alice.send(b"marker")
    # Nothing of the refused batch reached the relay: the marker is the first message bob gets.
    assert take(inbox(bob), 1) == [b"marker"]


def test_relay_killed_mid_batch_loses_and_duplicates_nothing(relay, make_client) -> None:
    alice, bob = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    sent = payloads("alice", 3000)
    failures: list[BaseException] = []

    def send_batch() -> None:
        try:
            alice.send_many(sent)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    bob_inbox = inbox(bob)
    sender = threading.Thread(target=send_batch)
    sender.start()
    received = take(bob_inbox, 100)
    relay.kill()
    relay.start()  # same port, same data directory: the client reconnects and resends what was not answered
    received += take(bob_inbox, len(sent) - 100)
    sender.join()
    assert failures == []
    alice.send(b"after recovery")
    received += take(bob_inbox, 1)
    assert received == sent + [b"after recovery"]


def test_manager_send_many_comes_back_in_one_receive(dev_env: DevStack, channel_name: str) -> None:
    """Everything acknowledged before ``receive()`` is called comes back in that one call, however many."""
    with SkytaleChannelManager("alice") as alice, SkytaleChannelManager("bob") as bob:
        alice.create(channel_name)
        bob.join(channel_name, alice.add_member(channel_name, bob.key_package()))
        for burst in range(3):
            sent = [f"burst {burst} message {index}" for index in range(500)]
            alice.send_many(channel_name, sent)
            assert bob.receive(channel_name, timeout=PATIENCE) == sent
        assert bob.receive(channel_name, timeout=0) == []


def test_receive_waiting_before_the_send_gets_the_message(dev_env: DevStack, channel_name: str) -> None:
    """A ``receive()`` that started waiting before anything was sent returns as soon as messages come, with at
    least the first of them, and loses none over the following calls."""
    with SkytaleChannelManager("alice") as alice, SkytaleChannelManager("bob") as bob:
        alice.create(channel_name)
        bob.join(channel_name, alice.add_member(channel_name, bob.key_package()))
        results: list[list[str]] = []
        waiting = threading.Thread(target=lambda: results.append(bob.receive(channel_name, timeout=PATIENCE)))
        waiting.start()
        sent = [f"m{index}" for index in range(50)]
        alice.send_many(channel_name, sent)
        waiting.join()
        received = results[0]
        assert received and received == sent[: len(received)]
        while len(received) < len(sent):
            more = bob.receive(channel_name, timeout=PATIENCE)
            assert more
            received += more
        assert received == sent

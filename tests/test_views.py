"""Several consumers of one channel: the manager's ``receive()`` and each ``ChannelView`` see every message."""

from __future__ import annotations

import asyncio
import time

import pytest

from conftest import DevStack
from skytale_sdk import ChannelError, Envelope, Protocol, SkytaleChannelManager
from skytale_sdk.aio import AsyncChannelView
from test_manager import PATIENCE, pair, receive_exactly


def view_receive_exactly(view, count: int) -> list[bytes]:
    received: list[bytes] = []
    deadline = time.monotonic() + PATIENCE
    while len(received) < count and time.monotonic() < deadline:
        received += view.receive(timeout=PATIENCE)
    return received


def test_two_views_and_receive_each_get_every_message(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, bob.view(channel_name) as first, bob.view(channel_name) as second:
        sent = [f"message {i}" for i in range(50)]
        for text in sent:
            alice.send(channel_name, text)
        assert view_receive_exactly(first, 50) == [text.encode() for text in sent]
        assert receive_exactly(bob, channel_name, 50) == sent
        assert view_receive_exactly(second, 50) == [text.encode() for text in sent]
        assert first.pending() == second.pending() == bob.pending(channel_name) == 0


def test_a_view_sees_only_what_arrives_after_it_opened(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        alice.send(channel_name, "before")
        assert receive_exactly(bob, channel_name, 1) == ["before"]
        with bob.view(channel_name) as view:
            alice.send(channel_name, "after")
            assert view_receive_exactly(view, 1) == [b"after"]


def test_a_closed_view_says_so_and_no_longer_holds_the_channel(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name, buffer_limit=5)
    with alice, bob:
        view = bob.view(channel_name)
        view.close()
        view.close()
        with pytest.raises(ChannelError, match="view of the channel is closed"):
            view.receive(timeout=0.1)
        # The closed view's inbox is gone, so it cannot fill up and pause the listener for the manager's inbox.
        for i in range(4):
            alice.send(channel_name, f"m{i}")
        assert receive_exactly(bob, channel_name, 4) == [f"m{i}" for i in range(4)]


def test_unknown_channel_view_is_a_channel_error(dev_env: DevStack) -> None:
    with SkytaleChannelManager("alice") as alice:
        with pytest.raises(ChannelError, match="unknown channel"):
            alice.view("acme/none/here")


def test_async_views_each_get_every_message(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def consume() -> None:
        first = AsyncChannelView(bob.view(channel_name))
        second = AsyncChannelView(bob.view(channel_name))
        async with first, second:
            for i in range(10):
                await asyncio.to_thread(alice.send, channel_name, f"m{i}")
            iterated = []
            async for payload in first:
                iterated.append(payload)
                if len(iterated) == 10:
                    break
            received: list[bytes] = []
            while len(received) < 10:
                received += await second.receive(timeout=PATIENCE)
            expected = [f"m{i}".encode() for i in range(10)]
            assert iterated == expected
            assert received == expected

    with alice, bob:
        asyncio.run(consume())
        # Neither view drained the manager's own inbox.
        assert receive_exactly(bob, channel_name, 10) == [f"m{i}" for i in range(10)]


def test_received_messages_and_envelopes_carry_the_authenticated_sender(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, SkytaleChannelManager("carol") as carol:
        carol.join(channel_name, alice.add_member(channel_name, carol.key_package()))
        with bob.view(channel_name) as view, bob.view(channel_name) as envelopes:
            # Carol writes Alice's name into the metadata: the sender is still Carol.
            forged = Envelope(Protocol.SLIM, "text/plain", b"from carol", {"from": "alice"})
            alice.send(channel_name, "from alice")  # acknowledged, so it is first on the channel
            carol.send_envelope(channel_name, forged)
            messages = []
            deadline = time.monotonic() + PATIENCE
            while len(messages) < 2 and time.monotonic() < deadline:
                messages += view.receive_messages(timeout=PATIENCE)
            expected = [(b"alice", b"from alice"), (b"carol", forged.serialize())]
            assert [(m.sender, m.payload) for m in messages] == expected
            assert messages[0].seq < messages[1].seq

            received = []
            while len(received) < 2 and time.monotonic() < deadline:
                received += envelopes.receive_envelopes(timeout=PATIENCE)
            assert [e.sender for e in received] == [b"alice", b"carol"]
            assert received[0].protocol is Protocol.RAW and received[0].payload == b"from alice"
            assert received[1] == forged and received[1].metadata == {"from": "alice"}

        by_manager = []
        while len(by_manager) < 2 and time.monotonic() < deadline:
            by_manager += bob.receive_envelopes(channel_name, timeout=PATIENCE)
        assert [e.sender for e in by_manager] == [b"alice", b"carol"]


def test_async_views_receive_messages_with_their_sender(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def consume() -> None:
        async with AsyncChannelView(bob.view(channel_name)) as view:
            await asyncio.to_thread(alice.send, channel_name, "hello")
            messages = []
            while not messages:
                messages = await view.receive_messages(timeout=PATIENCE)
            assert [(m.sender, m.payload) for m in messages] == [(b"alice", b"hello")]

    with alice, bob:
        asyncio.run(consume())

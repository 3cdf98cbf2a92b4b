"""skytale_sdk.aio against a real ``skytale dev``: awaiting never blocks the loop, cancelling never loses."""

from __future__ import annotations

import asyncio

from conftest import DevStack
from skytale_sdk.aio import AsyncSkytaleChannelManager
from skytale_sdk.envelope import Envelope, Protocol

# Only there so that a lost message fails a test instead of hanging it.
PATIENCE = 60.0


async def pair(channel: str) -> tuple[AsyncSkytaleChannelManager, AsyncSkytaleChannelManager]:
    alice = await AsyncSkytaleChannelManager.open("alice")
    bob = await AsyncSkytaleChannelManager.open("bob")
    await alice.create(channel)
    await bob.join(channel, await alice.add_member(channel, await bob.key_package()))
    return alice, bob


def test_send_and_receive_with_invites(dev_env: DevStack, channel_name: str) -> None:
    async def scenario() -> None:
        async with (
            await AsyncSkytaleChannelManager.open("alice") as alice,
            await AsyncSkytaleChannelManager.open("bob") as bob,
        ):
            await alice.create(channel_name)
            token = await alice.invite(channel_name)
            await bob.join_with_token(channel_name, token)
            assert await bob.list_channels() == [channel_name]
            await alice.send(channel_name, "one")
            assert await bob.receive(channel_name, timeout=PATIENCE) == ["one"]
            envelope = Envelope(Protocol.MCP, "application/json", b'{"jsonrpc":"2.0"}')
            await alice.send_envelope(channel_name, envelope)
            assert await bob.receive_envelopes(channel_name, timeout=PATIENCE) == [envelope]
            assert await bob.receive(channel_name, timeout=0.2) == []

    asyncio.run(scenario())


def test_receive_messages_members_and_leave(dev_env: DevStack, channel_name: str) -> None:
    async def scenario() -> None:
        alice, bob = await pair(channel_name)
        async with alice, bob:
            assert sorted(await bob.members(channel_name)) == [b"alice", b"bob"]
            await alice.send(channel_name, "with metadata")
            [message] = await bob.receive_messages(channel_name, timeout=PATIENCE)
            assert (message.payload, message.sender) == (b"with metadata", b"alice")
            await bob.leave(channel_name)
            assert await bob.list_channels() == []
            while await alice.members(channel_name) != [b"alice"]:
                await asyncio.sleep(0.02)  # until Alice applied Bob's leave (bounded by the wait_for below)

    asyncio.run(asyncio.wait_for(scenario(), PATIENCE))


def test_receive_waits_without_blocking_the_loop(dev_env: DevStack, channel_name: str) -> None:
    async def scenario() -> None:
        alice, bob = await pair(channel_name)
        async with alice, bob:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            ticking = asyncio.create_task(ticker())
            waiting = asyncio.create_task(bob.receive(channel_name, timeout=PATIENCE))
            await asyncio.sleep(0.3)
            ticks_while_waiting = ticks
            await alice.send(channel_name, "arrived")
            assert await waiting == ["arrived"]
            ticking.cancel()
            # The loop kept running other tasks while receive() waited.
            assert ticks_while_waiting > 1

    asyncio.run(scenario())


def test_a_cancelled_receive_loses_nothing(dev_env: DevStack, channel_name: str) -> None:
    async def scenario() -> None:
        alice, bob = await pair(channel_name)
        async with alice, bob:
            waiting = asyncio.create_task(bob.receive(channel_name, timeout=PATIENCE))
            await asyncio.sleep(0.1)
            waiting.cancel()
            await alice.send(channel_name, "kept")
            assert await bob.receive(channel_name, timeout=PATIENCE) == ["kept"]

    asyncio.run(scenario())


def test_async_iteration_yields_in_order_and_keeps_the_rest(dev_env: DevStack, channel_name: str) -> None:
    async def scenario() -> None:
        alice, bob = await pair(channel_name)
        async with alice, bob:
            for i in range(5):
                await alice.send(channel_name, f"m{i}")
            seen: list[str] = []
            async for message in bob.messages(channel_name):
                seen.append(message)
                if len(seen) == 3:
                    break
            assert seen == ["m0", "m1", "m2"]
            rest: list[str] = []
            while len(rest) < 2:
                rest += await bob.receive(channel_name, timeout=PATIENCE)
            assert rest == ["m3", "m4"]

    asyncio.run(scenario())


def test_iteration_ends_when_the_manager_closes(dev_env: DevStack, channel_name: str) -> None:
    async def scenario() -> None:
        alice, bob = await pair(channel_name)
        async with alice:
            await alice.send(channel_name, "last")
            seen: list[str] = []

            async def iterate() -> None:
                async for message in bob.messages(channel_name):
                    seen.append(message)

            iterating = asyncio.create_task(iterate())
            while not seen:
                await asyncio.sleep(0.02)
            await bob.close()
            await asyncio.wait_for(iterating, PATIENCE)
            assert seen == ["last"]

    asyncio.run(scenario())

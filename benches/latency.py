"""Section `latency`: one-way latency p50/p99/p99.9 on an idle channel (one message in flight), through the
relay of a real `skytale dev` on loopback, for 100-byte and 64 KiB payloads, by three receiving APIs:
the native `Channel.messages()` iterator, the manager's `receive()`, and `skytale_sdk.aio`'s `receive()`.
The native loop also records how long each `send()` took (until the relay acknowledged the message as stored):
`native_messages.<size>.send_acked`.

Usage: .venv/bin/python benches/latency.py [--quick]   (prints one JSON object; see docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from measure import one_way_iterator, one_way_receive, one_way_receive_async
from output import emit, progress
from skytale_sdk.aio import AsyncSkytaleChannelManager
from stack import DevStack
from stats import latency_summary

RECEIVE_TIMEOUT_S = 10.0
# (label, payload bytes, samples, warm-up) per size; 64 KiB costs ~10x more per message, so fewer samples
# (its p99.9 is then close to its max, which the sample count in the JSON makes plain).
SIZES = {
    "full": [("100B", 100, 2000, 50), ("64KiB", 65536, 500, 10)],
    "quick": [("100B", 100, 200, 10), ("64KiB", 65536, 50, 5)],
}


def native_messages(stack: DevStack, sizes: list[tuple[str, int, int, int]]) -> dict[str, Any]:
    alice, bob = stack.client("native-alice"), stack.client("native-bob")
    try:
        sender = alice.create_channel("myorg/latency/native")
        receiver = bob.join_channel("myorg/latency/native", sender.add_member(bob.generate_key_package()))
        incoming = receiver.messages(timeout=RECEIVE_TIMEOUT_S)
        figures: dict[str, Any] = {}
        for label, size, samples, warmup in sizes:
            send_times: list[float] = []
            figures[label] = latency_summary(one_way_iterator(sender.send, incoming, size, samples, warmup, send_times))
            figures[label]["send_acked"] = latency_summary(send_times)
        return figures
    finally:
        alice.close()
        bob.close()


def manager_receive(stack: DevStack, sizes: list[tuple[str, int, int, int]]) -> dict[str, Any]:
    channel = "myorg/latency/manager"
    alice, bob = stack.manager("manager-alice"), stack.manager("manager-bob")
    try:
        alice.create(channel)
        bob.join(channel, alice.add_member(channel, bob.key_package()))
        return {
            label: latency_summary(
                one_way_receive(
                    lambda payload: alice.send(channel, payload),
                    lambda: bob.receive(channel, timeout=RECEIVE_TIMEOUT_S),
                    size,
                    samples,
                    warmup,
                )
            )
            for label, size, samples, warmup in sizes
        }
    finally:
        alice.close()
        bob.close()


async def aio_receive(stack: DevStack, sizes: list[tuple[str, int, int, int]]) -> dict[str, Any]:
    channel = "myorg/latency/aio"
    alice = stack.manager("aio-alice")
    bob = await AsyncSkytaleChannelManager.open(
        "aio-bob",
        endpoint=stack.env["SKYTALE_RELAY"],
        data_dir=str(stack.work / "agents" / "aio-bob"),
        api_key=stack.env["SKYTALE_API_KEY"],
        api_url=stack.env["SKYTALE_API_URL"],
    )
    try:
        alice.create(channel)
        await bob.join(channel, alice.add_member(channel, await bob.key_package()))
        figures = {}
        for label, size, samples, warmup in sizes:
            timings = await one_way_receive_async(
                lambda payload: alice.send(channel, payload),
                lambda: bob.receive(channel, timeout=RECEIVE_TIMEOUT_S),
                size,
                samples,
                warmup,
            )
            figures[label] = latency_summary(timings)
        return figures
    finally:
        alice.close()
        await bob.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run")
    args = parser.parse_args()
    sizes = SIZES["quick" if args.quick else "full"]
    with DevStack() as stack:
        progress("native Channel.messages()")
        figures = {"native_messages": native_messages(stack, sizes)}
        progress("manager receive()")
        figures["manager_receive"] = manager_receive(stack, sizes)
        progress("aio receive()")
        figures["aio_receive"] = asyncio.run(aio_receive(stack, sizes))
    emit(figures)


if __name__ == "__main__":
    main()

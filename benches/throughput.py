"""Section `python-throughput`: sustained 1 sender -> 1 receiver through the Python API on a real `skytale dev`
(msgs/s, payload MB/s): back-to-back `Channel.send()` (each returns once the relay has stored the message),
`Channel.send_many()` when this build has it, and a burst of 1 000 messages through the manager (the figure the
peer is compared on).

Usage: .venv/bin/python benches/throughput.py [--quick]   (prints one JSON object; see docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any, Callable

from measure import MeasurementError, burst
from output import emit, progress
from skytale_sdk import Channel
from stack import DevStack
from stats import rate_summary

RECEIVE_TIMEOUT_S = 30.0
BURST_MESSAGES = 1000
BURST_QUIET_S = 10.0  # a receive() that waits this long with nothing new ends the burst: the rest was lost
# (label, payload bytes, messages): 100 B shows the per-message cost, 64 KiB the bytes per second.
RUNS = {"full": [("100B", 100, 5000), ("64KiB", 65536, 500)], "quick": [("100B", 100, 500), ("64KiB", 65536, 50)]}


def timed_transfer(send_all: Callable[[list[bytes]], None], receiver: Channel, payloads: list[bytes]) -> float:
    """Seconds from the first send until a consumer thread has read every payload from `receiver`, in order."""
    received: list[bytes] = []
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            incoming = receiver.messages(timeout=RECEIVE_TIMEOUT_S)
            while len(received) < len(payloads):
                received.append(next(incoming))
        except BaseException as error:  # noqa: BLE001 - re-raised on the main thread below
            failure.append(error)

    consumer = threading.Thread(target=consume)
    consumer.start()
    start = time.perf_counter()
    send_all(payloads)
    consumer.join()
    elapsed = time.perf_counter() - start
    if failure:
        raise MeasurementError(f"receiver failed after {len(received)} of {len(payloads)}: {failure[0]!r}")
    if received != payloads:
        raise MeasurementError(f"receiver got {len(received)} messages, not the {len(payloads)} sent in order")
    return elapsed


def channel_throughput(stack: DevStack, runs: list[Any]) -> dict[str, Any]:
    alice, bob = stack.client("tp-alice"), stack.client("tp-bob")
    try:
        sender = alice.create_channel("myorg/throughput/one")
        receiver = bob.join_channel("myorg/throughput/one", sender.add_member(bob.generate_key_package()))
        send_many: Callable[[list[bytes]], None] | None = getattr(sender, "send_many", None)
        figures: dict[str, Any] = {"send": {}, "send_many": {}}
        for label, size, count in runs:
            payloads = [index.to_bytes(8, "big") * (size // 8) + b"x" * (size % 8) for index in range(count)]

            def send_each(batch: list[bytes]) -> None:
                for payload in batch:
                    sender.send(payload)

            progress(f"send() x {count}, {label}")
            figures["send"][label] = rate_summary(count, size, timed_transfer(send_each, receiver, payloads))
            if send_many is None:
                figures["send_many"][label] = {"unavailable": "Channel.send_many does not exist in this build"}
            else:
                progress(f"send_many() x {count}, {label}")
                figures["send_many"][label] = rate_summary(count, size, timed_transfer(send_many, receiver, payloads))
        return figures
    finally:
        alice.close()
        bob.close()


def manager_burst(stack: DevStack, count: int) -> dict[str, Any]:
    channel = "myorg/throughput/burst"
    alice, bob = stack.manager("burst-alice"), stack.manager("burst-bob")
    try:
        alice.create(channel)
        bob.join(channel, alice.add_member(channel, bob.key_package()))
        progress(f"manager burst of {count}")
        delivery = burst(
            lambda payload: alice.send(channel, payload),
            lambda: bob.receive(channel, timeout=BURST_QUIET_S),
            count,
            100,
        )
        if delivery["lost"]:
            raise MeasurementError(f"burst: {delivery['lost']} of {count} messages never arrived")
        return {
            **delivery,
            "all_delivered_ms": delivery["elapsed_s"] * 1000,
            "msgs_per_s": count / delivery["elapsed_s"],
        }
    finally:
        alice.close()
        bob.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    args = parser.parse_args()
    with DevStack() as stack:
        figures = channel_throughput(stack, RUNS["quick" if args.quick else "full"])
        figures["manager_burst"] = manager_burst(stack, BURST_MESSAGES)
    emit(figures)


if __name__ == "__main__":
    main()

"""Section `joins`: invite joins against a real `skytale dev` (relay + API, auth on). The owner's manager admits
joiners in the background as they arrive (several pending joins in one commit).

  * sequential: `join_with_token` wall time, one joiner at a time, each a fresh manager (constructed, and so
    connected, before the clock starts); the group grows by one per join.
  * concurrent: N joiners, one thread each in this process, redeem one invite (max_uses=N) at once: time from
    releasing them until the last `join_with_token` returned. Afterwards each must receive one message from the
    owner, so every join counted is a real membership.

Usage: .venv/bin/python benches/joins.py [--quick]   (prints one JSON object; see docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from measure import MeasurementError
from output import emit, progress
from skytale_sdk import SkytaleChannelManager
from stack import DevStack
from stats import latency_summary

JOIN_TIMEOUT_S = 120.0
COUNTS = {"full": (20, 50), "quick": (5, 10)}


def sequential_joins(stack: DevStack, count: int) -> dict[str, Any]:
    channel = "myorg/joins/sequential"
    owner = stack.manager("seq-owner")
    joiners: list[SkytaleChannelManager] = []
    try:
        owner.create(channel)
        timings = []
        for index in range(count):
            token = owner.invite(channel)
            joiner = stack.manager(f"seq-joiner-{index}")
            joiners.append(joiner)
            start = time.perf_counter()
            joiner.join_with_token(channel, token, timeout=JOIN_TIMEOUT_S)
            timings.append((time.perf_counter() - start) * 1000)
        return {**latency_summary(timings), "final_group_size": count + 1}
    finally:
        for manager in [owner, *joiners]:
            manager.close()


def concurrent_joins(stack: DevStack, count: int) -> dict[str, Any]:
    channel = "myorg/joins/concurrent"
    owner = stack.manager("conc-owner")
    joiners: list[SkytaleChannelManager] = []
    try:
        owner.create(channel)
        token = owner.invite(channel, max_uses=count)
        joiners = [stack.manager(f"conc-joiner-{index}") for index in range(count)]
        release = threading.Barrier(count + 1)
        errors: list[BaseException] = []

        def join(manager: SkytaleChannelManager) -> None:
            release.wait()
            try:
                manager.join_with_token(channel, token, timeout=JOIN_TIMEOUT_S)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=join, args=(joiner,)) for joiner in joiners]
        for thread in threads:
            thread.start()
        release.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed_ms = (time.perf_counter() - start) * 1000
        if errors:
            raise MeasurementError(f"{len(errors)} of {count} joins failed; first: {errors[0]!r}")
        owner.send(channel, "welcome, all")
        for index, joiner in enumerate(joiners):
            if joiner.receive(channel, timeout=30) != ["welcome, all"]:
                raise MeasurementError(f"joiner {index} did not receive the owner's message after joining")
        return {"joiners": count, "all_joined_ms": elapsed_ms}
    finally:
        for manager in [owner, *joiners]:
            manager.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer joiners: a smoke run")
    args = parser.parse_args()
    sequential, concurrent = COUNTS["quick" if args.quick else "full"]
    with DevStack() as stack:
        progress(f"{sequential} sequential joins")
        figures = {"sequential": sequential_joins(stack, sequential)}
        progress(f"{concurrent} joiners at once")
        figures["concurrent"] = concurrent_joins(stack, concurrent)
    emit(figures)


if __name__ == "__main__":
    main()

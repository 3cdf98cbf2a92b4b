"""Runs inside the peer's virtualenv (skytale-sdk 0.5.2 from PyPI), started by `peer.py`: the same timed loops
as ours (`measure.py`) against the peer's mock mode (`mock=True`: an in-memory transport inside this process, no
relay, no network, nothing stored), its best case. Prints one JSON object.

Usage: target/peer-venv/bin/python benches/peer_probe.py [--quick]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from measure import burst, one_way_iterator, one_way_receive
from output import emit, progress
from skytale_sdk import SkytaleChannelManager, SkytaleClient  # the peer's package, in the peer's venv
from stats import latency_summary

BURST_MESSAGES = 1000
BURST_QUIET_S = 3.0  # nothing new for this long ends the burst: the rest was lost
# The peer's manager receive() sleep-polls in 100 ms steps and measured ~0.5 s per message: far fewer samples.
COUNTS = {"full": {"messages": (2000, 500), "receive": (100, 20)}, "quick": {"messages": (200, 50), "receive": (20, 5)}}


def native_messages(samples_100b: int, samples_64k: int) -> dict[str, Any]:
    alice, bob = SkytaleClient(identity=b"alice", mock=True), SkytaleClient(identity=b"bob", mock=True)
    sender = alice.create_channel("peer/latency/native")
    receiver = bob.join_channel("peer/latency/native", sender.add_member(bob.generate_key_package()))
    incoming = receiver.messages()
    return {
        "100B": latency_summary(one_way_iterator(sender.send, incoming, 100, samples_100b, 50)),
        "64KiB": latency_summary(one_way_iterator(sender.send, incoming, 65536, samples_64k, 10)),
    }


def manager_pair(channel: str) -> Any:
    alice = SkytaleChannelManager(identity=b"alice-" + channel.encode(), mock=True)
    bob = SkytaleChannelManager(identity=b"bob-" + channel.encode(), mock=True)
    alice.create(channel)
    bob.join(channel, alice.add_member(channel, bob.key_package()))
    return alice, bob


def manager_receive(samples_100b: int, samples_64k: int) -> dict[str, Any]:
    channel = "peer/latency/manager"
    alice, bob = manager_pair(channel)

    def send(payload: bytes) -> None:
        alice.send(channel, payload)

    def receive() -> Any:
        return bob.receive(channel, timeout=10)

    return {
        "100B": latency_summary(one_way_receive(send, receive, 100, samples_100b, 5)),
        "64KiB": latency_summary(one_way_receive(send, receive, 65536, samples_64k, 2)),
    }


def manager_burst(count: int) -> dict[str, Any]:
    """The 1 000-message burst through the peer's manager; 0.5.2's mock transport drops what does not fit its
    queue without an error, so `lost` is a figure here, not a failure."""
    channel = "peer/throughput/burst"
    alice, bob = manager_pair(channel)
    delivery = burst(
        lambda payload: alice.send(channel, payload), lambda: bob.receive(channel, timeout=BURST_QUIET_S), count, 100
    )
    figures: dict[str, Any] = dict(delivery)
    if delivery["lost"]:
        figures["all_delivered_ms"] = {"unavailable": f"peer lost {delivery['lost']} of {count}, no error raised"}
    else:
        figures.update(all_delivered_ms=delivery["elapsed_s"] * 1000, msgs_per_s=count / delivery["elapsed_s"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    counts = COUNTS["quick" if parser.parse_args().quick else "full"]
    progress("peer: native Channel.messages()")
    figures = {"native_messages": native_messages(*counts["messages"])}
    progress("peer: manager receive()")
    figures["manager_receive"] = manager_receive(*counts["receive"])
    progress(f"peer: manager burst of {BURST_MESSAGES}")
    figures["manager_burst"] = manager_burst(BURST_MESSAGES)
    emit(figures)
    # 0.5.2's native threads abort the interpreter at exit ("FATAL: exception not rethrown"); the figures are
    # out, so leave without running its teardown.
    os._exit(0)


if __name__ == "__main__":
    main()

"""One-way latency and 1->1 throughput through the native Python API, against a real relay on loopback.

Usage: .venv/bin/python benches/python_api.py [--messages N] [--relay-bin PATH]

Starts `skytale relay` (auth off, temp store), makes two agents share a channel, then measures:
  * one-way latency: time from just before `Channel.send()` until the other agent's `MessageIterator` yields the
    message, one message in flight at a time (idle channel), 100-byte payloads;
  * throughput: one sender sending back to back, time until the receiver holds all of them.
Prints figures; asserts nothing about them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from skytale_sdk import SkytaleClient
from stats import summary

ROOT = Path(__file__).resolve().parent.parent


def start_relay(binary: str, store: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [binary, "relay", "--listen", "127.0.0.1:0", "--data-dir", store, "--auth", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline().strip()
    prefix = "export SKYTALE_RELAY="
    if not line.startswith(prefix):
        proc.kill()
        raise SystemExit(f"relay did not announce its address: {line!r}")
    return proc, line[len(prefix):]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per measurement")
    parser.add_argument("--relay-bin", default=str(ROOT / ".venv" / "bin" / "skytale"))
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="skytale-bench-")
    relay, endpoint = start_relay(args.relay_bin, os.path.join(work, "relay"))
    try:
        alice = SkytaleClient(endpoint, os.path.join(work, "alice"), b"alice")
        bob = SkytaleClient(endpoint, os.path.join(work, "bob"), b"bob")
        sender = alice.create_channel("bench/latency/one")
        receiver = bob.join_channel("bench/latency/one", sender.add_member(bob.generate_key_package()))
        incoming = receiver.messages()

        payload = b"x" * 100
        for _ in range(50):  # warm-up
            sender.send(payload)
            next(incoming)

        latencies = []
        for _ in range(args.messages):
            start = time.perf_counter()
            sender.send(payload)
            next(incoming)
            latencies.append((time.perf_counter() - start) * 1000)

        received = threading.Event()

        def drain() -> None:
            for count, _ in enumerate(incoming, start=1):
                if count == args.messages:
                    received.set()
                    return

        consumer = threading.Thread(target=drain)
        consumer.start()
        start = time.perf_counter()
        for _ in range(args.messages):
            sender.send(payload)
        received.wait()
        elapsed = time.perf_counter() - start
        consumer.join()

        print(f"one-way latency, 100 B, loopback, n={args.messages}: {summary(latencies)}")
        print(f"1->1 throughput, 100 B, n={args.messages}: {args.messages / elapsed:,.0f} msg/s "
              f"({args.messages * 100 / elapsed / 1e6:.2f} MB/s payload)")
        alice.close()
        bob.close()
    finally:
        relay.terminate()
        relay.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

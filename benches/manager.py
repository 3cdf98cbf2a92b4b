"""Invite joins and manager receive latency against a real `skytale dev` stack (relay + API, auth on).

Usage: .venv/bin/python benches/manager.py [--joins N] [--messages N] [--skytale PATH]

Measures:
  * `join_with_token` wall time, one joiner at a time (the owner's manager admits each join as it arrives);
  * one-way latency through `SkytaleChannelManager`: from just before `send()` until `receive()` returns it,
    one message in flight at a time, 100-byte messages.
Prints figures; asserts nothing about them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skytale_sdk import SkytaleChannelManager
from stats import summary

ROOT = Path(__file__).resolve().parent.parent
EXPORT = "export "


def start_dev(binary: str, directory: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [binary, "dev", "--dir", directory, "--relay-port", "0", "--api-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for _ in range(3):
        line = proc.stdout.readline().strip()
        if not line.startswith(EXPORT) or "=" not in line:
            proc.kill()
            raise SystemExit(f"skytale dev did not print its exports: {line!r}")
        key, value = line[len(EXPORT):].split("=", 1)
        os.environ[key] = value
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--skytale", default=str(ROOT / ".venv" / "bin" / "skytale"))
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="skytale-bench-")
    dev = start_dev(args.skytale, os.path.join(work, "dev"))
    try:
        channel = "myorg/bench/general"
        owner = SkytaleChannelManager(identity=b"owner", data_dir=os.path.join(work, "owner"))
        owner.create(channel)

        join_times = []
        joiners = []
        for index in range(args.joins):
            token = owner.invite(channel)
            joiner = SkytaleChannelManager(identity=f"joiner-{index}", data_dir=os.path.join(work, f"joiner-{index}"))
            start = time.perf_counter()
            joiner.join_with_token(channel, token)
            join_times.append((time.perf_counter() - start) * 1000)
            joiners.append(joiner)

        receiver = joiners[0] if joiners else owner
        for _ in range(50):  # warm-up
            owner.send(channel, "x" * 100)
            receiver.receive(channel, timeout=10)

        latencies = []
        for _ in range(args.messages):
            start = time.perf_counter()
            owner.send(channel, "x" * 100)
            got = receiver.receive(channel, timeout=10)
            latencies.append((time.perf_counter() - start) * 1000)
            if len(got) != 1:
                raise SystemExit(f"expected one message, got {len(got)}")

        if join_times:
            print(f"join_with_token, n={len(join_times)} (group grows to {len(join_times) + 1}): {summary(join_times)}")
        print(f"manager send->receive one-way latency, 100 B, n={args.messages}: {summary(latencies)}")
        for manager in [owner, *joiners]:
            manager.close()
    finally:
        dev.terminate()
        dev.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

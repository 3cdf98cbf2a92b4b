"""The benchmark suite: runs every section, prints one table (figures, targets, ratios to this machine's limits
and to the peer) and writes every figure to a JSON file. `scripts/bench.sh` builds what it needs, then runs this.

Usage: .venv/bin/python benches/run.py [--quick] [--only SECTION,...] [--out bench-results.json]

Each section is a command that prints one JSON object on stdout (progress on stderr): the Rust ones are
`target/release/skytale-bench <subcommand>`, the Python ones are the scripts beside this file. A section that
fails or times out is reported as failed, with the reason, and the others still run; nothing is made up.
Figures are judged only here (targets in `table.py`); no section asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from table import format_table, render_rows

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
BENCH_BIN = Path(os.environ.get("SKYTALE_BENCH_BIN", ROOT / "target" / "release" / "skytale-bench"))
SKYTALE_BIN = Path(os.environ.get("SKYTALE_BIN", ROOT / ".venv" / "bin" / "skytale"))


@dataclass(frozen=True)
class Section:
    """A command printing one JSON object; `quick` replaces `full` arguments for a smoke run."""

    name: str
    about: str
    command: list[str]
    full: list[str]
    quick: list[str]
    timeout_s: float


def rust(subcommand: str) -> list[str]:
    return [str(BENCH_BIN), subcommand]


def python(script: str) -> list[str]:
    return [PYTHON, str(HERE / script)]


RELAY_BIN = ["--skytale", str(SKYTALE_BIN)]
# In run order: the limits first (every ratio needs them), the heavy Rust load last.
SECTIONS = [
    Section(
        "limits",
        "Ed25519, AES-128-GCM, bare tonic echo",
        rust("limits"),
        [],
        ["--seconds", "0.3", "--round-trips", "1000", "--pipelined", "10000"],
        120,
    ),
    Section("latency", "one-way latency: native, manager, aio", python("latency.py"), [], ["--quick"], 240),
    Section(
        "python-throughput", "Python 1 -> 1 throughput, manager burst", python("throughput.py"), [], ["--quick"], 180
    ),
    Section("joins", "join_with_token: sequential and at once", python("joins.py"), [], ["--quick"], 180),
    Section("peer", "skytale-sdk 0.5.2 mock mode", python("peer.py"), [], ["--quick"], 420),
    Section(
        "rust-throughput",
        "Rust 1 -> 1 and fan-out",
        rust("throughput"),
        [],
        ["--messages", "500", "--fanout-deliveries", "2000"],
        240,
    ),
    Section(
        "group-scaling",
        "add/remove/rotate at 2..1000 members",
        rust("group-scaling"),
        [],
        ["--sizes", "2,10,100", "--repetitions", "3"],
        300,
    ),
    Section(
        "relay-capacity",
        "routed msgs/s, load generator",
        rust("relay-capacity"),
        RELAY_BIN,
        [*RELAY_BIN, "--warmup-s", "0.5", "--duration-s", "2"],
        180,
    ),
    Section(
        "cluster",
        "SQLite, JetStream R1, JetStream R3 behind 2 relays",
        rust("cluster"),
        RELAY_BIN,
        [*RELAY_BIN, "--warmup-s", "0.5", "--duration-s", "1.5", "--publishers", "4", "--race-channels", "4"],
        420,
    ),
    Section(
        "idle-streams",
        "relay RSS per idle stream",
        rust("idle-streams"),
        RELAY_BIN,
        [*RELAY_BIN, "--counts", "1000"],
        240,
    ),
    Section(
        "idle-streams-shared",
        "relay RSS per idle stream, 100 streams per connection",
        rust("idle-streams"),
        [*RELAY_BIN, "--streams-per-connection", "100"],
        [*RELAY_BIN, "--streams-per-connection", "100", "--counts", "1000"],
        240,
    ),
]


def run_section(section: Section, quick: bool) -> dict[str, Any]:
    """Runs one section; returns {"ok", "elapsed_s", "command", "figures"} or {"ok": False, "error", ...}."""
    command = section.command + (section.quick if quick else section.full)
    record: dict[str, Any] = {"about": section.about, "command": " ".join(command)}
    tail: deque[str] = deque(maxlen=20)
    start = time.perf_counter()
    try:
        # Its own process group, so a timeout or Ctrl-C also stops the relays and stacks the section started.
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
    except OSError as error:
        return {**record, "ok": False, "elapsed_s": 0.0, "error": f"cannot start {command[0]}: {error}"}
    # One reader per pipe (communicate() would also read stderr and take lines from the relay thread).
    out: list[str] = []
    readers = [
        threading.Thread(target=_relay_stderr, args=(section.name, process, tail), daemon=True),
        threading.Thread(target=lambda: out.append(process.stdout.read()), daemon=True),
    ]  # type: ignore
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=section.timeout_s)
    except subprocess.TimeoutExpired:
        _stop_group(process)
        return {
            **record,
            "ok": False,
            "elapsed_s": time.perf_counter() - start,
            "error": f"timed out after {section.timeout_s:.0f} s",
            "stderr_tail": list(tail),
        }
    except BaseException:
        _stop_group(process)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
    stdout = "".join(out)
    record["elapsed_s"] = time.perf_counter() - start
    if process.returncode != 0:
        last = next((line for line in reversed(tail) if line.strip()), "no output on stderr")
        return {**record, "ok": False, "error": f"exit {process.returncode}: {last.strip()}", "stderr_tail": list(tail)}
    try:
        figures = json.loads(stdout)
    except json.JSONDecodeError:
        return {**record, "ok": False, "error": f"did not print one JSON object: {stdout[-200:]!r}"}
    if not isinstance(figures, dict):
        return {**record, "ok": False, "error": "printed JSON that is not an object"}
    return {**record, "ok": True, "figures": figures}


def _stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the section's process group (its stacks shut down cleanly), SIGKILL after a grace period."""
    for sig, grace_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _relay_stderr(name: str, process: subprocess.Popen[str], tail: deque[str]) -> None:
    """Shows a section's progress as it runs, and keeps its last lines for the error message."""
    assert process.stderr is not None
    for line in process.stderr:
        if not line.strip():
            continue
        tail.append(line.rstrip())
        print(f"  [{name}] {line.rstrip()}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on; the load average shows whether other work was running."""
    model = ""
    try:
        model = next(
            (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), ""
        )
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": list(os.getloadavg()),
    }


def main() -> None:
    names = [section.name for section in SECTIONS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run, figures not meaningful")
    parser.add_argument("--only", help=f"comma-separated sections, of: {','.join(names)}")
    parser.add_argument("--out", default=str(ROOT / "bench-results.json"), help="JSON file to write")
    args = parser.parse_args()
    chosen = names
    if args.only:
        chosen = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            parser.error(f"unknown section(s) {', '.join(unknown)}; sections: {', '.join(names)}")

    report: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "sections": {},
    }
    suite_start = time.perf_counter()
    for section in SECTIONS:
        if section.name not in chosen:
            continue
        print(f"== {section.name}: {section.about}", file=sys.stderr, flush=True)
        result = run_section(section, args.quick)
        report["sections"][section.name] = result
        outcome = "ok" if result["ok"] else f"FAILED: {result['error']}"
        print(f"== {section.name}: {outcome} ({result['elapsed_s']:.1f} s)", file=sys.stderr, flush=True)
    report["elapsed_s"] = time.perf_counter() - suite_start
    report["machine"]["loadavg_at_end"] = list(os.getloadavg())

    lines = render_rows(report["sections"])
    report["table"] = [asdict(line) for line in lines]
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    print(format_table(lines))
    print()
    for name, result in report["sections"].items():
        status = "ok" if result["ok"] else f"FAILED: {result['error']}"
        print(f"{name:<18} {result['elapsed_s']:7.1f} s  {status}")
    cpus = report["machine"]["cpus"]
    load = report["machine"]["loadavg_at_start"][0], report["machine"]["loadavg_at_end"][0]
    print(
        f"total {report['elapsed_s']:.1f} s on {cpus} CPUs (load average {load[0]:.2f} at start, "
        f"{load[1]:.2f} at end){'; --quick: counts too small to mean much' if args.quick else ''}"
    )
    print(f"figures: {args.out}")
    sys.exit(0 if all(result["ok"] for result in report["sections"].values()) else 1)


if __name__ == "__main__":
    main()

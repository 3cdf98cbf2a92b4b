"""Real ``nats-server`` processes for tests: a JetStream cluster on free loopback ports, routes between every pair,
under a temporary directory. The binary is ``SKYTALE_NATS_SERVER``, else the one ``scripts/setup.sh`` installs into
``.venv``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NATS_SERVER = Path(os.environ.get("SKYTALE_NATS_SERVER", REPO_ROOT / ".venv" / "bin" / "nats-server"))
# How long a cluster may take until every server reports JetStream healthy (a meta leader, streams current).
READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class NatsCluster:
    """``nodes`` servers with JetStream on; ``urls`` is the list a relay's ``--store`` takes."""

    def __init__(self, directory: Path, nodes: int = 3) -> None:
        if not NATS_SERVER.is_file():
            raise RuntimeError(f"{NATS_SERVER} not found: run scripts/setup.sh first (or set SKYTALE_NATS_SERVER)")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ports = [(free_port(), free_port(), free_port()) for _ in range(nodes)]
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * nodes
        for index in range(nodes):
            self.start(index)
        self._wait_ready(range(nodes))

    @property
    def urls(self) -> str:
        return ",".join(f"nats://127.0.0.1:{client}" for client, _, _ in self.ports)

    def start(self, index: int) -> None:
        """Starts server ``index`` (again, after ``kill``: same ports, same store directory)."""
        client, cluster, monitor = self.ports[index]
        command = [
            str(NATS_SERVER),
            "--server_name",
            f"n{index}",
            "--addr",
            "127.0.0.1",
            "--port",
            str(client),
            "--http_port",
            str(monitor),
            "--jetstream",
            "--store_dir",
            str(self.directory / f"n{index}"),
        ]
        if len(self.ports) > 1:
            routes = ",".join(f"nats://127.0.0.1:{route}" for _, route, _ in self.ports)
            command += ["--cluster_name", "skytale", "--cluster", f"nats://127.0.0.1:{cluster}", "--routes", routes]
        with open(self.directory / f"n{index}.log", "ab") as log:
            self._processes[index] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def restart(self, index: int) -> None:
        """Starts server ``index`` again and waits until it reports JetStream healthy (caught up)."""
        self.start(index)
        self._wait_ready([index])

    def kill(self, index: int) -> None:
        """SIGKILL, as in a crash."""
        process = self._processes[index]
        if process is not None:
            process.kill()
            process.wait()
            self._processes[index] = None

    def stream_leader(self, stream: str) -> int:
        """The index of the server leading ``stream``'s replicas, from any live server's monitoring endpoint."""
        for index, (_, _, monitor) in enumerate(self.ports):
            if self._processes[index] is None:
                continue
            url = f"http://127.0.0.1:{monitor}/jsz?streams=true"
            with urllib.request.urlopen(url, timeout=2) as answer:
                report = json.load(answer)
            for account in report.get("account_details", []):
                for detail in account.get("stream_detail", []):
                    if detail.get("name") == stream and detail.get("cluster", {}).get("leader"):
                        return int(detail["cluster"]["leader"].removeprefix("n"))
        raise RuntimeError(f"no live server knows a leader of stream {stream}")

    def _wait_ready(self, indexes: Iterable[int]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        for index in indexes:
            _, _, monitor = self.ports[index]
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"NATS was not ready within {READY_TIMEOUT}s; logs in {self.directory}")
                time.sleep(0.1)

    def stop(self) -> None:
        for index in range(len(self._processes)):
            self.kill(index)

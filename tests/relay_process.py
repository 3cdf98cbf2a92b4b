"""A real `skytale relay` process for tests: started on a free loopback port, killable and restartable."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent
SKYTALE_BIN = Path(os.environ.get("SKYTALE_BIN", REPO_ROOT / ".venv" / "bin" / "skytale"))
READY_PREFIX = "export SKYTALE_RELAY="
# Generous: a debug relay on a loaded 2-core CI machine can take a while to open its store.
STARTUP_TIMEOUT = 60.0
# Well past the relay's default drain timeout (10 s), so only a relay that ignores it trips this.
EXIT_TIMEOUT = 30.0


class RelayProcess:
    """One relay bound to one data directory.

    ``kill()`` + ``start()`` restarts it on the same port and data directory, which is what a client that keeps
    reconnecting to the same endpoint sees after a crash. With ``store`` (a NATS server list, e.g.
    ``NatsCluster.urls``) its log is on JetStream instead, with a replica on every server of the list.
    """

    def __init__(
        self, data_dir: Path, log_path: Path, max_payload: int | None = None, store: str | None = None
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.max_payload = max_payload
        self.store = store
        self.port = 0
        self.endpoint = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        if not SKYTALE_BIN.exists():
            raise RuntimeError(f"{SKYTALE_BIN} not found: run scripts/setup.sh first (or set SKYTALE_BIN)")
        # These tests exercise the Delivery Service, not auth (tests/test_manager.py runs `skytale dev` with auth on).
        command = [
            str(SKYTALE_BIN),
            "relay",
            "--auth",
            "none",
            "--listen",
            f"127.0.0.1:{self.port}",
        ]
        if self.store is None:
            command += ["--data-dir", str(self.data_dir)]
        else:
            command += ["--store", self.store, "--nats-replicas", str(len(self.store.split(",")))]
        if self.max_payload is not None:
            command += ["--max-payload", str(self.max_payload)]
        with open(self.log_path, "a") as log:
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self._process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=pump_lines, args=(self._process.stdout, lines), daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=STARTUP_TIMEOUT)
            except queue.Empty:
                self.kill()
                raise RuntimeError(f"relay did not report its address; log: {self.log_path}") from None
            if line is None:
                raise RuntimeError(f"relay exited during startup; log:\n{self.log_path.read_text()}")
            if line.startswith(READY_PREFIX):
                self.endpoint = line[len(READY_PREFIX) :].strip()
                self.port = int(self.endpoint.rsplit(":", 1)[1])
                return

    def kill(self) -> None:
        """SIGKILL: no shutdown path runs, as in a crash."""
        self._signal_and_wait(signal.SIGKILL)

    def stop(self) -> None:
        self._signal_and_wait(signal.SIGTERM)

    def terminate(self) -> int:
        """SIGTERM, as an orchestrator stopping the relay sends: the relay drains (docs/operations.md, "Graceful
        drain") and exits. Returns its exit code."""
        process, self._process = self._process, None
        return terminate(process, self.log_path)

    def _signal_and_wait(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def terminate(process: subprocess.Popen[str] | None, log_path: Path) -> int:
    """Sends SIGTERM to a running server process and returns its exit code; fails if it is still running after
    ``EXIT_TIMEOUT`` (then killed), naming its log."""
    if process is None or process.poll() is not None:
        raise RuntimeError(f"the process is not running; log: {log_path}")
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise RuntimeError(f"the process did not exit within {EXIT_TIMEOUT}s of SIGTERM; log: {log_path}") from None


def pump_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Reads the relay's stdout to the end, so it can never block on a full pipe; ``None`` marks EOF."""
    for line in stream:
        lines.put(line)
    lines.put(None)

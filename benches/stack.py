"""A real `skytale dev` process (relay + API, auth on, free loopback ports) for the Python sections."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import IO

from skytale_sdk import SkytaleChannelManager, SkytaleClient

ROOT = Path(__file__).resolve().parent.parent
SKYTALE_BIN = Path(os.environ.get("SKYTALE_BIN", ROOT / ".venv" / "bin" / "skytale"))
EXPORTS = ("SKYTALE_RELAY", "SKYTALE_API_URL", "SKYTALE_API_KEY")
STARTUP_TIMEOUT_S = 60.0


class DevStack:
    """`with DevStack() as stack:` runs `skytale dev` in a temporary directory and stops it (SIGTERM) on exit.
    `stack.manager(name)` and `stack.client(name)` connect agents to it, each with its own data_dir."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="skytale-bench-"))
        self.env: dict[str, str] = {}
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> DevStack:
        if not SKYTALE_BIN.exists():
            raise RuntimeError(f"{SKYTALE_BIN} not found: run scripts/setup.sh first (or set SKYTALE_BIN)")
        log_path = self.work / "dev.log"
        command = [str(SKYTALE_BIN), "dev", "--dir", str(self.work / "dev"), "--relay-port", "0", "--api-port", "0"]
        with open(log_path, "w") as log:
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        lines: queue.Queue[str | None] = queue.Queue()
        assert self._process.stdout is not None
        threading.Thread(target=_pump, args=(self._process.stdout, lines), daemon=True).start()
        while len(self.env) < len(EXPORTS):
            try:
                line = lines.get(timeout=STARTUP_TIMEOUT_S)
            except queue.Empty:
                line = None
            if line is None:
                self.__exit__(None, None, None)
                raise RuntimeError(f"skytale dev did not print its exports; log:\n{log_path.read_text()[-2000:]}")
            key, _, value = line.strip().removeprefix("export ").partition("=")
            if key in EXPORTS:
                self.env[key] = value
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.work, ignore_errors=True)

    def manager(self, name: str) -> SkytaleChannelManager:
        return SkytaleChannelManager(
            name,
            endpoint=self.env["SKYTALE_RELAY"],
            data_dir=str(self.work / "agents" / name),
            api_key=self.env["SKYTALE_API_KEY"],
            api_url=self.env["SKYTALE_API_URL"],
        )

    def client(self, name: str) -> SkytaleClient:
        return SkytaleClient(
            self.env["SKYTALE_RELAY"],
            str(self.work / "agents" / name),
            name.encode(),
            api_key=self.env["SKYTALE_API_KEY"],
            api_url=self.env["SKYTALE_API_URL"],
        )


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Reads the process's stdout to the end (so it never blocks on a full pipe); `None` marks its end."""
    for line in stream:
        lines.put(line)
    lines.put(None)

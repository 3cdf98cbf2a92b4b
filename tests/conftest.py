"""Fixtures: real relay processes and real clients, each in its own temporary directory."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from relay_process import SKYTALE_BIN, STARTUP_TIMEOUT, RelayProcess, pump_lines, terminate
from skytale_sdk import SkytaleClient

MakeRelay = Callable[..., RelayProcess]
MakeClient = Callable[..., SkytaleClient]
DEV_EXPORTS = ("SKYTALE_RELAY", "SKYTALE_API_URL", "SKYTALE_API_KEY")
# What `skytale dev --tls` prints: the same three lines, then the CA clients must trust.
DEV_TLS_EXPORTS = (*DEV_EXPORTS, "SKYTALE_CA_FILE")


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test, and every program it starts, has this test's directory as its home: managers' default
    data_dirs (``~/.skytale/<hex(identity)>``) never meet another test's, another run's or the user's own.
    Cargo and rustup keep the real home's toolchain."""
    real_home = Path.home()
    monkeypatch.setenv("CARGO_HOME", os.environ.get("CARGO_HOME", str(real_home / ".cargo")))
    monkeypatch.setenv("RUSTUP_HOME", os.environ.get("RUSTUP_HOME", str(real_home / ".rustup")))
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def make_relay(tmp_path: Path) -> Iterator[MakeRelay]:
    """Starts relays (``make_relay(max_payload=None)``); all are stopped at the end of the test."""
    relays: list[RelayProcess] = []

    def make(max_payload: int | None = None) -> RelayProcess:
        index = len(relays)
        relay = RelayProcess(tmp_path / f"relay{index}", tmp_path / f"relay{index}.log", max_payload)
        relays.append(relay)
        relay.start()
        return relay

    yield make
    for relay in relays:
        relay.stop()


@pytest.fixture
def relay(make_relay: MakeRelay) -> RelayProcess:
    return make_relay()


@pytest.fixture
def make_client(tmp_path: Path, relay: RelayProcess) -> Iterator[MakeClient]:
    """``make_client("alice")``: a client with identity ``b"alice"`` and data_dir ``tmp_path/alice`` on the
    test's relay (or ``endpoint=...``). Every client is closed at the end of the test."""
    clients: list[SkytaleClient] = []

    def make(name: str, endpoint: str | None = None) -> SkytaleClient:
        client = SkytaleClient(endpoint or relay.endpoint, str(tmp_path / name), name.encode())
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


class DevStack:
    """A real ``skytale dev`` process (relay + API, auth on) on free loopback ports; ``env`` holds the three
    variables it printed (four with ``tls``: ``skytale dev --tls`` adds ``SKYTALE_CA_FILE``), ``exports`` the
    names in the order they came. ``flags`` go to ``skytale dev`` as given (e.g. the relay's account quotas)."""

    def __init__(
        self,
        directory: Path,
        binary: Path = SKYTALE_BIN,
        env: dict[str, str] | None = None,
        tls: bool = False,
        flags: tuple[str, ...] = (),
    ) -> None:
        self.directory = directory
        self.binary = binary
        self.process_env = env
        self.tls = tls
        self.flags = flags
        self.env: dict[str, str] = {}
        self.exports: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        if not self.binary.exists():
            raise RuntimeError(f"{self.binary} not found: run scripts/setup.sh first (or set SKYTALE_BIN)")
        command = [
            str(self.binary),
            "dev",
            "--dir",
            str(self.directory / "stack"),
            "--relay-port",
            "0",
            "--api-port",
            "0",
        ]
        if self.tls:
            command.append("--tls")
        command += self.flags
        expected = DEV_TLS_EXPORTS if self.tls else DEV_EXPORTS
        self.directory.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path
        with open(log_path, "a") as log:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, text=True, env=self.process_env
            )
        assert self._process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=pump_lines, args=(self._process.stdout, lines), daemon=True).start()
        while len(self.env) < len(expected):
            try:
                line = lines.get(timeout=STARTUP_TIMEOUT)
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"skytale dev did not print its exports; log: {log_path}") from None
            if line is None:
                raise RuntimeError(f"skytale dev exited during startup; log:\n{log_path.read_text()}")
            name, _, value = line.strip().removeprefix("export ").partition("=")
            if name in expected:
                self.env[name] = value
                self.exports.append(name)

    @property
    def log_path(self) -> Path:
        return self.directory / "dev.log"

    def terminate(self) -> int:
        """SIGTERM: the stack drains (docs/operations.md, "Graceful drain") and exits. Returns its exit code."""
        process, self._process = self._process, None
        return terminate(process, self.log_path)

    def freeze(self) -> None:
        """Stops the process in its tracks (SIGSTOP): its sockets stay open and nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """One ``skytale dev`` per test module; tests share it, so each uses its own channel names."""
    stack = DevStack(tmp_path_factory.mktemp("skytale-dev"))
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def dev_env(dev_stack: DevStack, monkeypatch: pytest.MonkeyPatch) -> DevStack:
    """Points ``SKYTALE_RELAY``/``SKYTALE_API_URL``/``SKYTALE_API_KEY`` at the module's ``skytale dev``; managers'
    default data_dirs are in this test's own home (``own_home``)."""
    for name, value in dev_stack.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SKYTALE_DATA_DIR", raising=False)
    return dev_stack


@pytest.fixture
def channel_name(request: pytest.FixtureRequest) -> str:
    """A channel name under the dev org that no other test of the module uses."""
    test = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:64]
    return f"myorg/tests/{test}"

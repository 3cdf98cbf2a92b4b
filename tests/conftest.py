"""Fixtures: real relay processes and real clients, each in its own temporary directory."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest
from relay_process import RelayProcess
from skytale_sdk import SkytaleClient

MakeRelay = Callable[..., RelayProcess]
MakeClient = Callable[..., SkytaleClient]


@pytest.fixture
def make_relay(tmp_path: Path) -> Iterator[MakeRelay]:
    """Starts relays (``make_relay(max_payload=None)``); all are stopped at the end of the test."""
    relays: List[RelayProcess] = []

    def make(max_payload: Optional[int] = None) -> RelayProcess:
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
    clients: List[SkytaleClient] = []

    def make(name: str, endpoint: Optional[str] = None) -> SkytaleClient:
        client = SkytaleClient(endpoint or relay.endpoint, str(tmp_path / name), name.encode())
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()

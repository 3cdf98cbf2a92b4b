"""Helpers shared by the tests: forming a channel and reading a known number of messages."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Callable, TypeVar

from skytale_sdk import Channel, SkytaleClient

# Long enough never to trip on a slow machine; only there so a lost message fails the test instead of hanging it.
RECEIVE_TIMEOUT = 60.0

T = TypeVar("T")


def wait_until(condition: Callable[[], bool]) -> None:
    """Waits for a state change the test cannot be woken by (a background commit, a listener filling an inbox)."""
    deadline = time.monotonic() + RECEIVE_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def form_channel(name: str, clients: Sequence[SkytaleClient]) -> list[Channel]:
    """The first client creates ``name`` and adds the others one by one; returns each member's Channel."""
    creator, *joiners = clients
    channels = [creator.create_channel(name)]
    for joiner in joiners:
        welcome = channels[0].add_member(joiner.generate_key_package())
        channels.append(joiner.join_channel(name, welcome))
    return channels


def take(iterator: Iterator[T], count: int) -> list[T]:
    """The next ``count`` items of ``iterator``."""
    return [next(iterator) for _ in range(count)]


def inbox(channel: Channel) -> Iterator[bytes]:
    return channel.messages(timeout=RECEIVE_TIMEOUT)


def meta_inbox(channel: Channel):  # -> MessageIterator[Message]
    return channel.messages(with_meta=True, timeout=RECEIVE_TIMEOUT)


def payloads(prefix: str, count: int) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(count)]

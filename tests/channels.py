"""Helpers shared by the tests: forming a channel and reading a known number of messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Callable, TypeVar

from skytale_sdk import Channel, SkytaleClient, TransportError

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


class Sender:
    """Sends ``sent`` on ``channel``, in order, on a thread of its own, while the test breaks things under it.

    Without ``retry``, each ``send()`` must ride out what happens on its own (the client resends with the same
    msg-id); with it, a ``TransportError``, which means "not stored", is sent again, which the contract leaves
    to the caller. ``finish()`` waits for the last send and returns what the thread raised."""

    def __init__(self, channel: Channel, sent: Sequence[bytes], retry: bool = False) -> None:
        self._failures: list[BaseException] = []
        self._thread = threading.Thread(target=self._send_all, args=(channel, sent, retry))
        self._thread.start()

    def _send_all(self, channel: Channel, sent: Sequence[bytes], retry: bool) -> None:
        try:
            for payload in sent:
                while True:
                    try:
                        channel.send(payload)
                        break
                    except TransportError:
                        if not retry:
                            raise
        except BaseException as failure:  # noqa: BLE001 - whatever it is, the test reports it
            self._failures.append(failure)

    def finish(self) -> list[BaseException]:
        self._thread.join(timeout=RECEIVE_TIMEOUT)
        assert not self._thread.is_alive(), "the sender is still sending"
        return self._failures

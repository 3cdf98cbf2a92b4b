"""asyncio face of :class:`~skytale_sdk.manager.SkytaleChannelManager`, for agent frameworks with an event loop.

Blocking calls (connect, create, join, send, ...) run in worker threads (``asyncio.to_thread``), so the loop
keeps running while the relay answers. Receiving does not park a thread per waiter: the channel's listener thread
wakes the loop (``loop.call_soon_threadsafe``) when a message arrives, and the messages are taken from the inbox
on the loop's own thread, only once nothing can interrupt the hand-over. So cancelling a ``receive()`` (e.g. by
``asyncio.wait_for``) never loses a message: it stays in the inbox for the next call.

``async for message in manager.messages("org/ns/chan")`` iterates a channel's messages as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Callable

from ._feed import DEFAULT_CONSUMER, ChannelFeed
from ._native import Message
from ._received import as_envelope, as_text
from .envelope import Envelope
from .manager import DEFAULT_BUFFER_LIMIT, ChannelView, SkytaleChannelManager, channel_feed, view_feed

__all__ = ["AsyncSkytaleChannelManager", "AsyncChannelView"]


class AsyncSkytaleChannelManager:
    """:class:`SkytaleChannelManager` with ``async`` methods; same parameters, defaults and errors.

    The constructor connects (blocking, like the sync manager); inside a running loop prefer
    ``await AsyncSkytaleChannelManager.open(...)``, which connects in a worker thread.
    """

    def __init__(
        self,
        identity: bytes | str,
        endpoint: str | None = None,
        data_dir: str | None = None,
        api_key: str | None = None,
        api_url: str | None = None,
        *,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    ) -> None:
        self._sync = SkytaleChannelManager(identity, endpoint, data_dir, api_key, api_url, buffer_limit=buffer_limit)

    @classmethod
    async def open(cls, *args: Any, **kwargs: Any) -> AsyncSkytaleChannelManager:
        """Constructs the manager in a worker thread, so connecting does not stall the event loop."""
        return await asyncio.to_thread(cls, *args, **kwargs)

    # Membership and sending: the sync methods, off the loop.

    async def create(self, channel_name: str) -> None:
        await asyncio.to_thread(self._sync.create, channel_name)

    async def join(self, channel_name: str, welcome: bytes) -> None:
        await asyncio.to_thread(self._sync.join, channel_name, welcome)

    async def key_package(self) -> bytes:
        return await asyncio.to_thread(self._sync.key_package)

    async def add_member(self, channel_name: str, key_package: bytes) -> bytes:
        return await asyncio.to_thread(self._sync.add_member, channel_name, key_package)

    async def invite(self, channel_name: str, max_uses: int = 1, ttl: int = 3600) -> str:
        return await asyncio.to_thread(self._sync.invite, channel_name, max_uses, ttl)

    async def join_with_token(self, channel_name: str, token: str, timeout: float = 60.0) -> None:
        await asyncio.to_thread(self._sync.join_with_token, channel_name, token, timeout)

    @property
    def connected(self) -> bool:
        return self._sync.connected

    def on_connection_change(self, callback: Callable[[bool], object] | None) -> None:
        """As :meth:`SkytaleChannelManager.on_connection_change`, but ``callback(connected)`` runs on the event loop
        this is called from (so call it inside a running loop)."""
        if callback is None:
            self._sync.on_connection_change(None)
            return
        loop = asyncio.get_running_loop()

        def on_change(connected: bool) -> None:
            # A change reported after the loop closed has no one left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback, connected)

        self._sync.on_connection_change(on_change)

    async def list_channels(self) -> list[str]:
        return self._sync.list_channels()

    async def members(self, channel_name: str) -> list[bytes]:
        return self._sync.members(channel_name)

    async def remove_member(self, channel_name: str, identity: bytes | str) -> None:
        await asyncio.to_thread(self._sync.remove_member, channel_name, identity)

    async def rotate_key(self, channel_name: str) -> None:
        await asyncio.to_thread(self._sync.rotate_key, channel_name)

    async def leave(self, channel_name: str) -> None:
        await asyncio.to_thread(self._sync.leave, channel_name)

    async def send(self, channel_name: str, message: str | bytes) -> None:
        await asyncio.to_thread(self._sync.send, channel_name, message)

    async def send_many(self, channel_name: str, messages: Sequence[str | bytes]) -> None:
        await asyncio.to_thread(self._sync.send_many, channel_name, messages)

    async def send_envelope(self, channel_name: str, envelope: Envelope) -> None:
        await asyncio.to_thread(self._sync.send_envelope, channel_name, envelope)

    # Receiving: woken by the listener thread, taken on the loop.

    async def receive(self, channel_name: str, timeout: float = 5.0) -> list[str]:
        """As :meth:`SkytaleChannelManager.receive`, awaiting instead of blocking."""
        return [as_text(message.payload) for message in await self._receive(channel_name, timeout)]

    async def receive_messages(self, channel_name: str, timeout: float = 5.0) -> list[Message]:
        """As :meth:`receive`, each as a :class:`~skytale_sdk.Message` (with ``sender``, ``seq``, ``timestamp``)."""
        return await self._receive(channel_name, timeout)

    async def receive_latest(self, channel_name: str, timeout: float = 5.0) -> str | None:
        messages = await self.receive(channel_name, timeout)
        return messages[-1] if messages else None

    async def receive_envelopes(self, channel_name: str, timeout: float = 5.0) -> list[Envelope]:
        return [as_envelope(message) for message in await self._receive(channel_name, timeout)]

    def pending(self, channel_name: str) -> int:
        return self._sync.pending(channel_name)

    async def messages(self, channel_name: str) -> AsyncIterator[str]:
        """Yields each message of the channel as text as it arrives; ends when the channel or the manager is
        closed. Messages are taken one at a time, so leaving the loop early leaves the rest in the inbox. Errors
        are raised as from ``receive()`` (a full inbox's ``QuotaExceededError`` ends the iteration; iterating
        again continues after it)."""
        async for message in _iterate(channel_feed(self._sync, channel_name), DEFAULT_CONSUMER):
            yield as_text(message.payload)

    def view(self, channel_name: str) -> AsyncChannelView:
        """A new consumer view of the channel, awaitable (see :class:`AsyncChannelView`)."""
        return AsyncChannelView(self._sync.view(channel_name))

    async def _receive(self, channel_name: str, timeout: float) -> list[Message]:
        return await _receive_for(channel_feed(self._sync, channel_name), DEFAULT_CONSUMER, timeout)

    # Lifecycle

    async def close(self) -> None:
        await asyncio.to_thread(self._sync.close)

    async def __aenter__(self) -> AsyncSkytaleChannelManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


class AsyncChannelView:
    """A :class:`~skytale_sdk.manager.ChannelView` for asyncio: one consumer's own view of a channel (every
    message that arrives after the view was opened, as bytes, never drained by anyone else), awaited instead of
    blocking and iterable with ``async for``. Wraps a view of either manager: ``AsyncChannelView(mgr.view(name))``
    or ``async_mgr.view(name)``. Cancelling a ``receive()`` loses nothing."""

    def __init__(self, view: ChannelView) -> None:
        self._view = view

    @property
    def channel_name(self) -> str:
        return self._view.channel_name

    async def receive(self, timeout: float = 5.0) -> list[bytes]:
        return [message.payload for message in await self.receive_messages(timeout)]

    async def receive_messages(self, timeout: float = 5.0) -> list[Message]:
        return await _receive_for(*view_feed(self._view), timeout)

    async def receive_envelopes(self, timeout: float = 5.0) -> list[Envelope]:
        return [as_envelope(message) for message in await self.receive_messages(timeout)]

    def pending(self) -> int:
        return self._view.pending()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Each message's payload as it arrives; ends when the channel or its manager is closed."""
        async for message in self.messages():
            yield message.payload

    def messages(self) -> AsyncIterator[Message]:
        """As iterating the view, each as a :class:`~skytale_sdk.Message` (with its authenticated ``sender``)."""
        return _iterate(*view_feed(self._view))

    def close(self) -> None:
        self._view.close()

    async def __aenter__(self) -> AsyncChannelView:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


async def _receive_for(feed: ChannelFeed, consumer: object, timeout: float) -> list[Message]:
    """A consumer's ``receive()`` on the loop (see :meth:`ChannelFeed.receive` for what it takes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Asked now, so it covers everything stored before the call; answered while we wait (see start_sync).
    request = feed.start_sync() if timeout > 0 else None
    async with _ArrivalSignal(feed) as arrival:
        if not await arrival.until(lambda: feed.has_news(consumer), deadline):
            return []
        # Take everything the relay held at the call, not just what arrived first (see ChannelFeed.sync_target).
        # The wait runs in a worker thread; nothing is taken meanwhile, so a cancellation loses nothing.
        target = await asyncio.to_thread(feed.sync_target, request, deadline - loop.time())
        if target is not None:
            await arrival.until(lambda: feed.caught_up(target), deadline)
    # No await between taking and returning: a cancellation cannot drop what was taken.
    return feed.take_nowait(consumer=consumer) or []


async def _iterate(feed: ChannelFeed, consumer: object) -> AsyncIterator[Message]:
    """A consumer's messages one at a time as they arrive, until the channel ends."""
    while True:
        async with _ArrivalSignal(feed) as arrival:
            await arrival.until(lambda: feed.has_news(consumer), deadline=None)
        message = feed.take_nowait(limit=1, consumer=consumer)
        if message is None:
            continue
        if not message:
            return
        yield message[0]


class _ArrivalSignal:
    """An ``asyncio.Event`` set from a channel's listener thread on each arrival, for as long as the ``async
    with`` block lasts."""

    def __init__(self, feed: ChannelFeed) -> None:
        self._feed = feed
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    async def __aenter__(self) -> _ArrivalSignal:
        self._unregister = self._feed.on_arrival(self._wake)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._unregister()

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    async def until(self, condition: Callable[[], bool], deadline: float | None) -> bool:
        """Waits until ``condition()`` holds (re-checked after each arrival) or ``deadline`` (loop time) passes;
        returns whether it holds."""
        while True:
            self._event.clear()  # before the check, so an arrival right after it still wakes the wait below
            if condition():
                return True
            if not await self._wait(deadline):
                return condition()

    async def _wait(self, deadline: float | None) -> bool:
        timeout = None if deadline is None else deadline - self._loop.time()
        if timeout is not None and timeout <= 0:
            return False
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

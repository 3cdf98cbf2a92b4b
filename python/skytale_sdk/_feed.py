"""`ChannelFeed`: a channel's listener thread and the inboxes it fills. Package-internal: the manager
(:mod:`skytale_sdk.manager`) owns one per channel, and :mod:`skytale_sdk.aio` reads them without blocking a thread.

Each consumer of a channel (the manager's own methods, and every ``ChannelView``) has its own :class:`~._inbox.Inbox`,
filled by the listener with every message, so one consumer never drains another's messages.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ._inbox import Inbox
from ._native import Channel, Message, SyncRequest
from .errors import ChannelError, SkytaleError

__all__ = ["Arrival", "ChannelFeed", "DEFAULT_CONSUMER"]

#: The consumer the manager's own methods (``receive``, ``receive_envelopes``, ``pending``) read for.
DEFAULT_CONSUMER: object = "default"

#: A callback run on the listener thread after each arrival (see :meth:`ChannelFeed.on_arrival`).
Arrival = Callable[[], None]


class ChannelFeed:
    """A channel's listener thread and the inboxes it fills.

    Every public method may be called from any thread; all state is guarded by ``_cond``, which is notified on
    every change (arrival, drain, end), so waiters on either side wake exactly when something happened.
    """

    def __init__(self, channel: Channel, buffer_limit: int) -> None:
        self.channel: Channel = channel
        self.name: str = channel.name
        self._cond = threading.Condition()
        self._buffer_limit = buffer_limit
        self._inboxes: dict[object, Inbox] = {DEFAULT_CONSUMER: Inbox(self.name, buffer_limit)}
        self._arrival_callbacks: list[Arrival] = []
        self._failure: BaseException | None = None
        #: Seq of the newest message the listener moved into the inboxes (compared with ``delivered_seq``).
        self._moved_seq = 0
        self._ended = False
        self._stopping = False
        self._thread = threading.Thread(target=self._listen, name=f"skytale-listener:{self.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Asks the listener to stop; ``join()`` waits for it. Closing the channel handle ends the native
        iterator the listener may be blocked in."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.channel.close()

    def join(self) -> None:
        self._thread.join()

    def _listen(self) -> None:
        try:
            # The native iterator waits with the GIL released; it ends when the channel handle is closed. Messages
            # already waiting come in one batch (one store transaction, one wake-up of the consumers), never more
            # than every inbox has room for.
            incoming = self.channel.messages(with_meta=True)
            while True:
                with self._cond:
                    room = min(self._buffer_limit - len(inbox) for inbox in self._inboxes.values())
                batch = incoming.next_batch(max(room, 1))
                if not batch:
                    return
                with self._cond:
                    for inbox in self._inboxes.values():
                        for message in batch:
                            inbox.put(message)
                    self._moved_seq = batch[-1].seq
                    self._cond.notify_all()
                    self._announce_arrival()
                    # Backpressure: read no further while a consumer's inbox is full.
                    self._cond.wait_for(lambda: self._stopping or not self._any_inbox_holds_listener())
                    if self._stopping:
                        return
        except Exception as error:  # noqa: BLE001 - every failure is handed to the consumer, none is swallowed
            with self._cond:
                self._failure = error
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()
                self._announce_arrival()

    def _any_inbox_holds_listener(self) -> bool:
        return any(inbox.holds_listener() for inbox in self._inboxes.values())

    def _announce_arrival(self) -> None:
        for callback in self._arrival_callbacks:
            callback()

    def on_arrival(self, callback: Arrival) -> Callable[[], None]:
        """Calls ``callback`` (from the listener thread, keep it short and non-blocking) after every arrival and
        when the listener ends; returns the function that unregisters it. Used by the asyncio layer to wake an
        event loop without a thread blocked per waiter."""
        with self._cond:
            self._arrival_callbacks.append(callback)

        def unregister() -> None:
            with self._cond:
                self._arrival_callbacks.remove(callback)

        return unregister

    def add_consumer(self) -> object:
        """Registers a new consumer with an empty inbox (it receives what arrives from now on); returns its key."""
        key = object()
        with self._cond:
            self._inboxes[key] = Inbox(self.name, self._buffer_limit)
        return key

    def remove_consumer(self, key: object) -> None:
        """Drops a consumer's inbox, so it no longer holds the listener back. Idempotent."""
        with self._cond:
            if self._inboxes.pop(key, None) is not None:
                self._cond.notify_all()

    def _inbox(self, consumer: object) -> Inbox:
        inbox = self._inboxes.get(consumer)
        if inbox is None:
            raise ChannelError(f"channel error: {self.name}: this view of the channel is closed")
        return inbox

    def pending(self, consumer: object = DEFAULT_CONSUMER) -> int:
        with self._cond:
            return len(self._inbox(consumer))

    def take_nowait(self, limit: int | None = None, consumer: object = DEFAULT_CONSUMER) -> list[Message] | None:
        """The consumer's unread messages (at most ``limit``) if there are any; otherwise raises what is pending
        (the overflow notice, then the channel's failure); ``[]`` once the listener has ended; ``None`` if the
        caller should wait."""
        with self._cond:
            inbox = self._inbox(consumer)
            batch = inbox.drain(limit)
            if batch:
                self._cond.notify_all()
                return batch
            overflow = inbox.take_overflow()
            if overflow is not None:
                self._cond.notify_all()
                raise overflow
            if self._failure is not None:
                raise self._failure
            return [] if self._ended else None

    def has_news(self, consumer: object = DEFAULT_CONSUMER) -> bool:
        with self._cond:
            return self._inbox(consumer).has_news() or self._ended

    def start_sync(self) -> SyncRequest | None:
        """Sends the relay head query for a ``receive()`` at its start, so its answer covers every message the
        relay had stored (acknowledged to its sender) when the call was made, and the round trip runs while the
        call waits for its first message. ``None`` if it cannot be sent (the client is closing): ``receive()``
        then returns what it has."""
        try:
            return self.channel.start_sync()
        except SkytaleError:
            return None

    def sync_target(self, request: SyncRequest | None, timeout: float) -> int | None:
        """Blocks (without the condition's lock, so the listener keeps moving messages) until the native inbox
        holds everything up to the head ``request`` asked for, then returns the seq the listener must have moved
        for the inboxes to hold it too. ``None`` if that could not be established within ``timeout`` (or the
        channel closed): the caller then returns what it has, as a receive that timed out would.

        A failure of the relay query is not raised here: it would lose the messages the caller already took,
        and a lasting failure reaches the consumer through the listener anyway."""
        if request is None or timeout <= 0:
            return None
        try:
            if not request.wait(timeout):
                return None
            return self.channel.delivered_seq
        except SkytaleError:
            return None

    def caught_up(self, target: int) -> bool:
        """Whether the listener has moved everything up to ``target`` into the inboxes, or will move nothing
        more for now (ended, stopping, or held back by a full inbox)."""
        with self._cond:
            return self._moved_seq >= target or self._ended or self._stopping or self._any_inbox_holds_listener()

    def receive(self, timeout: float, consumer: object = DEFAULT_CONSUMER) -> list[Message]:
        """Waits up to ``timeout`` seconds for the consumer's messages; once there are some, also takes every
        message the relay had stored for the channel when this call was made (see ``start_sync``)."""
        deadline = time.monotonic() + timeout
        request = self.start_sync() if timeout > 0 else None
        with self._cond:
            while True:
                batch = self.take_nowait(consumer=consumer)
                if batch is not None:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)
        if not batch:
            return batch
        target = self.sync_target(request, deadline - time.monotonic())
        with self._cond:
            if target is not None:
                self._cond.wait_for(lambda: self.caught_up(target), timeout=max(deadline - time.monotonic(), 0.0))
            batch.extend(self._inbox(consumer).drain())
            self._cond.notify_all()
        return batch

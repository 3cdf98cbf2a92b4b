"""`SkytaleChannelManager`: channels by name, with background listeners, for agent frameworks.

A tool call in an agent framework needs request/response ("what arrived on channel X?"), not a blocking iterator.
The manager therefore runs one listener thread per channel that moves messages from the native iterator into a
bounded in-memory inbox, and ``receive()`` drains that inbox.

Guarantees (DESIGN §8):

- ``receive()`` sleeps on a ``threading.Condition`` and is woken by the arrival itself: no polling.
- ``receive()`` returns everything the relay had stored for the channel when it was called, so messages sent (and
  acknowledged) before the call are never split across two calls: at its start it sends the relay a head query
  (``Channel.start_sync``), and once it has a message it waits until the client has applied everything up to
  that head and the listener has moved every message up to it (``Channel.delivered_seq``) into the inbox. The
  round trip overlaps the wait for the first message; no fixed gather window.
- Inboxes are bounded (``buffer_limit``). When an inbox fills up, its listener stops reading, so the rest stays in
  the client's ``data_dir`` (the relay's log and HTTP/2 flow control hold everything behind it): nothing is dropped.
  The consumer is told: after it has received the full inbox, the next ``receive()`` raises
  ``QuotaExceededError`` naming the channel and the bound, and the listener resumes.
- An error from the channel (e.g. this member was removed, an undecryptable message) is raised from the next
  ``receive()`` after the messages that arrived before it.
- ``close()`` stops and joins every listener thread.

Messages already moved into an inbox live in memory only: those not yet received when the manager is closed are
not delivered again by a later manager on the same ``data_dir``.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
import time
import weakref
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Sequence, Union

from ._closing import Closing
from ._native import Channel, Message, SkytaleClient, SyncRequest
from .envelope import Envelope, Protocol
from .errors import ChannelError, QuotaExceededError, SkytaleError

__all__ = ["SkytaleChannelManager", "ChannelView", "DEFAULT_BUFFER_LIMIT"]

DEFAULT_ENDPOINT = "https://relay.skytale.sh:5000"
DEFAULT_API_URL = "https://api.skytale.sh"

#: Messages an inbox holds before its listener pauses (and the consumer gets a ``QuotaExceededError``).
DEFAULT_BUFFER_LIMIT = 10_000

#: Content type of the ``Protocol.RAW`` envelopes that wrap messages which are not envelopes.
RAW_CONTENT_TYPE = "application/octet-stream"

#: The consumer the manager's own methods (``receive``, ``receive_envelopes``, ``pending``) read for. Each consumer
#: of a channel (this one, and every ``ChannelView``) has its own inbox, filled by the channel's listener with every
#: message, so one consumer never drains another's messages.
_DEFAULT_CONSUMER: object = "default"

Arrival = Callable[[], None]


class _Inbox:
    """One consumer's unread messages on one channel, at most ``limit`` of them. Not thread-safe on its own: the
    owning ``_ChannelFeed`` guards it with its condition."""

    def __init__(self, channel_name: str, limit: int) -> None:
        self._channel_name = channel_name
        self._limit = limit
        self._items: Deque[Message] = deque()
        self._overflow: Optional[QuotaExceededError] = None

    def put(self, message: Message) -> None:
        self._items.append(message)
        if len(self._items) >= self._limit and self._overflow is None:
            self._overflow = QuotaExceededError(
                f"quota exceeded: channel {self._channel_name}: {self._limit} messages were waiting unread "
                f"(buffer_limit={self._limit}); its listener paused until now, nothing was dropped"
            )

    def drain(self, limit: Optional[int] = None) -> List[Message]:
        """Removes and returns the oldest ``limit`` messages (all of them if ``None``)."""
        count = len(self._items) if limit is None else min(limit, len(self._items))
        return [self._items.popleft() for _ in range(count)]

    def take_overflow(self) -> Optional[QuotaExceededError]:
        overflow, self._overflow = self._overflow, None
        return overflow

    def holds_listener(self) -> bool:
        """Whether the listener must wait: the inbox is full, or its overflow is not yet reported (so the error
        comes right after the messages that filled it)."""
        return len(self._items) >= self._limit or self._overflow is not None

    def has_news(self) -> bool:
        return bool(self._items) or self._overflow is not None

    def __len__(self) -> int:
        return len(self._items)


class _ChannelFeed:
    """A channel's listener thread and the inboxes it fills.

    Every public method may be called from any thread; all state is guarded by ``_cond``, which is notified on
    every change (arrival, drain, end), so waiters on either side wake exactly when something happened.
    """

    def __init__(self, channel: Channel, buffer_limit: int) -> None:
        self.channel = channel
        self.name = channel.name
        self._cond = threading.Condition()
        self._buffer_limit = buffer_limit
        self._inboxes: Dict[object, _Inbox] = {_DEFAULT_CONSUMER: _Inbox(self.name, buffer_limit)}
        self._arrival_callbacks: List[Arrival] = []
        self._failure: Optional[BaseException] = None
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
            self._inboxes[key] = _Inbox(self.name, self._buffer_limit)
        return key

    def remove_consumer(self, key: object) -> None:
        """Drops a consumer's inbox, so it no longer holds the listener back. Idempotent."""
        with self._cond:
            if self._inboxes.pop(key, None) is not None:
                self._cond.notify_all()

    def _inbox(self, consumer: object) -> _Inbox:
        inbox = self._inboxes.get(consumer)
        if inbox is None:
            raise ChannelError(f"channel error: {self.name}: this view of the channel is closed")
        return inbox

    def pending(self, consumer: object = _DEFAULT_CONSUMER) -> int:
        with self._cond:
            return len(self._inbox(consumer))

    def take_nowait(self, limit: Optional[int] = None, consumer: object = _DEFAULT_CONSUMER) -> Optional[List[Message]]:
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

    def has_news(self, consumer: object = _DEFAULT_CONSUMER) -> bool:
        with self._cond:
            return self._inbox(consumer).has_news() or self._ended

    def start_sync(self) -> Optional[SyncRequest]:
        """Sends the relay head query for a ``receive()`` at its start, so its answer covers every message the
        relay had stored (acknowledged to its sender) when the call was made, and the round trip runs while the
        call waits for its first message. ``None`` if it cannot be sent (the client is closing): ``receive()``
        then returns what it has."""
        try:
            return self.channel.start_sync()
        except SkytaleError:
            return None

    def sync_target(self, request: Optional[SyncRequest], timeout: float) -> Optional[int]:
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
            return (
                self._moved_seq >= target or self._ended or self._stopping or self._any_inbox_holds_listener()
            )

    def receive(self, timeout: float, consumer: object = _DEFAULT_CONSUMER) -> List[Message]:
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


class ChannelView(Closing):
    """One consumer's own view of a channel: every message that arrives after the view was opened, oldest first,
    independent of the manager's ``receive()`` and of every other view (adapters, the bridge and transports each
    read through one, so none drains another's messages).

    A view's inbox is bounded like the manager's and holds the channel's listener back when full, so a view that
    is no longer read must be closed (``close()``, or use it as a context manager). Thread-safe.
    """

    def __init__(self, feed: _ChannelFeed) -> None:
        self._feed = feed
        self._key = feed.add_consumer()

    @property
    def channel_name(self) -> str:
        return self._feed.name

    def receive(self, timeout: float = 5.0) -> List[bytes]:
        """As :meth:`SkytaleChannelManager.receive`, for this view, as bytes."""
        return [message.payload for message in self.receive_messages(timeout)]

    def receive_messages(self, timeout: float = 5.0) -> List[Message]:
        """As :meth:`receive`, each as a :class:`~skytale_sdk.Message`: the payload with its ``sender`` (the
        identity MLS authenticated, unlike anything the payload itself claims), ``seq`` and ``epoch``."""
        return self._feed.receive(timeout, consumer=self._key)

    def receive_envelopes(self, timeout: float = 5.0) -> List[Envelope]:
        """As :meth:`SkytaleChannelManager.receive_envelopes`, for this view."""
        return [_as_envelope(message) for message in self.receive_messages(timeout)]

    def pending(self) -> int:
        """How many messages wait unread in this view."""
        return self._feed.pending(self._key)

    def close(self) -> None:
        """Drops the view's inbox; further calls raise ``ChannelError``. Idempotent."""
        self._feed.remove_consumer(self._key)


def _identity_bytes(identity: Union[bytes, str]) -> bytes:
    if isinstance(identity, str):
        return identity.encode("utf-8")
    if isinstance(identity, (bytes, bytearray)):
        return bytes(identity)
    raise TypeError(f"identity must be bytes or str, got {type(identity).__name__}")


def _as_text(payload: bytes) -> str:
    """UTF-8 text. Bytes that are not UTF-8 become lone surrogates (``surrogateescape``) instead of being
    replaced, so ``text.encode("utf-8", "surrogateescape")`` gives back the exact payload."""
    return payload.decode("utf-8", "surrogateescape")


def _as_envelope(message: Message) -> Envelope:
    """The envelope ``message`` carries (``Protocol.RAW`` if it is not one), with its authenticated sender."""
    try:
        return Envelope.deserialize(message.payload, sender=message.sender)
    except ValueError:
        return Envelope(Protocol.RAW, RAW_CONTENT_TYPE, message.payload, sender=message.sender)


#: Managers not closed yet. At interpreter exit they are closed (listener threads stopped and joined) before the
#: interpreter finalizes, so exiting without ``close()`` is clean.
_open_managers: "weakref.WeakSet[SkytaleChannelManager]" = weakref.WeakSet()


@atexit.register
def _close_open_managers() -> None:
    for manager in list(_open_managers):
        manager.close()


class SkytaleChannelManager(Closing):
    """Encrypted channels by name for agent frameworks, with a background listener per channel.

    ``identity`` (bytes, or str encoded as UTF-8) names the agent. The other parameters default to the
    environment: ``endpoint`` to ``SKYTALE_RELAY`` (else ``https://relay.skytale.sh:5000``), ``data_dir`` to
    ``SKYTALE_DATA_DIR`` (else ``<temp dir>/skytale-<hex(identity)>``, i.e. ``/tmp/...`` unless ``TMPDIR`` or
    ``tempfile.tempdir`` say otherwise), ``api_key`` to ``SKYTALE_API_KEY``, ``api_url`` to ``SKYTALE_API_URL``
    (else ``https://api.skytale.sh``). ``buffer_limit`` bounds each channel's inbox.

    Construction connects, reopens every channel stored in ``data_dir`` and starts listening on each.
    Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        identity: Union[bytes, str],
        endpoint: Optional[str] = None,
        data_dir: Optional[str] = None,
        api_key: Optional[str] = None,
        api_url: Optional[str] = None,
        *,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    ) -> None:
        identity = _identity_bytes(identity)
        if buffer_limit < 1:
            raise ValueError(f"buffer_limit must be at least 1, got {buffer_limit}")
        self._buffer_limit = buffer_limit
        self._client = SkytaleClient(
            endpoint or os.environ.get("SKYTALE_RELAY") or DEFAULT_ENDPOINT,
            data_dir
            or os.environ.get("SKYTALE_DATA_DIR")
            or os.path.join(tempfile.gettempdir(), f"skytale-{identity.hex()}"),
            identity,
            api_key=api_key or os.environ.get("SKYTALE_API_KEY"),
            api_url=api_url or os.environ.get("SKYTALE_API_URL") or DEFAULT_API_URL,
        )
        self._lock = threading.Lock()
        self._feeds: Dict[str, _ChannelFeed] = {}
        self._closed = False
        _open_managers.add(self)
        try:
            for name in self._client.channels():
                self._listen(self._client.open_channel(name))
        except BaseException:
            self.close()
            raise

    # Membership

    def create(self, channel_name: str) -> None:
        """Creates the channel (this agent is its only member) and starts listening."""
        self._ensure_open()
        self._listen(self._client.create_channel(channel_name))

    def join(self, channel_name: str, welcome: bytes) -> None:
        """Joins with the Welcome an existing member's ``add_member`` returned, and starts listening."""
        self._ensure_open()
        self._listen(self._client.join_channel(channel_name, welcome))

    def key_package(self) -> bytes:
        """A one-use MLS key package for an existing member's ``add_member``."""
        self._ensure_open()
        return self._client.generate_key_package()

    def add_member(self, channel_name: str, key_package: bytes) -> bytes:
        """Adds the key package's owner; returns the Welcome it joins with."""
        return self._feed(channel_name).channel.add_member(key_package)

    def invite(self, channel_name: str, max_uses: int = 1, ttl: int = 3600) -> str:
        """An invite token (``skt_inv_...``) redeemable ``max_uses`` times within ``ttl`` seconds; this manager
        admits the agents that redeem it (in the background, several in one commit)."""
        self._ensure_open()
        return self._client.invite(channel_name, max_uses, ttl)

    def join_with_token(self, channel_name: str, token: str, timeout: float = 60.0) -> None:
        """Joins with an invite token, waiting up to ``timeout`` seconds to be admitted; starts listening."""
        self._ensure_open()
        self._listen(self._client.join_with_token(channel_name, token, timeout))

    def list_channels(self) -> List[str]:
        """The channels this manager listens on."""
        with self._lock:
            return list(self._feeds)

    # Messages

    def send(self, channel_name: str, message: Union[str, bytes]) -> None:
        """Sends ``message`` (str is encoded as UTF-8); returns once the relay has durably stored it."""
        payload = message.encode("utf-8") if isinstance(message, str) else message
        self._feed(channel_name).channel.send(payload)

    def send_many(self, channel_name: str, messages: Sequence[Union[str, bytes]]) -> None:
        """Sends ``messages`` in order (str as UTF-8) with one state write and the publishes pipelined; returns
        once the relay durably stored all of them. See ``Channel.send_many`` for failures."""
        payloads = [message.encode("utf-8") if isinstance(message, str) else message for message in messages]
        self._feed(channel_name).channel.send_many(payloads)

    def receive(self, channel_name: str, timeout: float = 5.0) -> List[str]:
        """Every buffered message, oldest first, as text; waits up to ``timeout`` seconds while there is none and
        returns ``[]`` if none came. Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``).
        Raises ``QuotaExceededError`` once after the inbox had filled up, and the channel's error once it
        failed."""
        return [_as_text(message.payload) for message in self._feed(channel_name).receive(timeout)]

    def receive_latest(self, channel_name: str, timeout: float = 5.0) -> Optional[str]:
        """Only the most recent message (the older buffered ones are discarded), or ``None``."""
        messages = self.receive(channel_name, timeout)
        return messages[-1] if messages else None

    def pending(self, channel_name: str) -> int:
        """How many messages are buffered for ``receive()`` right now."""
        return self._feed(channel_name).pending()

    def view(self, channel_name: str) -> ChannelView:
        """A new consumer view of the channel (see :class:`ChannelView`): it receives every message that arrives
        from now on, whoever else reads the channel."""
        return ChannelView(self._feed(channel_name))

    def send_envelope(self, channel_name: str, envelope: Envelope) -> None:
        """Sends ``envelope.serialize()``."""
        self.send(channel_name, envelope.serialize())

    def receive_envelopes(self, channel_name: str, timeout: float = 5.0) -> List[Envelope]:
        """Like ``receive()``, parsed as envelopes; a message that is not one is wrapped as ``Protocol.RAW``
        (content type ``application/octet-stream``). Each has its ``sender``, as MLS authenticated it."""
        return [_as_envelope(message) for message in self._feed(channel_name).receive(timeout)]

    # Lifecycle

    def close(self) -> None:
        """Stops and joins every listener thread, then closes the client. Idempotent."""
        _open_managers.discard(self)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            feeds = list(self._feeds.values())
        for feed in feeds:
            feed.stop()
        for feed in feeds:
            feed.join()
        self._client.close()

    # Internals

    def _ensure_open(self) -> None:
        if self._closed:
            raise SkytaleError("runtime error: the SkytaleChannelManager is closed")

    def _listen(self, channel: Channel) -> None:
        feed = _ChannelFeed(channel, self._buffer_limit)
        with self._lock:
            if self._closed:
                channel.close()
                raise SkytaleError("runtime error: the SkytaleChannelManager is closed")
            self._feeds[feed.name] = feed
            feed.start()

    def _feed(self, channel_name: str) -> _ChannelFeed:
        self._ensure_open()
        with self._lock:
            feed = self._feeds.get(channel_name)
        if feed is None:
            raise ChannelError(f"channel error: unknown channel: {channel_name} (not created or joined by this manager)")
        return feed

"""`SkytaleChannelManager`: channels by name, with background listeners, for agent frameworks.

A tool call in an agent framework needs request/response ("what arrived on channel X?"), not a blocking iterator.
The manager therefore runs one listener thread per channel that moves messages from the native iterator into a
bounded in-memory inbox, and ``receive()`` drains that inbox.

Guarantees (docs/python.md):

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

The listener and its inboxes are :class:`~skytale_sdk._feed.ChannelFeed`. Package-internal, for
:mod:`skytale_sdk.aio`: :func:`channel_feed` and :func:`view_feed` give the feed (and consumer) a read goes through.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Callable

from ._closing import Closing
from ._feed import ChannelFeed
from ._native import Channel, Message, SkytaleClient
from ._received import as_envelope, as_text
from .envelope import Envelope
from .errors import ChannelError, SkytaleError

__all__ = ["SkytaleChannelManager", "ChannelView", "DEFAULT_BUFFER_LIMIT"]

DEFAULT_ENDPOINT = "https://relay.skytale.sh:5000"
DEFAULT_API_URL = "https://api.skytale.sh"

#: Messages an inbox holds before its listener pauses (and the consumer gets a ``QuotaExceededError``).
DEFAULT_BUFFER_LIMIT = 10_000


class ChannelView(Closing):
    """One consumer's own view of a channel: every message that arrives after the view was opened, oldest first,
    independent of the manager's ``receive()`` and of every other view (adapters, the bridge and transports each
    read through one, so none drains another's messages).

    A view's inbox is bounded like the manager's and holds the channel's listener back when full, so a view that
    is no longer read must be closed (``close()``, or use it as a context manager). Thread-safe.
    """

    def __init__(self, feed: ChannelFeed) -> None:
        self._feed = feed
        self._key = feed.add_consumer()

    @property
    def channel_name(self) -> str:
        return self._feed.name

    def receive(self, timeout: float = 5.0) -> list[bytes]:
        """As :meth:`SkytaleChannelManager.receive`, for this view, as bytes."""
        return [message.payload for message in self.receive_messages(timeout)]

    def receive_messages(self, timeout: float = 5.0) -> list[Message]:
        """As :meth:`receive`, each as a :class:`~skytale_sdk.Message`: the payload with its ``sender`` (the
        identity MLS authenticated, unlike anything the payload itself claims), ``seq`` and ``epoch``."""
        return self._feed.receive(timeout, consumer=self._key)

    def receive_envelopes(self, timeout: float = 5.0) -> list[Envelope]:
        """As :meth:`SkytaleChannelManager.receive_envelopes`, for this view."""
        return [as_envelope(message) for message in self.receive_messages(timeout)]

    def pending(self) -> int:
        """How many messages wait unread in this view."""
        return self._feed.pending(self._key)

    def close(self) -> None:
        """Drops the view's inbox; further calls raise ``ChannelError``. Idempotent."""
        self._feed.remove_consumer(self._key)


def _identity_bytes(identity: bytes | str) -> bytes:
    if isinstance(identity, str):
        return identity.encode("utf-8")
    if isinstance(identity, (bytes, bytearray)):
        return bytes(identity)
    raise TypeError(f"identity must be bytes or str, got {type(identity).__name__}")


#: Managers not closed yet. At interpreter exit they are closed (listener threads stopped and joined) before the
#: interpreter finalizes, so exiting without ``close()`` is clean.
_open_managers: weakref.WeakSet[SkytaleChannelManager] = weakref.WeakSet()


@atexit.register
def _close_open_managers() -> None:
    for manager in list(_open_managers):
        manager.close()


class SkytaleChannelManager(Closing):
    """Encrypted channels by name for agent frameworks, with a background listener per channel.

    ``identity`` (bytes, or str encoded as UTF-8) names the agent. ``endpoint`` is the relay's URL, or several
    separated by commas for failover: the client links to the first that answers and moves to the next when its
    relay goes away or drains. The other parameters default to the environment: ``endpoint`` to ``SKYTALE_RELAY``
    (unset: ``https://relay.skytale.sh:5000``; set but empty, or a list with an empty entry, raises
    :class:`TransportError` naming it), ``data_dir`` to
    ``SKYTALE_DATA_DIR`` (else ``~/.skytale/<hex(identity)>``), ``api_key`` to ``SKYTALE_API_KEY``, ``api_url``
    to ``SKYTALE_API_URL`` (else ``https://api.skytale.sh``). ``buffer_limit`` bounds each channel's inbox.

    Construction connects, reopens every channel stored in ``data_dir`` and starts listening on each.
    Use it as a context manager, or call ``close()``.
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
        identity = _identity_bytes(identity)
        if buffer_limit < 1:
            raise ValueError(f"buffer_limit must be at least 1, got {buffer_limit}")
        self._buffer_limit = buffer_limit
        self._client = SkytaleClient(
            # An empty endpoint or SKYTALE_RELAY is a mistake to report (the client names it), not a wish for the
            # hosted relay.
            endpoint if endpoint is not None else os.environ.get("SKYTALE_RELAY", DEFAULT_ENDPOINT),
            data_dir
            or os.environ.get("SKYTALE_DATA_DIR")
            or os.path.join(os.path.expanduser("~"), ".skytale", identity.hex()),
            identity,
            api_key=api_key or os.environ.get("SKYTALE_API_KEY"),
            api_url=api_url or os.environ.get("SKYTALE_API_URL") or DEFAULT_API_URL,
        )
        self._lock = threading.Lock()
        self._feeds: dict[str, ChannelFeed] = {}
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
        """Creates the channel (this agent is its only member) and starts listening. A channel this agent already
        holds is left as it is, so a script can be run again: unless it can no longer be used (removed, left, or
        gone from a relay whose data was reset), which raises its :class:`ChannelError`."""
        self._ensure_open()
        held = self._held(channel_name)
        if held is not None:
            held.ensure_active()
            return
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
        """Joins with an invite token, waiting up to ``timeout`` seconds to be admitted; starts listening. A channel
        this agent already holds is left as it is, and the token unused, as :meth:`create` does."""
        self._ensure_open()
        held = self._held(channel_name)
        if held is not None:
            held.ensure_active()
            return
        self._listen(self._client.join_with_token(channel_name, token, timeout))

    @property
    def connected(self) -> bool:
        """Whether this agent has a stream to the relay right now. While it has none, ``receive()`` returns nothing
        new (the messages wait at the relay) and sends wait for the reconnection, which is automatic."""
        return self._client.connected

    def on_connection_change(self, callback: Callable[[bool], object] | None) -> None:
        """Calls ``callback(connected)`` each time the stream to the relay comes up or goes down, in order, from a
        thread of the SDK's own (so it should return quickly); replaces the previous callback, and ``None`` removes
        it. Nothing is reported once :meth:`close` began."""
        self._ensure_open()
        self._client.on_connection_change(callback)

    def list_channels(self) -> list[str]:
        """The channels this manager listens on."""
        with self._lock:
            return list(self._feeds)

    def members(self, channel_name: str) -> list[bytes]:
        """The channel's current members, as identity bytes (this agent included)."""
        return self._feed(channel_name).channel.members()

    def remove_member(self, channel_name: str, identity: bytes | str) -> None:
        """Removes the member with ``identity`` (str as UTF-8) from the channel; its listener ends with a
        :class:`ChannelError` saying so. Also how to clean up after an ``add_member`` whose Welcome was never used."""
        member = identity.encode("utf-8") if isinstance(identity, str) else identity
        self._feed(channel_name).channel.remove_member(member)

    def rotate_key(self, channel_name: str) -> None:
        """Commits a fresh key for this agent in the channel (a new epoch: forward secrecy); the others follow."""
        self._feed(channel_name).channel.rotate_key()

    def leave(self, channel_name: str) -> None:
        """Leaves the channel (the other members see this agent removed) and stops listening on it; messages
        buffered but not yet received are dropped, and every view of the channel ends."""
        feed = self._feed(channel_name)
        feed.channel.leave()
        with self._lock:
            if self._feeds.get(channel_name) is feed:
                del self._feeds[channel_name]
        feed.stop()
        feed.join()

    # Messages

    def send(self, channel_name: str, message: str | bytes) -> None:
        """Sends ``message`` (str is encoded as UTF-8); returns once the relay has durably stored it."""
        payload = message.encode("utf-8") if isinstance(message, str) else message
        self._feed(channel_name).channel.send(payload)

    def send_many(self, channel_name: str, messages: Sequence[str | bytes]) -> None:
        """Sends ``messages`` in order (str as UTF-8) with one state write and the publishes pipelined; returns
        once the relay durably stored all of them. See ``Channel.send_many`` for failures."""
        payloads = [message.encode("utf-8") if isinstance(message, str) else message for message in messages]
        self._feed(channel_name).channel.send_many(payloads)

    def receive(self, channel_name: str, timeout: float = 5.0) -> list[str]:
        """Every buffered message, oldest first, as text; waits up to ``timeout`` seconds while there is none and
        returns ``[]`` if none came. Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``).
        Raises ``QuotaExceededError`` once after the inbox had filled up, and the channel's error once it
        failed."""
        return [as_text(message.payload) for message in self._feed(channel_name).receive(timeout)]

    def receive_messages(self, channel_name: str, timeout: float = 5.0) -> list[Message]:
        """As :meth:`receive` (the same inbox), each as a :class:`~skytale_sdk.Message`: the payload with its
        ``sender`` (the identity MLS authenticated), ``seq``, ``epoch`` and ``timestamp``."""
        return self._feed(channel_name).receive(timeout)

    def receive_latest(self, channel_name: str, timeout: float = 5.0) -> str | None:
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

    def receive_envelopes(self, channel_name: str, timeout: float = 5.0) -> list[Envelope]:
        """Like ``receive()``, parsed as envelopes; a message that is not one is wrapped as ``Protocol.RAW``
        (content type ``application/octet-stream``). Each has its ``sender``, as MLS authenticated it."""
        return [as_envelope(message) for message in self._feed(channel_name).receive(timeout)]

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

    def _held(self, channel_name: str) -> Channel | None:
        with self._lock:
            feed = self._feeds.get(channel_name)
        return None if feed is None else feed.channel

    def _listen(self, channel: Channel) -> None:
        feed = ChannelFeed(channel, self._buffer_limit)
        with self._lock:
            if self._closed:
                channel.close()
                raise SkytaleError("runtime error: the SkytaleChannelManager is closed")
            self._feeds[feed.name] = feed
            feed.start()

    def _feed(self, channel_name: str) -> ChannelFeed:
        self._ensure_open()
        with self._lock:
            feed = self._feeds.get(channel_name)
        if feed is None:
            raise ChannelError(
                f"channel error: unknown channel: {channel_name} (not created or joined by this manager)"
            )
        return feed


# Package-internal seams (see the module docstring): not part of the public API.


def channel_feed(manager: SkytaleChannelManager, channel_name: str) -> ChannelFeed:
    """The feed the manager's own methods read ``channel_name`` through (``DEFAULT_CONSUMER``); raises as they
    do for a closed manager or an unknown channel."""
    return manager._feed(channel_name)  # noqa: SLF001 - the manager is this module's own class


def view_feed(view: ChannelView) -> tuple[ChannelFeed, object]:
    """The feed a view reads and the view's consumer key in it."""
    return view._feed, view._key  # noqa: SLF001 - the view is this module's own class

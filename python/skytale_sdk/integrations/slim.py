"""SLIM publish/subscribe over Skytale channels: opaque bytes plus a content type, end-to-end encrypted.

A SLIM message is one ``Envelope(Protocol.SLIM, content_type, payload, metadata={"destination": <channel>})``
(docs/integrations.md, "Wire format"). The adapter reads each channel through its own ``ChannelView``, so it never
takes messages meant for ``manager.receive()``, another adapter or the bridge. A view sees only what arrives after
it opened; that is why ``receive()`` on a channel that was never ``subscribe()``d raises instead of subscribing
implicitly: an implicit subscription would silently miss everything sent before the first ``receive()``.

Messages of other protocols on a subscribed channel are skipped, logged (debug, logger
``skytale_sdk.integrations.slim``) and counted per protocol in :meth:`SLIMAdapter.skipped`. Plain ``send()``
messages (``Protocol.RAW``) are SLIM messages too: their bytes, with content type ``application/octet-stream``.
"""

from __future__ import annotations

import logging
import threading
import time

from .._closing import Closing
from .._stats import ReaderStats
from ..envelope import Envelope, Protocol
from ..errors import ChannelError
from ..manager import ChannelView, SkytaleChannelManager

__all__ = ["SLIMAdapter", "DEFAULT_CONTENT_TYPE"]

#: The content type of a SLIM message whose publisher named none (SLIM payloads are opaque bytes).
DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: Envelope metadata key naming the channel a SLIM message was published to.
DESTINATION_KEY = "destination"

_ACCEPTED = (Protocol.SLIM, Protocol.RAW)

logger: logging.Logger = logging.getLogger(__name__)


class SLIMAdapter(Closing):
    """SLIM-style ``publish``/``subscribe``/``receive`` on the channels ``manager`` has created or joined.

    Thread-safe. Use it as a context manager, or call :meth:`close`, which closes the adapter's views (the
    manager stays open).
    """

    def __init__(self, manager: SkytaleChannelManager) -> None:
        self._manager = manager
        self._lock = threading.Lock()
        self._views: dict[str, ChannelView] = {}
        self._stats = ReaderStats()
        self._closed = False

    def publish(self, destination: str, payload: bytes | str, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        """Sends ``payload`` (str is encoded as UTF-8; the content type stays what is given) to the channel
        ``destination``; returns once the relay has stored it. Raises ``TypeError`` for a payload that is not
        bytes or str, ``ValueError`` for an empty content type, ``ChannelError`` for a channel the manager does
        not have."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        elif not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"SLIM payload must be bytes or str, got {type(payload).__name__}")
        if not isinstance(content_type, str) or not content_type.strip():
            raise ValueError(f"SLIM content_type must be a non-empty string, got {content_type!r}")
        envelope = Envelope(Protocol.SLIM, content_type, bytes(payload), metadata={DESTINATION_KEY: destination})
        self._manager.send_envelope(destination, envelope)

    def subscribe(self, channel: str) -> None:
        """Starts receiving ``channel``'s SLIM messages (those that arrive from now on) through the adapter's own
        view. Idempotent. Raises ``ChannelError`` for a channel the manager does not have."""
        with self._lock:
            self._ensure_open()
            if channel not in self._views:
                self._views[channel] = self._manager.view(channel)

    def receive(self, channel: str, timeout: float = 5.0) -> list[bytes]:
        """The payloads of the SLIM and RAW messages that arrived on ``channel``, oldest first; waits up to
        ``timeout`` seconds while there is none and returns ``[]`` if none came. Raises ``ChannelError`` if
        ``channel`` is not subscribed."""
        return [envelope.payload for envelope in self.receive_envelopes(channel, timeout)]

    def receive_envelopes(self, channel: str, timeout: float = 5.0) -> list[Envelope]:
        """As :meth:`receive`, as envelopes, for the content type (RAW messages come as
        ``Protocol.RAW``/``application/octet-stream``) and the metadata."""
        view = self._view(channel)
        deadline = time.monotonic() + timeout
        while True:
            batch = view.receive_envelopes(max(deadline - time.monotonic(), 0.0))
            accepted = [envelope for envelope in batch if self._accepts(envelope, channel)]
            # A batch of only other protocols' messages is not an answer: keep waiting for SLIM ones.
            if accepted or time.monotonic() >= deadline:
                return accepted

    def skipped(self) -> dict[str, int]:
        """How many messages of each other protocol (by its wire value, e.g. ``"a2a"``) were skipped so far."""
        return self._stats.skipped_by_protocol()

    def close(self) -> None:
        """Closes the adapter's views; further calls raise ``ChannelError``. Idempotent."""
        with self._lock:
            self._closed = True
            views, self._views = list(self._views.values()), {}
        for view in views:
            view.close()

    def _accepts(self, envelope: Envelope, channel: str) -> bool:
        if envelope.protocol in _ACCEPTED:
            return True
        self._stats.count_skipped(envelope.protocol.value)
        logger.debug("skipped a %s message on %s: not SLIM", envelope.protocol.value, channel)
        return False

    def _view(self, channel: str) -> ChannelView:
        with self._lock:
            self._ensure_open()
            view = self._views.get(channel)
        if view is None:
            raise ChannelError(
                f"channel error: {channel}: not subscribed by this SLIMAdapter; call subscribe({channel!r}) first "
                "(a subscription sees the messages that arrive after it)"
            )
        return view

    def _ensure_open(self) -> None:
        if self._closed:
            raise ChannelError("channel error: this SLIMAdapter is closed")

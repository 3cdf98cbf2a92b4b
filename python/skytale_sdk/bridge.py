"""Cross-protocol bridge: reads one channel, translates each message to another protocol, sends it to another
channel (A2A <-> SLIM, MCP <-> SLIM, A2A <-> MCP; same protocol = pass-through).

Each ``bridge()`` call starts one route: a thread that reads the source channel through its own ``ChannelView``
(so it never drains ``manager.receive()`` or any other reader) and sends each translated envelope to the target.
The translations, field by field, are documented in docs/integrations.md ("Cross-protocol bridge") and
implemented, as pure functions, in :mod:`skytale_sdk._translate`.

Nothing is dropped silently. A message the route cannot translate (another protocol than the route's source,
malformed, or without a mapping to the target protocol) is logged (logger ``skytale_sdk.bridge``, warning) and
counted by reason; a send that keeps failing is retried with backoff, then logged (error) and counted. A message
the route already carried (its ``"bridged_from"`` metadata names the route's target) is not bridged again, so two
routes A->B and B->A never ping-pong (counted as ``not_rebridged``, logged at debug level).

The A2A translations need ``a2a-sdk`` (extra ``[a2a]``), the MCP ones ``mcp`` (extra ``[mcp]``); both are imported
only when a route needs them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

from ._closing import Closing
from ._translate import (
    BRIDGEABLE,
    INTERNAL_ERROR,
    UNTRANSLATABLE_REASONS,
    Hop,
    Untranslatable,
    bridged_from,
    require_extras,
    translate,
)
from .envelope import Envelope, Protocol
from .errors import ChannelError, QuotaExceededError, SkytaleError
from .manager import ChannelView, SkytaleChannelManager

__all__ = ["ProtocolBridge", "Route", "RouteStats", "UNTRANSLATABLE_REASONS"]

logger: logging.Logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteStats:
    """A snapshot of one route's counters.

    ``forwarded``: messages translated and stored on the target. ``untranslatable``: messages not translated, by
    reason (``UNTRANSLATABLE_REASONS``). ``not_rebridged``: messages the route had already carried (loop guard).
    ``send_failures``: translated messages that could not be sent after every retry. ``error``: why the route
    ended on its own (e.g. the source channel failed), else ``None``.
    """

    source: str
    target: str
    source_protocol: Protocol
    target_protocol: Protocol
    forwarded: int
    untranslatable: dict[str, int]
    not_rebridged: int
    send_failures: int
    running: bool
    error: str | None


class Route:
    """One ``source -> target`` bridge and its thread; made by :meth:`ProtocolBridge.bridge`."""

    def __init__(
        self,
        manager: SkytaleChannelManager,
        source: str,
        target: str,
        source_protocol: Protocol,
        target_protocol: Protocol,
        *,
        agent_id: str,
        send_attempts: int,
        retry_backoff: float,
    ) -> None:
        self.source = source
        self.target = target
        self.source_protocol = source_protocol
        self.target_protocol = target_protocol
        self._manager = manager
        self._hop = Hop(source, target, agent_id)
        self._send_attempts = send_attempts
        self._retry_backoff = retry_backoff
        self._lock = threading.Lock()
        self._forwarded = 0
        self._untranslatable: Counter[str] = Counter()
        self._not_rebridged = 0
        self._send_failures = 0
        self._error: str | None = None
        self._stopping = threading.Event()
        self._view: ChannelView = manager.view(source)
        self._thread = threading.Thread(target=self._run, name=f"skytale-bridge:{source}->{target}", daemon=True)
        self._thread.start()

    def stats(self) -> RouteStats:
        with self._lock:
            return RouteStats(
                source=self.source,
                target=self.target,
                source_protocol=self.source_protocol,
                target_protocol=self.target_protocol,
                forwarded=self._forwarded,
                untranslatable=dict(self._untranslatable),
                not_rebridged=self._not_rebridged,
                send_failures=self._send_failures,
                running=self._thread.is_alive(),
                error=self._error,
            )

    @property
    def key(self) -> tuple[str, str, Protocol, Protocol]:
        return self.source, self.target, self.source_protocol, self.target_protocol

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Asks the thread to stop: closing the view wakes a waiting ``receive``, the event a retry's backoff."""
        self._stopping.set()
        self._view.close()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        wait = 60.0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                envelopes = self._view.receive_envelopes(timeout=wait)
            except QuotaExceededError as error:
                # The view's inbox filled up while the route was busy: nothing was dropped, reading resumes.
                logger.warning("bridge %s -> %s: %s", self.source, self.target, error)
                continue
            except SkytaleError as error:
                if not self._stopping.is_set():
                    self._end(f"the source channel failed: {error}")
                return
            if not envelopes and time.monotonic() - started < wait:
                # A view returns [] before its timeout only once the channel's listener has ended.
                if not self._stopping.is_set():
                    self._end("the source channel was closed")
                return
            for envelope in envelopes:
                self._forward(envelope)

    def _forward(self, envelope: Envelope) -> None:
        try:
            if self.target in bridged_from(envelope):
                with self._lock:
                    self._not_rebridged += 1
                logger.debug("bridge %s -> %s: the message came from %s already", self.source, self.target, self.target)
                return
            translated = translate(envelope, self.source_protocol, self.target_protocol, self._hop)
        except Untranslatable as problem:
            self._count_untranslatable(envelope, problem.reason, problem.detail)
            return
        except Exception as error:  # noqa: BLE001 - a translation bug must not end the route or lose the count
            logger.exception("bridge %s -> %s: translation failed", self.source, self.target)
            self._count_untranslatable(envelope, INTERNAL_ERROR, repr(error))
            return
        self._send(translated)

    def _count_untranslatable(self, envelope: Envelope, reason: str, detail: str) -> None:
        with self._lock:
            self._untranslatable[reason] += 1
        logger.warning(
            "bridge %s -> %s (%s -> %s): untranslatable %s message (%s, %d bytes): %s: %s",
            self.source,
            self.target,
            self.source_protocol.value,
            self.target_protocol.value,
            envelope.protocol.value,
            envelope.content_type,
            len(envelope.payload),
            reason,
            detail,
        )

    def _send(self, envelope: Envelope) -> None:
        for attempt in range(self._send_attempts):
            try:
                self._manager.send_envelope(self.target, envelope)
            except SkytaleError as error:
                last_error = error
                if attempt + 1 < self._send_attempts and not self._stopping.wait(self._retry_backoff * 2**attempt):
                    continue
                break
            with self._lock:
                self._forwarded += 1
            return
        with self._lock:
            self._send_failures += 1
        logger.error(
            "bridge %s -> %s: could not send a translated %s message (%s, %d bytes) after %d attempt(s): %s",
            self.source,
            self.target,
            envelope.protocol.value,
            envelope.content_type,
            len(envelope.payload),
            attempt + 1,
            last_error,
        )

    def _end(self, reason: str) -> None:
        with self._lock:
            self._error = reason
        logger.error("bridge %s -> %s stopped: %s", self.source, self.target, reason)


class ProtocolBridge(Closing):
    """Bridges channels of one ``manager`` across protocols; see the module docstring.

    ``agent_id`` is the A2A ``agent_id`` of messages the bridge creates for A2A (when the source names none).
    A failed send is tried ``send_attempts`` times in all, waiting ``retry_backoff`` seconds before the first
    retry and twice as long before each next one. Use it as a context manager, or call :meth:`stop`.
    """

    def __init__(
        self,
        manager: SkytaleChannelManager,
        *,
        agent_id: str = "skytale-bridge",
        send_attempts: int = 5,
        retry_backoff: float = 0.2,
    ) -> None:
        if send_attempts < 1:
            raise ValueError(f"send_attempts must be at least 1, got {send_attempts}")
        if retry_backoff < 0:
            raise ValueError(f"retry_backoff must not be negative, got {retry_backoff}")
        self._manager = manager
        self._agent_id = agent_id
        self._send_attempts = send_attempts
        self._retry_backoff = retry_backoff
        self._lock = threading.Lock()
        self._routes: list[Route] = []

    def bridge(
        self,
        source: str,
        target: str,
        source_protocol: Protocol | str,
        target_protocol: Protocol | str,
    ) -> Route:
        """Starts forwarding every ``source_protocol`` message that arrives on ``source`` from now on to
        ``target``, translated to ``target_protocol``; returns the route (``route.stats()``).

        Raises ``ValueError`` for a protocol that cannot be bridged (RAW: a SLIM route reads RAW messages too)
        or a route that is already running, ``ChannelError`` for a channel the manager does not have, and
        ``ImportError`` naming the extra when a2a-sdk or mcp is needed but missing."""
        source_protocol, target_protocol = Protocol(source_protocol), Protocol(target_protocol)
        for protocol in (source_protocol, target_protocol):
            if protocol not in BRIDGEABLE:
                raise ValueError(
                    f"cannot bridge {protocol.value!r} messages: use one of "
                    f"{', '.join(p.value for p in BRIDGEABLE)} (a slim route also reads raw messages)"
                )
        require_extras(source_protocol, target_protocol)
        if source == target and source_protocol is target_protocol:
            raise ValueError(f"bridging {source} to itself without translation would only duplicate its messages")
        if target not in self._manager.list_channels():
            raise ChannelError(f"channel error: unknown channel: {target} (not created or joined by this manager)")
        with self._lock:
            key = (source, target, source_protocol, target_protocol)
            if any(route.key == key and route.running for route in self._routes):
                raise ValueError(
                    f"already bridging {source} ({source_protocol.value}) -> {target} ({target_protocol.value})"
                )
            route = Route(
                self._manager,
                source,
                target,
                source_protocol,
                target_protocol,
                agent_id=self._agent_id,
                send_attempts=self._send_attempts,
                retry_backoff=self._retry_backoff,
            )
            self._routes.append(route)
        return route

    def stats(self) -> list[RouteStats]:
        """Every route's counters, in the order the routes were started (stopped routes included)."""
        with self._lock:
            routes = list(self._routes)
        return [route.stats() for route in routes]

    def stop(self) -> None:
        """Stops every route and joins its thread. Idempotent; ``bridge()`` may start new routes afterwards."""
        with self._lock:
            routes = list(self._routes)
        for route in routes:
            route.stop()
        for route in routes:
            route.join()

    def close(self) -> None:
        """The same as :meth:`stop`, so a ``with`` block stops the bridge when it ends."""
        self.stop()

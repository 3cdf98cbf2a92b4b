"""MCP (Model Context Protocol) over an end-to-end encrypted Skytale channel, on the real ``mcp`` package.

Each JSON-RPC message is one ``Envelope(Protocol.MCP, "application/json", <JSON>)`` (docs/integrations.md,
"Wire format"). Three ways in, lowest level first:

- :class:`SkytaleTransport`: ``await write(message)`` / ``await read()`` / ``await close()`` on raw JSON-RPC.
- :func:`skytale_client` / :func:`skytale_server`: async context managers yielding the ``(read_stream,
  write_stream)`` pair that ``mcp.ClientSession`` and the low-level ``Server.run`` take, like ``stdio_client``.
- :func:`serve`: runs an ``mcp`` ``Server`` or ``MCPServer`` (the former FastMCP) on a channel until cancelled.

A channel carries ONE MCP session (one client, one server). JSON-RPC ids are only unique within a session and a
channel is a group broadcast, so two clients on one channel would each take the other's responses as their own;
serve several clients with one channel each. Other members may read the channel (they see the session, e.g. for
audit) but must not write MCP to it. So that a member who does cannot corrupt the session, a transport can be
bound to its peer (MLS authenticates every message's sender): the server side binds itself to the member whose
MCP message comes first (the client's ``initialize``) unless told which client to serve, and a client can be told
its server. MCP messages from anyone else are skipped, logged (warning) and counted in
:meth:`SkytaleTransport.foreign`.

Reads go through the transport's own channel view, never ``manager.receive()``, and the relay does not deliver a
member's own messages back, so a transport never reads its own writes. Messages of other protocols are skipped,
logged (debug) and counted in :meth:`SkytaleTransport.skipped`; MCP envelopes whose payload is not one JSON-RPC
message are logged (warning), counted in :meth:`SkytaleTransport.malformed` and, on the streams, handed to the
mcp session as an ``Exception`` item, as the stdio transport does with a bad line.

asyncio only (the channel views wake the asyncio loop); the ``mcp`` package runs on asyncio through anyio.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Callable, Union, get_args

try:
    import anyio
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from mcp.server.lowlevel import Server
    from mcp.server.mcpserver import MCPServer
    from mcp.shared.message import SessionMessage
    from mcp.types import JSONRPCError, JSONRPCMessage, jsonrpc_message_adapter
except ImportError as _error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"skytale_sdk.integrations.mcp_transport needs the mcp package ({_error}): "
        "pip install '.[mcp]' in the Skytale source tree"
    ) from _error

from .._native import Message
from .._received import as_envelope
from .._stats import ReaderStats
from ..aio import AsyncChannelView, AsyncSkytaleChannelManager
from ..envelope import Envelope, Protocol
from ..errors import ChannelError, QuotaExceededError
from ..manager import SkytaleChannelManager

__all__ = ["SkytaleTransport", "skytale_client", "skytale_server", "serve", "CONTENT_TYPE"]

logger: logging.Logger = logging.getLogger("skytale_sdk.integrations.mcp")

#: The content type of every MCP envelope: one JSON-RPC 2.0 message as UTF-8 JSON.
CONTENT_TYPE = "application/json"

#: What ``write`` takes: a JSON-RPC message as a dict, or as one of the ``mcp`` package's JSON-RPC models.
Outgoing = Union[Mapping[str, Any], JSONRPCMessage]

_JSONRPC_MODELS = get_args(JSONRPCMessage)

#: A transport runs over either manager; the sync one does the work.
AnyManager = Union[SkytaleChannelManager, AsyncSkytaleChannelManager]

#: The stream pair the ``mcp`` package's sessions take (``mcp.client._transport.TransportStreams``).
Streams = tuple[MemoryObjectReceiveStream[Union[SessionMessage, Exception]], MemoryObjectSendStream[SessionMessage]]


@dataclass(frozen=True)
class _Incoming:
    """One JSON-RPC message from the channel, as sent (``raw``) and as the ``mcp`` model (``message``)."""

    raw: dict[str, Any]
    message: JSONRPCMessage


@dataclass(frozen=True)
class _ChannelEnded:
    """Slot marker: nothing more will arrive, because the channel's manager closed it or it failed."""

    failure: Exception | None = None

    def error(self, channel: str) -> Exception:
        if self.failure is not None:
            return self.failure
        return ChannelError(f"channel error: {channel}: the channel ended (its manager closed it)")


_Item = Union[_Incoming, ValueError, _ChannelEnded]


class SkytaleTransport:
    """JSON-RPC messages over one channel that ``manager`` (a :class:`SkytaleChannelManager`, or an
    :class:`~skytale_sdk.aio.AsyncSkytaleChannelManager`) has already created or joined.

    The transport sees every message that arrives after it was constructed: construct the receiving side's
    transport before the other side writes. Use it within one asyncio event loop; close it when done (or use
    ``async with``), since an unread view holds the channel's listener back once its inbox is full.

    ``peer`` binds the transport to one member: MCP messages whose MLS-authenticated sender is not that identity
    are skipped (see :meth:`foreign`). ``bind_first_peer=True`` binds it to the sender of the first MCP message
    instead (what a server does). With neither, MCP messages from every member are read.
    """

    def __init__(
        self, manager: AnyManager, channel: str, *, peer: bytes | None = None, bind_first_peer: bool = False
    ) -> None:
        if peer is not None and not isinstance(peer, bytes):
            raise TypeError(f"peer must be the peer's identity as bytes, got {type(peer).__name__}")
        # Either manager's view (raises ChannelError for a channel it does not know), awaited, and its
        # send_envelope run in a worker thread (which is what the async manager's does).
        if isinstance(manager, AsyncSkytaleChannelManager):
            self._view = manager.view(channel)
            self._send_envelope: Callable[[str, Envelope], Awaitable[None]] = manager.send_envelope
        elif isinstance(manager, SkytaleChannelManager):
            self._view = AsyncChannelView(manager.view(channel))
            self._send_envelope = functools.partial(asyncio.to_thread, manager.send_envelope)
        else:
            raise TypeError(f"manager must be a SkytaleChannelManager, got {type(manager).__name__}")
        self._channel = channel
        self._peer = peer
        self._bind_first_peer = bind_first_peer
        self._stats = ReaderStats()
        self._closed = False
        # The task that sorts the view's messages (started by the first read, in the running loop) hands them to
        # readers through a one-slot hand-over, so an unread transport leaves the rest in its view, which holds the
        # channel's listener back: backpressure instead of an unbounded buffer. Taking from the slot is
        # synchronous, so a cancelled read never loses a message.
        self._sorter: asyncio.Task[None] | None = None
        self._slot: deque[_Item] = deque()
        self._filled = asyncio.Event()  # also set by close(), to wake waiting reads
        self._emptied = asyncio.Event()

    @property
    def channel(self) -> str:
        """The channel's name."""
        return self._channel

    @property
    def peer(self) -> bytes | None:
        """The identity of the member whose MCP messages this transport reads, once bound (``None``: anyone's)."""
        return self._peer

    async def write(self, message: Outgoing) -> None:
        """Sends one JSON-RPC message (request, notification, response or error); returns once the relay has
        durably stored it. A dict is checked first: ``ValueError`` names what makes it no JSON-RPC message."""
        self._ensure_open()
        envelope = Envelope(Protocol.MCP, CONTENT_TYPE, _encode(_as_message(message)))
        await self._send_envelope(self._channel, envelope)

    async def read(self) -> dict[str, Any]:
        """The next JSON-RPC message from the channel, as the dict the other side wrote. Waits for it; raises
        ``ChannelError`` once the transport is closed (also while waiting) or the channel ended."""
        return (await self._next_message()).raw

    async def read_message(self) -> JSONRPCMessage:
        """As :meth:`read`, typed: an ``mcp.types`` ``JSONRPCRequest``, ``JSONRPCNotification``,
        ``JSONRPCResponse`` or ``JSONRPCError``."""
        return (await self._next_message()).message

    def skipped(self) -> dict[str, int]:
        """How many messages of each other protocol (by its wire value, e.g. ``"a2a"``, ``"raw"``) were skipped."""
        return self._stats.skipped_by_protocol()

    def malformed(self) -> int:
        """How many MCP envelopes were skipped because their payload is not one valid JSON-RPC message."""
        return self._stats.total_malformed()

    def foreign(self) -> int:
        """How many MCP messages were skipped because they came from a member other than the bound :attr:`peer`."""
        return self._stats.total_foreign()

    async def close(self) -> None:
        """Ends waiting reads (they raise ``ChannelError``), stops the transport's task and closes its view.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        # Everything that must happen is synchronous, so a close() that is itself cancelled (a cancelled serve())
        # still leaves no open view behind; only the wait for the task to finish can be cut short.
        self._filled.set()
        self._view.close()
        sorter, self._sorter = self._sorter, None
        if sorter is not None:
            sorter.cancel()
            await asyncio.gather(sorter, return_exceptions=True)

    async def __aenter__(self) -> SkytaleTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # Reading: one task sorts the view's messages into the slot; readers take them from it.

    async def _next_message(self) -> _Incoming:
        while True:
            item = await self._next_item()
            if isinstance(item, _ChannelEnded):
                raise item.error(self._channel)
            if isinstance(item, _Incoming):
                return item
            # A malformed MCP message: already counted and logged by the sorter.

    async def _next_item(self) -> _Item:
        """The next message, malformed-MCP error, or the end marker (left in the slot, so every later call gets it
        too); raises ``ChannelError`` once the transport is closed, also while waiting."""
        self._ensure_open()
        if self._sorter is None:
            self._sorter = asyncio.get_running_loop().create_task(self._sort())
        while not self._slot:
            self._filled.clear()
            await self._filled.wait()
            self._ensure_open()
        item = self._slot[0]
        if not isinstance(item, _ChannelEnded):
            self._slot.popleft()
            self._emptied.set()
        return item

    async def _hand_over(self, item: _Item) -> None:
        while self._slot:
            self._emptied.clear()
            await self._emptied.wait()
        self._slot.append(item)
        self._filled.set()

    async def _sort(self) -> None:
        while True:
            try:
                async for message in self._view.messages():
                    item = self._classify(message)
                    if item is not None:
                        await self._hand_over(item)
                await self._hand_over(_ChannelEnded())
                return
            except QuotaExceededError as notice:
                # The view's inbox filled while the reader lagged; the listener paused, nothing was lost.
                logger.info("%s", notice)
            except Exception as failure:  # noqa: BLE001 - handed to the readers, who raise it; never swallowed
                await self._hand_over(_ChannelEnded(failure))
                return

    def _classify(self, message: Message) -> _Incoming | ValueError | None:
        """The MCP message in ``message``; the error if it claims MCP but is malformed (counted, logged);
        ``None`` for another protocol's message or another member's MCP message (counted, logged)."""
        envelope = as_envelope(message)  # plain bytes sent with send() come as Protocol.RAW
        if envelope.protocol is not Protocol.MCP:
            protocol = envelope.protocol.value
            self._stats.count_skipped(protocol)
            logger.debug("skipped a %s message on %s: not MCP", protocol, self._channel)
            return None
        if self._peer is None and self._bind_first_peer:
            self._peer = message.sender
        if self._peer is not None and message.sender != self._peer:
            self._stats.count_foreign()
            logger.warning(
                "skipped an MCP message on %s from %s: this session's peer is %s (one MCP session per channel)",
                self._channel,
                _identity(message.sender),
                _identity(self._peer),
            )
            return None
        try:
            return _decode(envelope)
        except ValueError as error:
            self._stats.count_malformed()
            logger.warning("skipped a malformed MCP message on %s: %s", self._channel, error)
            return error

    def _ensure_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> ChannelError:
        return ChannelError(f"channel error: {self._channel}: the MCP transport is closed")


def _identity(identity: bytes) -> str:
    return repr(identity.decode("utf-8", "backslashreplace"))


def _as_message(message: Outgoing) -> JSONRPCMessage:
    if isinstance(message, _JSONRPC_MODELS):
        return message
    if not isinstance(message, Mapping):
        raise TypeError(
            f"write() takes a JSON-RPC message as a dict or an mcp.types JSONRPCMessage, got {type(message).__name__}"
        )
    try:
        return jsonrpc_message_adapter.validate_python(dict(message))
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise ValueError(f"not a JSON-RPC 2.0 message (request, notification, response or error): {error}") from None


def _encode(message: JSONRPCMessage) -> bytes:
    """The wire form: ``model_dump_json(by_alias=True, exclude_none=True)``, except that an error response keeps
    ``"id": null`` (JSON-RPC requires the member; it is null when the request's id could not be read)."""
    if isinstance(message, JSONRPCError) and message.id is None:
        body = message.model_dump(mode="json", by_alias=True, exclude_none=True)
        body["id"] = None
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return message.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")


def _decode(envelope: Envelope) -> _Incoming:
    """Parses an MCP envelope's payload; ``ValueError`` saying why if it is not exactly one JSON-RPC message."""
    if envelope.content_type != CONTENT_TYPE:
        raise ValueError(f"content type {envelope.content_type!r}, MCP messages are {CONTENT_TYPE!r}")
    try:
        raw = json.loads(envelope.payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"payload is not UTF-8 JSON: {error}") from None
    if not isinstance(raw, dict):
        kind = "a batch (JSON array)" if isinstance(raw, list) else f"a JSON {type(raw).__name__}"
        raise ValueError(f"payload is {kind}, not one JSON-RPC message object")
    try:
        message = jsonrpc_message_adapter.validate_python(raw)
    except ValueError as error:
        raise ValueError(f"payload is not a JSON-RPC 2.0 message: {error}") from None
    return _Incoming(raw, message)


# The mcp package's stream pair, for ClientSession, Server.run and MCPServer.


@asynccontextmanager
async def skytale_client(manager: AnyManager, channel: str, *, server: bytes | None = None) -> AsyncIterator[Streams]:
    """``async with skytale_client(manager, channel) as (read, write): async with ClientSession(read, write)``.

    Like ``mcp.client.stdio.stdio_client``, over the channel. ``server``, the server's identity, makes the client
    read MCP from that member only. On exit the transport's tasks are cancelled and joined and its view closed. Can
    also be handed to ``mcp.Client`` as its transport."""
    async with _session_streams(SkytaleTransport(manager, channel, peer=server)) as streams:
        yield streams


@asynccontextmanager
async def skytale_server(manager: AnyManager, channel: str, *, client: bytes | None = None) -> AsyncIterator[Streams]:
    """``async with skytale_server(manager, channel) as (read, write): await server.run(read, write,
    server.create_initialization_options())``, for a low-level ``mcp.server.lowlevel.Server``; see
    :func:`serve` for an ``MCPServer`` (FastMCP). Like ``mcp.server.stdio.stdio_server``, over the channel.

    Serves one client: ``client`` (its identity) if given, otherwise the member whose MCP message comes first."""
    transport = SkytaleTransport(manager, channel, peer=client, bind_first_peer=True)
    async with _session_streams(transport) as streams:
        yield streams


async def serve(
    server: Server[Any] | MCPServer,
    manager: AnyManager,
    channel: str,
    *,
    client: bytes | None = None,
    raise_exceptions: bool = False,
) -> None:
    """Serves one MCP session on ``channel`` until cancelled or the channel ends: with ``client`` (its identity)
    if given, otherwise with the member whose MCP message comes first (see :func:`skytale_server`).

    Takes a low-level ``Server`` or an ``MCPServer`` (the former FastMCP). mcp 2.3 has no public way to run an
    ``MCPServer`` on given streams: like the package's own ``InMemoryTransport``, this runs its underlying
    low-level server (``_lowlevel_server``) with ``create_initialization_options()``."""
    lowlevel: Server[Any] = server._lowlevel_server if isinstance(server, MCPServer) else server  # noqa: SLF001
    async with skytale_server(manager, channel, client=client) as (read_stream, write_stream):
        await lowlevel.run(
            read_stream, write_stream, lowlevel.create_initialization_options(), raise_exceptions=raise_exceptions
        )


@asynccontextmanager
async def _session_streams(transport: SkytaleTransport) -> AsyncIterator[Streams]:
    """Two tasks between the transport and the session's memory streams: channel -> session (``SessionMessage``,
    or the ``ValueError`` of a malformed MCP message; end of stream when the channel ends) and session -> channel.
    A failed send, or a failed channel, propagates out of the ``async with``: a lost message never goes
    unnoticed."""
    to_session, read_stream = anyio.create_memory_object_stream[Union[SessionMessage, Exception]](0)
    write_stream, from_session = anyio.create_memory_object_stream[SessionMessage](0)

    async def channel_to_session() -> None:
        async with to_session:
            while True:
                item = await transport._next_item()  # noqa: SLF001 - same module
                if isinstance(item, _ChannelEnded):
                    if item.failure is not None:
                        raise item.failure  # out of the async with: a failed channel is not a clean end
                    return  # the manager closed the channel: the session sees the end of its read stream
                await to_session.send(item if isinstance(item, Exception) else SessionMessage(item.message))

    async def session_to_channel() -> None:
        async with from_session:
            async for session_message in from_session:
                await transport.write(session_message.message)

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(channel_to_session)
            tasks.start_soon(session_to_channel)
            try:
                yield read_stream, write_stream
            finally:
                tasks.cancel_scope.cancel()
    finally:
        await transport.close()
        for stream in (read_stream, write_stream, to_session, from_session):
            stream.close()

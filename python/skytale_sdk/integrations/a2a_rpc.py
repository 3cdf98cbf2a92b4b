"""A2A tasks over a Skytale channel: a real ``a2a-sdk`` client talks to a real ``a2a-sdk`` request handler.

The seam on each side is the SDK's own transport abstraction, so neither side re-implements A2A:

- client: :class:`SkytaleClientTransport` is an ``a2a.client.transports.base.ClientTransport`` (registered in an
  ``a2a.client.ClientFactory`` under the ``"SKYTALE"`` protocol binding by :func:`create_client`), so
  ``Client.send_message`` / ``get_task`` / ``cancel_task`` / ... work unchanged;
- server: :class:`SkytaleA2AServer` reads requests from the channel and answers each through the
  ``a2a.server.request_handlers.RequestHandler`` it is given (e.g. ``DefaultRequestHandler`` with an
  ``AgentExecutor`` and an ``InMemoryTaskStore``), as the SDK's HTTP and gRPC servers do.

Wire format (docs/integrations.md, "A2A"): one envelope per request, reply and stream event, each the JSON form of
the SDK's protobuf object with content type ``application/a2a+json; type=<Name>``; requests carry
``request_id`` and ``method`` (the A2A gRPC method name) in the envelope metadata, replies ``in_reply_to``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, NamedTuple

from .a2a_wire import (  # isort: skip - raises the ImportError that names the extra
    OBJECT_CONTENT_TYPE,
    PROTOCOL_BINDING,
    ReaderTally,
    TalliedReader,
    classify,
    decode_object,
    encode_object,
    sender_of,
)

from a2a.client import Client, ClientCallContext, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError, A2AClientTimeoutError
from a2a.client.transports.base import ClientTransport
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import RequestHandler
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import (
    JSON_RPC_ERROR_CODE_MAP,
    A2AError,
    InternalError,
    InvalidParamsError,
    MethodNotFoundError,
    TaskNotFoundError,
)
from a2a.utils.proto_utils import to_stream_response
from google.protobuf.empty_pb2 import Empty
from google.protobuf.message import Message as ProtoMessage

from ..aio import AsyncChannelView
from ..envelope import Envelope, Protocol
from ..errors import SkytaleError

if TYPE_CHECKING:
    from .a2a import SkytaleA2AAdapter

__all__ = ["SkytaleA2AServer", "SkytaleClientTransport", "create_client"]

logger: logging.Logger = logging.getLogger("skytale_sdk.integrations.a2a")

#: ``type`` of the reply that ends a call with an error: a JSON-RPC 2.0 error object, ``{"code", "message",
#: "data"?}``, with the codes of the A2A JSON-RPC binding (``a2a.utils.errors.JSON_RPC_ERROR_CODE_MAP``).
ERROR_TYPE = "Error"
#: ``type`` of the reply that ends a stream (and answers a call that returns nothing): ``google.protobuf.Empty``.
END_TYPE = Empty.DESCRIPTOR.name

#: How long a client call waits for each reply unless its ``ClientCallContext.timeout`` says otherwise.
DEFAULT_REPLY_TIMEOUT = 60.0

_CODE_TO_ERROR = {code: error_type for error_type, code in JSON_RPC_ERROR_CODE_MAP.items()}


class _Method(NamedTuple):
    request: type[ProtoMessage]
    handler: str
    streaming: bool


#: The A2A methods (gRPC names, as the SDK's JSON-RPC binding also uses) and the ``RequestHandler`` method that
#: answers each.
METHODS: dict[str, _Method] = {
    "SendMessage": _Method(SendMessageRequest, "on_message_send", False),
    "SendStreamingMessage": _Method(SendMessageRequest, "on_message_send_stream", True),
    "GetTask": _Method(GetTaskRequest, "on_get_task", False),
    "ListTasks": _Method(ListTasksRequest, "on_list_tasks", False),
    "CancelTask": _Method(CancelTaskRequest, "on_cancel_task", False),
    "SubscribeToTask": _Method(SubscribeToTaskRequest, "on_subscribe_to_task", True),
    "CreateTaskPushNotificationConfig": _Method(
        TaskPushNotificationConfig, "on_create_task_push_notification_config", False
    ),
    "GetTaskPushNotificationConfig": _Method(
        GetTaskPushNotificationConfigRequest, "on_get_task_push_notification_config", False
    ),
    "ListTaskPushNotificationConfigs": _Method(
        ListTaskPushNotificationConfigsRequest, "on_list_task_push_notification_configs", False
    ),
    "DeleteTaskPushNotificationConfig": _Method(
        DeleteTaskPushNotificationConfigRequest, "on_delete_task_push_notification_config", False
    ),
    "GetExtendedAgentCard": _Method(GetExtendedAgentCardRequest, "on_get_extended_agent_card", False),
}


# Client


class SkytaleClientTransport(TalliedReader, ClientTransport):
    """An ``a2a-sdk`` client transport whose requests and replies travel over a context's Skytale channel.

    Replies are matched to calls by request id, so concurrent calls (and other clients on the same channel)
    work; replies to other clients' requests and non-reply traffic are skipped and counted in :attr:`skipped`,
    unreadable A2A envelopes in :attr:`malformed`. Reads through its own channel view, opened here: create the
    transport before the server can answer. Each reply is awaited for ``ClientCallContext.timeout`` (default
    ``reply_timeout``) seconds, then ``A2AClientTimeoutError`` is raised.
    """

    def __init__(
        self, adapter: SkytaleA2AAdapter, context_id: str, *, reply_timeout: float = DEFAULT_REPLY_TIMEOUT
    ) -> None:
        self._adapter = adapter
        self._channel = adapter.channel_name(context_id)
        self._view = AsyncChannelView(adapter.manager.view(self._channel))
        self._reply_timeout = reply_timeout
        self._tally = ReaderTally()
        self._calls: dict[str, asyncio.Queue[Envelope | None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ended = False
        #: Why the channel stopped delivering replies, if it failed (e.g. this member was removed).
        self._failure: BaseException | None = None

    async def send_message(
        self, request: SendMessageRequest, *, context: ClientCallContext | None = None
    ) -> SendMessageResponse:
        return await self._unary("SendMessage", request, SendMessageResponse, context)

    async def send_message_streaming(
        self, request: SendMessageRequest, *, context: ClientCallContext | None = None
    ) -> AsyncGenerator[StreamResponse, None]:
        async with contextlib.aclosing(self._call("SendStreamingMessage", request, context)) as replies:
            async for reply in replies:
                yield _decode_reply(reply, StreamResponse)

    async def get_task(self, request: GetTaskRequest, *, context: ClientCallContext | None = None) -> Task:
        return await self._unary("GetTask", request, Task, context)

    async def list_tasks(
        self, request: ListTasksRequest, *, context: ClientCallContext | None = None
    ) -> ListTasksResponse:
        return await self._unary("ListTasks", request, ListTasksResponse, context)

    async def cancel_task(self, request: CancelTaskRequest, *, context: ClientCallContext | None = None) -> Task:
        return await self._unary("CancelTask", request, Task, context)

    async def create_task_push_notification_config(
        self, request: TaskPushNotificationConfig, *, context: ClientCallContext | None = None
    ) -> TaskPushNotificationConfig:
        return await self._unary("CreateTaskPushNotificationConfig", request, TaskPushNotificationConfig, context)

    async def get_task_push_notification_config(
        self, request: GetTaskPushNotificationConfigRequest, *, context: ClientCallContext | None = None
    ) -> TaskPushNotificationConfig:
        return await self._unary("GetTaskPushNotificationConfig", request, TaskPushNotificationConfig, context)

    async def list_task_push_notification_configs(
        self, request: ListTaskPushNotificationConfigsRequest, *, context: ClientCallContext | None = None
    ) -> ListTaskPushNotificationConfigsResponse:
        return await self._unary(
            "ListTaskPushNotificationConfigs", request, ListTaskPushNotificationConfigsResponse, context
        )

    async def delete_task_push_notification_config(
        self, request: DeleteTaskPushNotificationConfigRequest, *, context: ClientCallContext | None = None
    ) -> None:
        await self._unary("DeleteTaskPushNotificationConfig", request, Empty, context)

    async def subscribe(
        self, request: SubscribeToTaskRequest, *, context: ClientCallContext | None = None
    ) -> AsyncGenerator[StreamResponse, None]:
        async with contextlib.aclosing(self._call("SubscribeToTask", request, context)) as replies:
            async for reply in replies:
                yield _decode_reply(reply, StreamResponse)

    async def get_extended_agent_card(
        self, request: GetExtendedAgentCardRequest, *, context: ClientCallContext | None = None
    ) -> AgentCard:
        return await self._unary("GetExtendedAgentCard", request, AgentCard, context)

    async def close(self) -> None:
        """Stops reading replies and closes the transport's view; calls still waiting fail. Idempotent."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._view.close()
        self._end_calls()

    async def _unary(
        self,
        method: str,
        request: ProtoMessage,
        response_type: type[Any],
        context: ClientCallContext | None,
    ) -> Any:
        """Sends ``request``, returns its one reply parsed as ``response_type``."""
        async with contextlib.aclosing(self._call(method, request, context)) as replies:
            async for reply in replies:
                return _decode_reply(reply, response_type)
        if response_type is Empty:
            return Empty()
        raise A2AClientError(f"{method}: the server ended the call without a {response_type.DESCRIPTOR.name}")

    async def _call(
        self, method: str, request: ProtoMessage, context: ClientCallContext | None
    ) -> AsyncGenerator[Envelope, None]:
        """Sends ``request`` and yields its replies until the ending one (``Empty``), raising the error reply as
        the A2A error it names."""
        if self._ended:
            raise self._closed_error(method)
        timeout = context.timeout if context is not None and context.timeout is not None else self._reply_timeout
        request_id = uuid.uuid4().hex
        replies: asyncio.Queue[Envelope | None] = asyncio.Queue()
        self._calls[request_id] = replies
        self._start_reader()
        metadata = {"agent_id": self._adapter.agent_id, "request_id": request_id, "method": method}
        try:
            try:
                envelope = encode_object(request, metadata)
                await asyncio.to_thread(self._adapter.manager.send_envelope, self._channel, envelope)
            except (SkytaleError, ValueError) as error:
                raise A2AClientError(f"{method}: could not send the request on {self._channel}: {error}") from error
            while True:
                try:
                    reply = await asyncio.wait_for(replies.get(), timeout)
                except asyncio.TimeoutError:
                    raise A2AClientTimeoutError(
                        f"{method}: no reply on {self._channel} within {timeout} s (is an A2A server reading it?)"
                    ) from None
                if reply is None:
                    raise self._closed_error(method)
                _, reply_type = classify(reply)
                if reply_type == ERROR_TYPE:
                    raise _decode_error(reply)
                if reply_type == END_TYPE:
                    return
                yield reply
        finally:
            self._calls.pop(request_id, None)

    def _start_reader(self) -> None:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read_replies())

    async def _read_replies(self) -> None:
        """Routes every reply on the channel to the call waiting for it, until the channel ends."""
        try:
            async for payload in self._view:
                self._route(payload)
        except Exception as error:  # noqa: BLE001 - handed to every waiting and later call
            self._failure = error
        finally:
            self._end_calls()

    def _closed_error(self, method: str) -> A2AClientError:
        reason = f": {self._failure}" if self._failure is not None else ""
        error = A2AClientError(f"{method}: the Skytale transport on {self._channel} is closed{reason}")
        error.__cause__ = self._failure
        return error

    def _route(self, payload: bytes) -> None:
        try:
            envelope = Envelope.deserialize(payload)
        except ValueError:
            self._tally.skip(self._channel, Protocol.RAW.value, "not an envelope (plain send())")
            return
        try:
            is_a2a, object_type = classify(envelope)
        except ValueError as error:
            self._tally.reject(self._channel, str(error))
            return
        in_reply_to = (envelope.metadata or {}).get("in_reply_to")
        if not is_a2a or object_type is None or in_reply_to is None:
            reason = f"{envelope.protocol.value} {envelope.content_type}: not an A2A reply"
            self._tally.skip(self._channel, envelope.protocol.value, reason)
            return
        replies = self._calls.get(in_reply_to)
        if replies is None:
            reason = f"A2A {object_type} for request {in_reply_to!r}, not one of ours"
            self._tally.skip(self._channel, envelope.protocol.value, reason)
            return
        replies.put_nowait(envelope)

    def _end_calls(self) -> None:
        self._ended = True
        for replies in self._calls.values():
            replies.put_nowait(None)


def create_client(
    adapter: SkytaleA2AAdapter,
    context_id: str,
    agent_card: AgentCard | None = None,
    config: ClientConfig | None = None,
    *,
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT,
) -> Client:
    """An ``a2a-sdk`` ``Client`` for the agent serving ``context_id`` (a :class:`SkytaleA2AServer`), built by the
    SDK's own ``ClientFactory`` with :class:`SkytaleClientTransport` registered for the ``"SKYTALE"`` binding.

    ``agent_card``: the server agent's card, which must list a Skytale interface
    (``adapter.agent_interface(context_id)``); by default a minimal card with just that interface and streaming.
    ``config``: a ``ClientConfig`` (``streaming=False`` makes ``send_message`` a single ``SendMessage`` call); the
    Skytale binding is added to its ``supported_protocol_bindings``. ``reply_timeout``: see
    :class:`SkytaleClientTransport`. Close the client (``await client.close()``) to close its transport.
    """
    config = config or ClientConfig()
    if PROTOCOL_BINDING not in config.supported_protocol_bindings:
        config = dataclasses.replace(
            config, supported_protocol_bindings=[*config.supported_protocol_bindings, PROTOCOL_BINDING]
        )
    if agent_card is None:
        agent_card = AgentCard(
            name=f"A2A agent on {adapter.channel_name(context_id)}",
            supported_interfaces=[adapter.agent_interface(context_id)],
            capabilities=AgentCapabilities(streaming=True, extensions=[adapter.agent_card_extension()]),
        )
    factory = ClientFactory(config)
    factory.register(
        PROTOCOL_BINDING,
        lambda _card, url, _config: SkytaleClientTransport(
            adapter, adapter.context_of_url(url), reply_timeout=reply_timeout
        ),
    )
    return factory.create(agent_card)


# Server


class SkytaleA2AServer(TalliedReader):
    """Answers A2A requests arriving on a context's channel through an ``a2a-sdk`` ``RequestHandler``.

    Each request is handled in its own asyncio task, so a long-running task does not hold up ``GetTask`` or
    ``CancelTask``; the replies of one request go out in order. Run it with ``await server.serve()`` (until
    cancelled or the channel closes) or as ``async with server:`` (serves in the background until the block ends).
    Run one server per context: every server reading a channel answers every request on it.
    Reads through its own channel view, opened here. Traffic that is not a request is skipped and counted in
    :attr:`skipped`; a request that cannot be read is counted in :attr:`malformed` and, if it names a request id,
    answered with an error so its caller does not wait in vain.

    The handler's ``ServerCallContext.state`` holds ``"skytale_agent_id"`` (the requester's declared agent id),
    ``"method"`` and ``"request_id"``.
    """

    def __init__(self, adapter: SkytaleA2AAdapter, context_id: str, request_handler: RequestHandler) -> None:
        self._adapter = adapter
        self._channel = adapter.channel_name(context_id)
        self._handler = request_handler
        self._view = AsyncChannelView(adapter.manager.view(self._channel))
        self._tally = ReaderTally()
        self._background: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        """Answers requests until cancelled or the channel closes; cancels the requests still in progress."""
        in_progress: set[asyncio.Task[None]] = set()
        try:
            async for payload in self._view:
                request = self._accept(payload)
                if request is not None:
                    task = asyncio.get_running_loop().create_task(self._answer(*request))
                    in_progress.add(task)
                    task.add_done_callback(in_progress.discard)
        finally:
            for task in in_progress:
                task.cancel()
            await asyncio.gather(*in_progress, return_exceptions=True)

    async def __aenter__(self) -> SkytaleA2AServer:
        self._background = asyncio.get_running_loop().create_task(self.serve())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stops serving (if running in the background) and closes the server's view. Idempotent."""
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background
            self._background = None
        self._view.close()

    def _accept(self, payload: bytes) -> tuple[str, str, str, Envelope] | None:
        """``(requester, request_id, method, envelope)`` of a request; ``None`` (counted) for anything else."""
        try:
            envelope = Envelope.deserialize(payload)
        except ValueError:
            self._tally.skip(self._channel, Protocol.RAW.value, "not an envelope (plain send())")
            return None
        metadata = envelope.metadata or {}
        try:
            is_a2a, object_type = classify(envelope)
            if not is_a2a or object_type is None or "method" not in metadata:
                reason = f"{envelope.protocol.value} {envelope.content_type}: not a request"
                self._tally.skip(self._channel, envelope.protocol.value, reason)
                return None
            request_id, method = metadata.get("request_id"), metadata["method"]
            if not isinstance(request_id, str) or not request_id or not isinstance(method, str):
                raise ValueError(f"a request needs string request_id and method in its metadata, got {metadata!r}")
            return sender_of(envelope), request_id, method, envelope
        except ValueError as error:
            self._tally.reject(self._channel, str(error))
            return None

    async def _answer(self, requester: str, request_id: str, method: str, envelope: Envelope) -> None:
        try:
            spec = METHODS.get(method)
            if spec is None:
                raise MethodNotFoundError(message=f"unknown A2A method {method!r} (known: {', '.join(METHODS)})")
            try:
                params = decode_object(envelope.payload, spec.request)
            except ValueError as error:
                self._tally.reject(self._channel, f"{method} request {request_id}: {error}")
                raise InvalidParamsError(message=str(error)) from None
            context = ServerCallContext(
                state={"skytale_agent_id": requester, "method": method, "request_id": request_id},
                tenant=getattr(params, "tenant", ""),
            )
            handle = getattr(self._handler, spec.handler)
            if spec.streaming:
                async with contextlib.aclosing(handle(params, context)) as events:
                    async for event in events:
                        await self._reply(request_id, to_stream_response(event))
                await self._reply(request_id, Empty())
            else:
                await self._reply(request_id, _response(method, await handle(params, context)))
        except asyncio.CancelledError:
            raise
        except A2AError as error:
            await self._reply_error(request_id, method, error)
        except Exception as error:  # noqa: BLE001 - the caller must hear of every failure, as over HTTP
            logger.exception("%s: %s request %s failed", self._channel, method, request_id)
            await self._reply_error(request_id, method, InternalError(message=f"{type(error).__name__}: {error}"))

    async def _reply(self, request_id: str, reply: ProtoMessage) -> None:
        metadata = {"agent_id": self._adapter.agent_id, "in_reply_to": request_id}
        await asyncio.to_thread(self._adapter.manager.send_envelope, self._channel, encode_object(reply, metadata))

    async def _reply_error(self, request_id: str, method: str, error: A2AError) -> None:
        body: dict[str, Any] = {"code": JSON_RPC_ERROR_CODE_MAP.get(type(error), -32603), "message": error.message}
        if error.data is not None:
            body["data"] = error.data
        envelope = Envelope(
            Protocol.A2A,
            f"{OBJECT_CONTENT_TYPE}; type={ERROR_TYPE}",
            json.dumps(body, default=str).encode("utf-8"),
            {"agent_id": self._adapter.agent_id, "in_reply_to": request_id},
        )
        try:
            await asyncio.to_thread(self._adapter.manager.send_envelope, self._channel, envelope)
        except Exception:  # noqa: BLE001 - nothing left to tell the caller through; the log says why
            logger.exception("%s: could not send the error reply to %s %s", self._channel, method, request_id)


def _response(method: str, result: Any) -> ProtoMessage:
    """The reply object of a unary call, as the SDK's own transports shape it."""
    if method == "SendMessage":
        return SendMessageResponse(task=result) if isinstance(result, Task) else SendMessageResponse(message=result)
    if result is None:
        if method in ("GetTask", "CancelTask"):
            raise TaskNotFoundError
        return Empty()
    return result


def _decode_reply(reply: Envelope, response_type: type[Any]) -> Any:
    _, reply_type = classify(reply)
    expected = response_type.DESCRIPTOR.name
    if reply_type != expected:
        raise A2AClientError(f"expected a {expected} reply, got {reply_type}")
    try:
        return decode_object(reply.payload, response_type)
    except ValueError as error:
        raise A2AClientError(f"unreadable {expected} reply: {error}") from None


def _decode_error(reply: Envelope) -> A2AError:
    """The A2A error an error reply names (as the SDK's JSON-RPC transport maps codes), else ``A2AClientError``."""
    try:
        body = json.loads(reply.payload.decode("utf-8"))
        code, message = body["code"], str(body.get("message", ""))
    except (ValueError, TypeError, KeyError):
        return A2AClientError(f"unreadable error reply: {reply.payload[:200]!r}")
    error_type = _CODE_TO_ERROR.get(code)
    if error_type is None:
        return A2AClientError(f"A2A error {code}: {message}")
    data = body.get("data")
    return error_type(message, data=data if isinstance(data, dict) else None)

"""The A2A integration against a real ``skytale dev`` and the real ``a2a-sdk``: messages between two adapters,
and a task exchanged between an a2a-sdk client and an a2a-sdk request handler over an encrypted channel."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from a2a.client import ClientCallContext, ClientConfig
from a2a.client.errors import A2AClientError, A2AClientTimeoutError
from a2a.helpers.proto_helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentSkill,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskState,
)
from a2a.utils.errors import TaskNotFoundError
from google.protobuf import json_format

from conftest import DevStack
from skytale_sdk import ChannelError, Envelope, Protocol, SkytaleChannelManager
from skytale_sdk.integrations.a2a import (
    EXTENSION_URI,
    PROTOCOL_BINDING,
    ReceivedMessage,
    SkytaleA2AAdapter,
    SkytaleA2AServer,
    SkytaleClientTransport,
    create_client,
    to_part,
)

# Only there so that a lost message fails a test instead of hanging it; never reached when things work.
PATIENCE = 60.0
ORG = "myorg"  # the org of the `skytale dev` API key

Pair = tuple[SkytaleA2AAdapter, SkytaleA2AAdapter, str]


@pytest.fixture
def context_id(request: pytest.FixtureRequest) -> str:
    """A context id no other test of the module uses."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:64]


@pytest.fixture
def pair(dev_env: DevStack, context_id: str) -> Iterator[Pair]:
    """Agent A creates the context and adds agent B with a key package; both adapters read it."""
    alice, bob = SkytaleChannelManager("alice"), SkytaleChannelManager("bob")
    with alice, bob:
        a = SkytaleA2AAdapter(alice, "agent-a", org=ORG)
        b = SkytaleA2AAdapter(bob, "agent-b", org=ORG)
        channel = a.create_context(context_id)
        assert channel == f"{ORG}/a2a/{context_id}"
        assert b.join_context(context_id, alice.add_member(channel, bob.key_package())) == channel
        with a, b:
            yield a, b, context_id


def receive_exactly(adapter: SkytaleA2AAdapter, context_id: str, count: int) -> list[ReceivedMessage]:
    received: list[ReceivedMessage] = []
    deadline = time.monotonic() + PATIENCE
    while len(received) < count and time.monotonic() < deadline:
        received += adapter.receive(context_id, timeout=PATIENCE)
    return received


# Messages between adapters


def test_text_and_data_parts_arrive_as_dicts(pair: Pair) -> None:
    a, b, context_id = pair
    sent = a.send_message(
        context_id,
        [{"type": "text", "text": "Hello"}, {"type": "data", "data": {"topic": "mls", "pages": [1, 2]}}],
    )
    assert isinstance(sent, Message) and sent.message_id and sent.context_id == context_id
    assert sent.role == Role.ROLE_USER

    messages = b.receive_messages(context_id, timeout=PATIENCE)
    assert messages == [
        {
            "messageId": sent.message_id,
            "contextId": context_id,
            "role": "ROLE_USER",
            "parts": [{"text": "Hello"}, {"data": {"topic": "mls", "pages": [1.0, 2.0]}}],
            "metadata": {"agent_id": "agent-a"},
            "agent_id": "agent-a",
        }
    ]
    # The dict form's parts are accepted back as they are: B answers with A's own parts.
    b.send_message(context_id, messages[0]["parts"], role="agent")
    (reply,) = a.receive_messages(context_id, timeout=PATIENCE)
    assert reply["parts"] == messages[0]["parts"] and reply["role"] == "ROLE_AGENT" and reply["agent_id"] == "agent-b"


def test_typed_parts_and_messages(pair: Pair) -> None:
    a, b, context_id = pair
    parts = [
        Part(text="summary", media_type="text/markdown"),
        Part(raw=b"\x00\xffbinary", filename="blob.bin", media_type="application/octet-stream"),
        Part(url="https://example.org/paper.pdf", filename="paper.pdf"),
    ]
    sent = a.send_message(context_id, parts, role=Role.ROLE_AGENT, task_id="task-7", metadata={"priority": "high"})
    (received,) = receive_exactly(b, context_id, 1)
    assert received.agent_id == "agent-a"
    assert received.message == sent  # the very a2a.types.Message that was sent
    assert list(received.message.parts) == parts
    assert received.message.task_id == "task-7"
    assert dict(received.message.metadata) == {"priority": "high", "agent_id": "agent-a"}


def test_seed_file_url_and_raw_forms(pair: Pair) -> None:
    a, b, context_id = pair
    a.send_message(
        context_id,
        [
            {"type": "file", "file": {"bytes": b"%PDF-1.7", "mimeType": "application/pdf", "name": "a.pdf"}},
            {"type": "file", "file": {"uri": "https://example.org/b.pdf"}},
            {"type": "url", "url": "https://example.org", "metadata": {"rank": 1}},
            {"type": "raw", "raw": b"\x01\x02", "media_type": "application/x-thing", "filename": "t.bin"},
        ],
    )
    (received,) = receive_exactly(b, context_id, 1)
    assert list(received.message.parts) == [
        Part(raw=b"%PDF-1.7", media_type="application/pdf", filename="a.pdf"),
        Part(url="https://example.org/b.pdf"),
        Part(url="https://example.org", metadata={"rank": 1}),
        Part(raw=b"\x01\x02", media_type="application/x-thing", filename="t.bin"),
    ]


def test_other_protocols_on_the_channel_are_skipped_and_counted(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    a, b, context_id = pair
    channel = a.channel_name(context_id)
    caplog.set_level(logging.DEBUG, logger="skytale_sdk.integrations.a2a")
    a.manager.send(channel, "plain text from receive() land")
    a.manager.send_envelope(channel, Envelope(Protocol.MCP, "application/json", b'{"jsonrpc":"2.0","method":"ping"}'))
    a.manager.send_envelope(
        channel, Envelope(Protocol.A2A, "application/a2a+json; type=Task", b'{"id":"t1"}', {"agent_id": "agent-a"})
    )
    sent = a.send_message(context_id, [{"type": "text", "text": "the A2A one"}])

    received = receive_exactly(b, context_id, 1)
    assert [r.message.message_id for r in received] == [sent.message_id]
    assert (b.skipped, b.malformed) == (3, 0)
    skips = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG and "skipped" in r.getMessage()]
    assert len(skips) == 3 and any("protocol mcp" in line for line in skips)


def test_malformed_a2a_messages_are_counted_and_logged(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    a, b, context_id = pair
    channel = a.channel_name(context_id)
    caplog.set_level(logging.WARNING, logger="skytale_sdk.integrations.a2a")
    a.manager.send_envelope(channel, Envelope(Protocol.A2A, "application/json", b"{not json", {"agent_id": "x"}))
    a.manager.send_envelope(channel, Envelope(Protocol.A2A, "application/json", b'{"parts": 5}', {"agent_id": "x"}))
    a.manager.send_envelope(channel, Envelope(Protocol.A2A, "application/json", b'{"messageId": "m"}'))  # no agent_id
    a.manager.send_envelope(channel, Envelope(Protocol.A2A, "text/plain", b"hello", {"agent_id": "x"}))
    sent = a.send_message(context_id, [{"type": "text", "text": "fine"}])

    assert [r.message.message_id for r in receive_exactly(b, context_id, 1)] == [sent.message_id]
    assert (b.malformed, b.skipped) == (4, 0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert all(channel in line and "malformed A2A message" in line for line in warnings)
    assert any("no agent_id" in line for line in warnings) and any("text/plain" in line for line in warnings)


@pytest.mark.parametrize(
    "parts, problem",
    [
        ([], "must not be empty"),
        ("Hello", "must be a list of parts"),
        ({"type": "text", "text": "Hello"}, "must be a list of parts"),
        (["Hello"], r"part 0: expected an a2a.types.Part or a dict, got str"),
        ([{"type": "image", "image": "x"}], r"part 0: unknown part type 'image'"),
        ([{"type": "text"}], r"part 0 \(text\): missing 'text'"),
        ([{"type": "text", "text": "a", "txt": "b"}], r"unexpected keys \['txt'\]"),
        ([{"type": "text", "text": 5}], "part 0: .*text"),
        ([{"type": "data", "data": b"bytes"}], "part 0: .*unexpected type"),
        ([{"type": "file", "file": {}}], "exactly one of 'bytes' and 'uri'"),
        ([{"type": "file", "file": {"bytes": "not base64!"}}], "must be base64"),
        ([{"text": "ok"}, {"bogus": 1}], r"part 1: .*no field named \"bogus\""),
        ([Part()], "part 0: has no content"),
        ([{"type": "text", "text": "a", "metadata": "not a dict"}], "part 0"),
    ],
)
def test_bad_parts_raise_value_error_naming_the_problem(parts: Any, problem: str) -> None:
    from skytale_sdk.integrations.a2a import to_parts

    with pytest.raises(ValueError, match=problem):
        to_parts(parts)


def test_bad_input_to_send_message_raises_before_sending(pair: Pair) -> None:
    a, b, context_id = pair
    with pytest.raises(ValueError, match="part 1"):
        a.send_message(context_id, [{"type": "text", "text": "ok"}, {"type": "text"}])
    with pytest.raises(ValueError, match="role must be 'user' or 'agent'"):
        a.send_message(context_id, [{"type": "text", "text": "ok"}], role="assistant")
    with pytest.raises(ValueError, match="metadata must hold JSON values"):
        a.send_message(context_id, [{"type": "text", "text": "ok"}], metadata={"blob": b"x"})
    with pytest.raises(ValueError, match="cannot write"):
        a.send_message(context_id, [{"type": "data", "data": float("nan")}])
    with pytest.raises(ValueError, match="context_id"):
        a.send_message("a/b", [{"type": "text", "text": "ok"}])
    last = a.send_message(context_id, [{"type": "text", "text": "only this one"}])
    # Nothing of the refused calls reached the channel.
    assert [r.message for r in b.receive(context_id, timeout=PATIENCE)] == [last]
    assert b.receive(context_id, timeout=0.5) == [] and (b.skipped, b.malformed) == (0, 0)


def test_to_part_copies_a_part() -> None:
    original = Part(text="x")
    copy = to_part(original)
    assert copy == original and copy is not original


def test_the_adapter_never_drains_manager_receive(pair: Pair) -> None:
    a, b, context_id = pair
    channel = a.channel_name(context_id)
    sent = [a.send_message(context_id, [{"type": "text", "text": f"m{i}"}]) for i in range(5)]
    a.manager.send(channel, "plain")
    # The application's receive() sees all six messages (the A2A ones as their envelope bytes)...
    raw: list[str] = []
    deadline = time.monotonic() + PATIENCE
    while len(raw) < 6 and time.monotonic() < deadline:
        raw += b.manager.receive(channel, timeout=PATIENCE)
    assert len(raw) == 6 and raw[-1] == "plain"
    # ...and the adapter, reading after it, still gets every A2A message.
    assert [r.message for r in receive_exactly(b, context_id, 5)] == sent
    assert b.manager.pending(channel) == 0


def test_the_declared_agent_id_is_reported_beside_the_authenticated_sender(pair: Pair) -> None:
    a, b, context_id = pair
    # A member can declare any agent_id; ``sender`` is who MLS says sent the message.
    impostor = SkytaleA2AAdapter(b.manager, "agent-a", org=ORG)
    impostor.attach_context(context_id)
    with impostor:
        impostor.send_message(context_id, [{"type": "text", "text": "trust me"}])
        a.send_message(context_id, [{"type": "text", "text": "genuine"}])
        (forged,) = receive_exactly(a, context_id, 1)
        assert (forged.agent_id, forged.sender) == ("agent-a", b"bob")
        (genuine,) = receive_exactly(b, context_id, 1)
        assert (genuine.agent_id, genuine.sender) == ("agent-a", b"alice")


def test_receive_needs_an_open_context_and_attach_opens_one(dev_env: DevStack, context_id: str) -> None:
    with SkytaleChannelManager("alice") as alice, SkytaleChannelManager("bob") as bob:
        a = SkytaleA2AAdapter(alice, "agent-a", org=ORG)
        b = SkytaleA2AAdapter(bob, "agent-b", org=ORG)
        channel = a.create_context(context_id)
        with pytest.raises(ChannelError, match="not open in this adapter"):
            b.receive(context_id, timeout=0.1)
        # B joins by invite through the manager, then attaches the adapter to the context.
        bob.join_with_token(channel, alice.invite(channel))
        assert b.attach_context(context_id) == channel
        sent = a.send_message(context_id, [{"type": "text", "text": "after the invite"}])
        assert [r.message for r in receive_exactly(b, context_id, 1)] == [sent]


def test_adapter_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="agent_id"):
        SkytaleA2AAdapter(None, "")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="org"):
        SkytaleA2AAdapter(None, "agent", org="a/b")  # type: ignore[arg-type]
    adapter = SkytaleA2AAdapter(None, "agent")  # type: ignore[arg-type]
    assert adapter.channel_name("research") == "org/a2a/research"  # the seed's literal default
    assert adapter.context_of_url(adapter.agent_interface("research").url) == "research"
    with pytest.raises(ValueError, match="not a Skytale A2A endpoint URL"):
        adapter.context_of_url("skytale://other/a2a/research")


def test_agent_card_extension_describes_the_transport() -> None:
    adapter = SkytaleA2AAdapter(None, "agent-a", org=ORG)  # type: ignore[arg-type]
    extension = adapter.agent_card_extension()
    card = AgentCard(
        name="researcher",
        supported_interfaces=[adapter.agent_interface("research")],
        capabilities=AgentCapabilities(extensions=[extension]),
    )
    as_dict = json_format.MessageToDict(card)
    assert as_dict["capabilities"]["extensions"] == [
        {
            "uri": EXTENSION_URI,
            "description": "A2A over end-to-end encrypted Skytale channels (MLS, RFC 9420)",
            "params": {
                "agent_id": "agent-a",
                "channel_pattern": f"{ORG}/a2a/{{context_id}}",
                "protocol_binding": PROTOCOL_BINDING,
                "message_content_type": "application/json",
                "envelope_protocol": "a2a",
                "wire_version": "1",
                "a2a_protocol_version": "1.0",
            },
        }
    ]
    assert as_dict["supportedInterfaces"] == [
        {"url": f"skytale://{ORG}/a2a/research", "protocolBinding": "SKYTALE", "protocolVersion": "1.0"}
    ]


def test_import_without_a2a_sdk_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['a2a'] = None\n"
        "try:\n"
        "    import skytale_sdk.integrations.a2a\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "else:\n"
        "    print('imported')\n"
        "import skytale_sdk.integrations  # the package itself imports no optional package\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "pip install '.[a2a]'" in result.stdout


# A task between an a2a-sdk client and an a2a-sdk server


class ShoutingAgent(AgentExecutor):
    """A real a2a-sdk agent: opens a task, works, returns the user's text upper-cased as an artifact."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        await updater.add_artifact([Part(text=context.get_user_input().upper())], name="shout")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError("the shouting agent finishes too fast to be cancelled")


def server_card(adapter: SkytaleA2AAdapter, context_id: str) -> AgentCard:
    return AgentCard(
        name="shouter",
        description="Upper-cases what it is told",
        version="1.0.0",
        supported_interfaces=[adapter.agent_interface(context_id)],
        capabilities=AgentCapabilities(streaming=True, extensions=[adapter.agent_card_extension()]),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="shout", name="shout", description="upper-cases text", tags=["text"])],
    )


def request(context_id: str, text: str) -> SendMessageRequest:
    message = Message(message_id=f"msg-{text}", context_id=context_id, role=Role.ROLE_USER, parts=[Part(text=text)])
    return SendMessageRequest(message=message)


def serve(adapter: SkytaleA2AAdapter, context_id: str) -> SkytaleA2AServer:
    handler = DefaultRequestHandler(
        agent_executor=ShoutingAgent(), task_store=InMemoryTaskStore(), agent_card=server_card(adapter, context_id)
    )
    return SkytaleA2AServer(adapter, context_id, handler)


def test_a2a_task_round_trip_streaming(pair: Pair) -> None:
    server_side, client_side, context_id = pair

    async def scenario() -> None:
        async with serve(server_side, context_id) as server:
            client = create_client(client_side, context_id, server_card(server_side, context_id))
            async with client:
                events = [event async for event in client.send_message(request(context_id, "hello"))]
                kinds = [event.WhichOneof("payload") for event in events]
                assert kinds == ["task", "status_update", "artifact_update", "status_update"]
                task_id = events[0].task.id
                assert events[0].task.context_id == context_id
                assert events[1].status_update.status.state == TaskState.TASK_STATE_WORKING
                assert list(events[2].artifact_update.artifact.parts) == [Part(text="HELLO")]
                assert events[3].status_update.status.state == TaskState.TASK_STATE_COMPLETED

                # The server's task store has the finished task; the client reads it over the channel.
                task = await client.get_task(GetTaskRequest(id=task_id))
                assert task.status.state == TaskState.TASK_STATE_COMPLETED
                assert [list(artifact.parts) for artifact in task.artifacts] == [[Part(text="HELLO")]]
                assert [message.parts[0].text for message in task.history] == ["hello"]

                # A2A errors travel as errors.
                with pytest.raises(TaskNotFoundError):
                    await client.get_task(GetTaskRequest(id="no-such-task"))
            assert server.malformed == 0

    asyncio.run(scenario())


def test_a2a_task_round_trip_non_streaming_and_concurrent(pair: Pair) -> None:
    server_side, client_side, context_id = pair

    async def scenario() -> None:
        async with serve(server_side, context_id):
            client = create_client(client_side, context_id, config=ClientConfig(streaming=False))
            async with client:

                async def ask(text: str) -> StreamResponse:
                    responses = [response async for response in client.send_message(request(context_id, text))]
                    assert len(responses) == 1  # SendMessage: one reply, the finished task
                    return responses[0]

                words = ["alpha", "beta", "gamma", "delta"]
                results = await asyncio.gather(*(ask(word) for word in words))
                for word, result in zip(words, results):
                    assert result.task.status.state == TaskState.TASK_STATE_COMPLETED
                    assert list(result.task.artifacts[0].parts) == [Part(text=word.upper())]
                assert len({result.task.id for result in results}) == len(words)

    asyncio.run(scenario())


def test_server_skips_non_requests_and_answers_bad_requests_with_errors(pair: Pair) -> None:
    server_side, client_side, context_id = pair
    channel = server_side.channel_name(context_id)

    async def scenario() -> None:
        async with serve(server_side, context_id) as server:
            with client_side.manager.view(channel) as replies:
                client_side.send_message(context_id, [{"type": "text", "text": "just chatting"}])
                client_side.manager.send(channel, "plain")
                for request_id, method, payload in [
                    ("r-bad", "SendMessage", b"{broken"),
                    ("r-unknown", "Teleport", b"{}"),
                ]:
                    client_side.manager.send_envelope(
                        channel,
                        Envelope(
                            Protocol.A2A,
                            "application/a2a+json; type=SendMessageRequest",
                            payload,
                            {"agent_id": "agent-b", "request_id": request_id, "method": method},
                        ),
                    )
                errors = {}
                deadline = time.monotonic() + PATIENCE
                while len(errors) < 2 and time.monotonic() < deadline:
                    for envelope in await asyncio.to_thread(replies.receive_envelopes, PATIENCE):
                        assert envelope.content_type == "application/a2a+json; type=Error"
                        errors[envelope.metadata["in_reply_to"]] = envelope.payload
            assert b'"code": -32602' in errors["r-bad"]  # InvalidParamsError
            assert b'"code": -32601' in errors["r-unknown"] and b"Teleport" in errors["r-unknown"]
            assert (server.skipped, server.malformed) == (2, 1)

    asyncio.run(scenario())


def test_client_call_without_a_server_times_out_and_a_closed_transport_says_so(pair: Pair) -> None:
    _, client_side, context_id = pair

    async def scenario() -> None:
        transport = SkytaleClientTransport(client_side, context_id)
        async with transport:
            with pytest.raises(A2AClientTimeoutError, match="no reply"):
                await transport.get_task(GetTaskRequest(id="t"), context=ClientCallContext(timeout=0.5))
        with pytest.raises(A2AClientError, match="transport on .* is closed"):
            await transport.get_task(GetTaskRequest(id="t"))

    asyncio.run(scenario())


# The examples the README and docs point to


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    "example, expected",
    [
        ("a2a_messages.py", ["researcher -> writer: [{'text': 'Hello'}, {'data': {'sources': 3.0}}]"]),
        (
            "a2a_task.py",
            ["status: TASK_STATE_WORKING", "artifact: HELLO OVER MLS", "status: TASK_STATE_COMPLETED"],
        ),
    ],
)
def test_examples_run(dev_env: DevStack, example: str, expected: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example)], capture_output=True, text=True, timeout=PATIENCE * 2
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[: len(expected)] == expected
    if example == "a2a_task.py":
        assert re.fullmatch(r"task \S+ TASK_STATE_COMPLETED", lines[-1])

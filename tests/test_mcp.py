"""MCP over Skytale channels, end to end over a real ``skytale dev`` with the real ``mcp`` package: raw JSON-RPC
through ``SkytaleTransport``, and a real ``ClientSession`` calling real servers' tools through the stream pair."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Callable

import anyio
import mcp.types as types
import pytest
from mcp import Client, ClientSession
from mcp.server import Server, ServerRequestContext
from mcp.server.mcpserver import MCPServer

from conftest import DevStack
from skytale_sdk import ChannelError, Envelope, Protocol, QuotaExceededError, SkytaleChannelManager
from skytale_sdk.integrations.mcp_transport import SkytaleTransport, serve, skytale_client, skytale_server
from test_manager import PATIENCE, pair, receive_exactly

PING = {"jsonrpc": "2.0", "method": "ping", "id": 1}
REPO = Path(__file__).resolve().parent.parent


def mcp_envelope(payload: bytes) -> Envelope:
    return Envelope(Protocol.MCP, "application/json", payload)


def run(coroutine_function: Callable[[], Awaitable[None]]) -> None:
    """Runs the test body on a fresh loop; a lost message fails the test instead of hanging it."""

    async def bounded() -> None:
        await asyncio.wait_for(coroutine_function(), PATIENCE)

    asyncio.run(bounded())


def calculator() -> MCPServer:
    """A real MCPServer (the former FastMCP) with two tools; ``add`` waits a little, at random, so concurrent calls
    are answered out of order."""
    server = MCPServer("calculator")

    @server.tool()
    async def add(a: int, b: int) -> int:
        """Adds two integers."""
        await asyncio.sleep(random.uniform(0, 0.2))
        return a + b

    @server.tool()
    def shout(text: str) -> str:
        """Upper-cases the text."""
        return text.upper()

    return server


async def with_server(
    server: Any, manager: SkytaleChannelManager, channel: str, client_body: Callable[[], Awaitable[None]]
) -> None:
    """Serves ``server`` on ``channel`` while ``client_body`` runs, then stops it."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(serve, server, manager, channel)
        await client_body()
        tasks.cancel_scope.cancel()


def text_of(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    [content] = result.content
    assert isinstance(content, types.TextContent)
    return content.text


def test_raw_read_write_between_two_managers(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def body() -> None:
        async with SkytaleTransport(alice, channel_name) as client, SkytaleTransport(bob, channel_name) as server:
            await client.write(PING)
            request = await server.read()
            assert request == PING
            await server.write({"jsonrpc": "2.0", "id": request["id"], "result": {}})
            response = await client.read_message()
            assert isinstance(response, types.JSONRPCResponse)
            assert (response.id, response.result) == (1, {})
            # An mcp model is accepted too, and an error with a null id keeps its "id": null.
            parse_error = types.ErrorData(code=-32700, message="parse error")
            await server.write(types.JSONRPCError(jsonrpc="2.0", id=None, error=parse_error))
            expected = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            assert await client.read() == expected
            assert client.skipped() == server.skipped() == {}
            assert client.malformed() == server.malformed() == 0

    with alice, bob:
        run(body)


def with_carol(channel: str) -> tuple[SkytaleChannelManager, SkytaleChannelManager, SkytaleChannelManager]:
    """``pair(channel)`` plus Carol, a third member who is not part of the MCP session."""
    alice, bob = pair(channel)
    carol = SkytaleChannelManager("carol")
    carol.join(channel, alice.add_member(channel, carol.key_package()))
    return alice, bob, carol


def test_a_bound_transport_skips_other_members_mcp(
    dev_env: DevStack, channel_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob, carol = with_carol(channel_name)

    async def body() -> None:
        async with (
            SkytaleTransport(bob, channel_name, peer=b"alice") as bound,
            SkytaleTransport(bob, channel_name, bind_first_peer=True) as first_come,
            SkytaleTransport(alice, channel_name) as from_alice,
            SkytaleTransport(carol, channel_name) as from_carol,
        ):
            assert (bound.peer, first_come.peer) == (b"alice", None)
            await from_carol.write(PING)  # acknowledged first, so first on the channel
            await from_alice.write({**PING, "id": 2})
            assert await bound.read() == {**PING, "id": 2}
            assert bound.foreign() == 1
            # The first MCP message came from Carol: that transport is hers now, and Alice's is the foreign one.
            assert await first_come.read() == PING
            assert first_come.peer == b"carol"
            await from_alice.write({**PING, "id": 3})
            await from_carol.write({**PING, "id": 4})
            assert await first_come.read() == {**PING, "id": 4}
            assert first_come.foreign() == 2

    with alice, bob, carol, caplog.at_level("WARNING", logger="skytale_sdk.integrations.mcp"):
        run(body)
    assert "from 'carol': this session's peer is 'alice'" in caplog.text
    with pytest.raises(TypeError, match="peer must be the peer's identity as bytes"):
        SkytaleTransport(alice, channel_name, peer="bob")  # type: ignore[arg-type]


def test_a_second_client_cannot_disturb_a_served_session(
    dev_env: DevStack, channel_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob, carol = with_carol(channel_name)

    async def clients() -> None:
        async with skytale_client(alice, channel_name, server=b"bob") as (read_stream, write_stream):
            async with ClientSession(read_stream, write_stream) as session:
                await session.initialize()
                assert text_of(await session.call_tool("add", {"a": 1, "b": 2})) == "3"
                # Carol's session is not served (the server serves Alice), and Alice's never sees Carol's requests.
                async with skytale_client(carol, channel_name) as (carol_read, carol_write):
                    async with ClientSession(carol_read, carol_write) as intruder:
                        with pytest.raises(TimeoutError):
                            await asyncio.wait_for(intruder.initialize(), 2.0)
                assert text_of(await session.call_tool("add", {"a": 40, "b": 2})) == "42"

    with alice, bob, carol, caplog.at_level("WARNING", logger="skytale_sdk.integrations.mcp"):
        run(lambda: with_server(calculator(), bob, channel_name, clients))
    assert "from 'carol': this session's peer is 'alice'" in caplog.text


def test_wire_format_is_one_mcp_envelope_per_message(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def body() -> None:
        async with SkytaleTransport(alice, channel_name) as transport:
            await transport.write({"jsonrpc": "2.0", "method": "notifications/initialized"})

    with alice, bob:
        run(body)
        [envelope] = bob.receive_envelopes(channel_name, timeout=PATIENCE)
        assert envelope.protocol is Protocol.MCP
        assert envelope.content_type == "application/json"
        assert envelope.metadata is None
        assert json.loads(envelope.payload) == {"jsonrpc": "2.0", "method": "notifications/initialized"}


def test_client_session_calls_an_mcpserver_tool(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def client() -> None:
        async with skytale_client(alice, channel_name) as (read_stream, write_stream):
            async with ClientSession(read_stream, write_stream) as session:
                initialized = await session.initialize()
                assert initialized.server_info.name == "calculator"
                tools = await session.list_tools()
                assert sorted(tool.name for tool in tools.tools) == ["add", "shout"]
                assert text_of(await session.call_tool("add", {"a": 2, "b": 40})) == "42"
                assert text_of(await session.call_tool("shout", {"text": "encrypted"})) == "ENCRYPTED"

    with alice, bob:
        run(lambda: with_server(calculator(), bob, channel_name, client))


def test_mcp_client_takes_skytale_client_as_its_transport(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def client() -> None:
        async with Client(skytale_client(alice, channel_name)) as mcp_client:
            assert text_of(await mcp_client.call_tool("add", {"a": 1, "b": 2})) == "3"

    with alice, bob:
        run(lambda: with_server(calculator(), bob, channel_name, client))


def test_client_session_calls_a_lowlevel_server_tool(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    schema = {"type": "object", "properties": {"text": {"type": "string"}}}
    echo = types.Tool(name="echo", description="Echoes its text", input_schema=schema)

    async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[echo])

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = params.arguments or {}
        text = f"{params.name}: {arguments['text']}"
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

    server = Server("echo-server", on_list_tools=list_tools, on_call_tool=call_tool)

    async def serve_with_streams() -> None:
        # The documented low-level way: Server.run on skytale_server's streams.
        async with skytale_server(bob, channel_name) as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    async def body() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(serve_with_streams)
            async with skytale_client(alice, channel_name) as (read_stream, write_stream):
                async with ClientSession(read_stream, write_stream) as session:
                    assert (await session.initialize()).server_info.name == "echo-server"
                    assert [tool.name for tool in (await session.list_tools()).tools] == ["echo"]
                    assert text_of(await session.call_tool("echo", {"text": "over MLS"})) == "echo: over MLS"
            tasks.cancel_scope.cancel()

    with alice, bob:
        run(body)


def test_concurrent_tool_calls_are_each_answered(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def client() -> None:
        async with skytale_client(alice, channel_name) as (read_stream, write_stream):
            async with ClientSession(read_stream, write_stream) as session:
                await session.initialize()
                results = await asyncio.gather(*(session.call_tool("add", {"a": i, "b": 1000}) for i in range(12)))
                assert [text_of(result) for result in results] == [str(i + 1000) for i in range(12)]

    with alice, bob:
        run(lambda: with_server(calculator(), bob, channel_name, client))


def test_a_waiting_call_does_not_hold_up_the_others(dev_env: DevStack, channel_name: str) -> None:
    # "wait" returns only after "release" ran: served one at a time, the session would deadlock.
    alice, bob = pair(channel_name)
    server = MCPServer("gate")
    released = asyncio.Event()

    @server.tool()
    async def wait() -> str:
        await released.wait()
        return "waited"

    @server.tool()
    def release() -> str:
        released.set()
        return "released"

    async def client() -> None:
        async with skytale_client(alice, channel_name) as (read_stream, write_stream):
            async with ClientSession(read_stream, write_stream) as session:
                await session.initialize()
                waiting = asyncio.ensure_future(session.call_tool("wait", {}))
                assert text_of(await session.call_tool("release", {})) == "released"
                assert text_of(await waiting) == "waited"

    with alice, bob:
        run(lambda: with_server(server, bob, channel_name, client))


def test_other_protocols_are_skipped_and_counted_malformed_mcp_too(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def body() -> None:
        async with SkytaleTransport(bob, channel_name) as transport:
            await asyncio.to_thread(alice.send, channel_name, "plain text, no envelope")
            a2a = Envelope(Protocol.A2A, "application/json", b'{"messageId": "m1"}', {"agent_id": "alice"})
            await asyncio.to_thread(alice.send_envelope, channel_name, a2a)
            malformed = [b"{not json", b'[{"jsonrpc": "2.0", "method": "ping", "id": 2}]', b'{"jsonrpc": "1.0"}']
            for payload in malformed:
                await asyncio.to_thread(alice.send_envelope, channel_name, mcp_envelope(payload))
            ping_as_text = Envelope(Protocol.MCP, "text/plain", json.dumps(PING).encode())
            await asyncio.to_thread(alice.send_envelope, channel_name, ping_as_text)
            await asyncio.to_thread(alice.send_envelope, channel_name, mcp_envelope(json.dumps(PING).encode()))
            assert await transport.read() == PING
            assert transport.skipped() == {"raw": 1, "a2a": 1}
            assert transport.malformed() == 4

    with alice, bob:
        run(body)


def test_malformed_mcp_reaches_the_session_as_an_exception(
    dev_env: DevStack, channel_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = pair(channel_name)
    surfaced: list[Exception] = []

    async def message_handler(message: Any) -> None:
        if isinstance(message, Exception):
            surfaced.append(message)

    async def client() -> None:
        async with skytale_client(alice, channel_name) as (read_stream, write_stream):
            async with ClientSession(read_stream, write_stream, message_handler=message_handler) as session:
                await session.initialize()
                # bob's own server transport never sees this (the relay does not echo own messages); alice's does.
                garbage = Envelope(Protocol.MCP, "application/json", b'{"jsonrpc": "2.0", "id": 7}')
                await asyncio.to_thread(bob.send_envelope, channel_name, garbage)
                assert text_of(await session.call_tool("shout", {"text": "still fine"})) == "STILL FINE"
                while not surfaced:
                    await asyncio.sleep(0.05)

    with alice, bob, caplog.at_level("WARNING", logger="skytale_sdk.integrations.mcp"):
        run(lambda: with_server(calculator(), bob, channel_name, client))
    assert isinstance(surfaced[0], ValueError)
    assert "not a JSON-RPC 2.0 message" in str(surfaced[0])
    assert any("malformed MCP message" in record.message for record in caplog.records)


def test_close_ends_a_pending_read(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def body() -> None:
        tasks_before = asyncio.all_tasks()
        transport = SkytaleTransport(bob, channel_name)
        pending = asyncio.ensure_future(transport.read())
        await asyncio.sleep(0.3)
        assert not pending.done()
        await transport.close()
        with pytest.raises(ChannelError, match="MCP transport is closed"):
            await pending
        with pytest.raises(ChannelError, match="MCP transport is closed"):
            await transport.read()
        with pytest.raises(ChannelError, match="MCP transport is closed"):
            await transport.write(PING)
        await transport.close()  # idempotent
        assert asyncio.all_tasks() == tasks_before  # the transport's own task is gone

    with alice, bob:
        run(body)


def test_a_cancelled_read_loses_nothing(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def body() -> None:
        async with SkytaleTransport(bob, channel_name) as transport:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(transport.read(), 0.2)
            await SkytaleTransport(alice, channel_name).write(PING)
            assert await transport.read() == PING

    with alice, bob:
        run(body)


def test_a_closing_manager_ends_the_read(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def body() -> None:
        async with SkytaleTransport(bob, channel_name) as transport:
            pending = asyncio.ensure_future(transport.read())
            await asyncio.sleep(0.3)
            await asyncio.to_thread(bob.close)
            with pytest.raises(ChannelError, match="channel ended"):
                await pending

    with alice:
        run(body)


def test_serve_returns_when_the_channel_ends(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def body() -> None:
        serving = asyncio.ensure_future(serve(calculator(), bob, channel_name))
        await asyncio.sleep(0.3)
        assert not serving.done()
        await asyncio.to_thread(bob.close)
        await serving  # returns: the read stream ended, so Server.run did

    with alice:
        run(body)


def test_the_transport_does_not_drain_manager_receive(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def body() -> None:
        async with SkytaleTransport(bob, channel_name) as transport:
            await asyncio.to_thread(alice.send, channel_name, "for the application")
            await SkytaleTransport(alice, channel_name).write(PING)
            assert await transport.read() == PING

    with alice, bob:
        run(body)
        received = receive_exactly(bob, channel_name, 2)
        assert received[0] == "for the application"
        assert Envelope.deserialize(received[1].encode()).protocol is Protocol.MCP


async def leave_the_streams(manager: SkytaleChannelManager, channel: str) -> None:
    async with skytale_client(manager, channel):
        pass


async def cancel_serve(manager: SkytaleChannelManager, channel: str) -> None:
    serving = asyncio.ensure_future(serve(calculator(), manager, channel))
    await asyncio.sleep(0.3)
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving


@pytest.mark.parametrize("leave", [leave_the_streams, cancel_serve])
def test_leaving_closes_the_view_and_joins_the_tasks(
    dev_env: DevStack, channel_name: str, leave: Callable[[SkytaleChannelManager, str], Awaitable[None]]
) -> None:
    alice, bob = pair(channel_name, buffer_limit=3)

    async def body() -> None:
        tasks_before = asyncio.all_tasks()
        await leave(bob, channel_name)
        assert asyncio.all_tasks() == tasks_before

    with alice, bob:
        run(body)
        # A view left open would fill up after 3 messages and, unread, hold back the listener that feeds receive().
        for i in range(6):
            alice.send(channel_name, f"m{i}")
        assert receive_exactly(bob, channel_name, 3) == ["m0", "m1", "m2"]
        with pytest.raises(QuotaExceededError):  # the inbox had filled: reported once, nothing dropped
            bob.receive(channel_name, timeout=PATIENCE)
        assert receive_exactly(bob, channel_name, 3) == ["m3", "m4", "m5"]


def test_bad_input_is_refused_with_a_clear_error(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)

    async def body() -> None:
        async with SkytaleTransport(alice, channel_name) as transport:
            with pytest.raises(ValueError, match="not a JSON-RPC 2.0 message"):
                await transport.write({"jsonrpc": "2.0", "params": {}})
            with pytest.raises(TypeError, match="got str"):
                await transport.write(json.dumps(PING))  # type: ignore[arg-type]

    with alice, bob:
        run(body)
        with pytest.raises(ChannelError, match="unknown channel"):
            SkytaleTransport(alice, "myorg/tests/never-created")
        with pytest.raises(TypeError, match="manager must be a SkytaleChannelManager, got str"):
            SkytaleTransport("alice", channel_name)  # type: ignore[arg-type]


def test_import_without_mcp_names_the_extra() -> None:
    # A real interpreter where importing mcp fails, as it does without the [mcp] extra.
    code = "import sys; sys.modules['mcp'] = None; import skytale_sdk.integrations.mcp_transport"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "pip install '.[mcp]'" in result.stderr


def run_python(arguments: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Runs this interpreter in the test's environment (``skytale dev``'s variables), temp files in ``tmp_path``."""
    environment = {**os.environ, "TMPDIR": str(tmp_path)}
    command = [sys.executable, *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=PATIENCE, env=environment)


def test_the_example_runs(dev_env: DevStack, tmp_path: Path) -> None:
    result = run_python([str(REPO / "examples" / "mcp_tool_call.py")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["tools: ['add']", "add(2, 40) = 42"]


def test_the_readme_snippet_runs(dev_env: DevStack, tmp_path: Path) -> None:
    section = (REPO / "README.md").read_text().split("### MCP\n", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```\n", 1)[0]
    result = run_python(["-c", snippet], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "42\n"

"""MCP over Skytale channels, end to end over a real ``skytale dev`` with the real ``mcp`` package: raw JSON-RPC
through ``SkytaleTransport``, and a real ``ClientSession`` calling real servers' tools through the stream pair."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from typing import Any, Awaitable, Callable, Dict, List

import anyio
import mcp.types as types
import pytest
from conftest import DevStack
from mcp import ClientSession
from mcp.server import Server, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from skytale_sdk import ChannelError, Envelope, Protocol, SkytaleChannelManager
from skytale_sdk.integrations.mcp_transport import SkytaleTransport, serve, skytale_client, skytale_server
from test_manager import PATIENCE, pair, receive_exactly

PING = {"jsonrpc": "2.0", "method": "ping", "id": 1}


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
            await server.write(types.JSONRPCError(jsonrpc="2.0", id=None, error=types.ErrorData(code=-32700, message="parse error")))
            assert await client.read() == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            assert client.skipped() == server.skipped() == {}
            assert client.malformed() == server.malformed() == 0

    with alice, bob:
        run(body)


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

"""`skytale mcp`, the MCP server of Skytale's tools: real ``mcp`` client sessions launch the real server process
(over stdio, and over streamable HTTP) and, through it, two agents exchange messages over a real ``skytale dev``."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable

import mcp.types as types
import pytest
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from conftest import DevStack
from relay_process import SKYTALE_BIN
from skytale_sdk import SkytaleChannelManager
from skytale_sdk.mcp_server import create_server
from skytale_sdk.tools import TOOL_SPECS
from test_manager import PATIENCE

REPO = Path(__file__).resolve().parent.parent
TOOL_NAMES = [
    "create_channel",
    "invite",
    "join_with_token",
    "send",
    "receive",
    "receive_latest",
    "list_channels",
    "members",
    "leave",
]
SERVER_COMMANDS = {
    "skytale mcp": [str(SKYTALE_BIN), "mcp"],
    "python -m skytale_sdk.mcp_server": [sys.executable, "-m", "skytale_sdk.mcp_server"],
    "skytale-mcp": [str(Path(sys.executable).parent / "skytale-mcp")],
}


def run(body: Callable[[], Awaitable[None]]) -> None:
    """Runs the test body on a fresh loop; a lost message fails the test instead of hanging it."""

    async def bounded() -> None:
        await asyncio.wait_for(body(), PATIENCE)

    asyncio.run(bounded())


def agent_env(tmp_path: Path, identity: str | None, dev: DevStack | None = None) -> dict[str, str]:
    """The server's configuration: the agent's identity and data_dir, and ``skytale dev``'s variables."""
    env = {**(dev.env if dev else {}), "SKYTALE_DATA_DIR": str(tmp_path / f"agent-{identity}")}
    if identity is not None:
        env["SKYTALE_IDENTITY"] = identity
    return env


@asynccontextmanager
async def agent_session(
    tmp_path: Path, identity: str | None, dev: DevStack | None = None, command: list[str] | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized client session with a ``skytale mcp`` process of its own (the agent ``identity``)."""
    executable, *arguments = command or SERVER_COMMANDS["skytale mcp"]
    parameters = StdioServerParameters(command=executable, args=arguments, env=agent_env(tmp_path, identity, dev))
    with open(tmp_path / f"server-{identity}.log", "a") as errlog:
        async with stdio_client(parameters, errlog=errlog) as (read_stream, write_stream):
            async with ClientSession(read_stream, write_stream) as session:
                await session.initialize()
                await session.list_tools()  # so the session checks structured results against the output schemas
                yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """A successful call's structured result (which must also be its text)."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    [content] = result.content
    assert isinstance(content, types.TextContent)
    assert result.structured_content is not None
    assert json.loads(content.text) == result.structured_content
    return result.structured_content


async def tool_error(session: ClientSession, tool: str, **arguments: Any) -> str:
    """A failed call's error text."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result
    [content] = result.content
    assert isinstance(content, types.TextContent)
    return content.text


@pytest.mark.parametrize("command", SERVER_COMMANDS.values(), ids=SERVER_COMMANDS.keys())
def test_the_server_lists_every_tool_with_its_schemas(tmp_path: Path, command: list[str]) -> None:
    async def body() -> None:
        async with agent_session(tmp_path, "alice", command=command) as session:
            listed = (await session.list_tools()).tools
            assert [tool.name for tool in listed] == TOOL_NAMES
            for tool, spec in zip(listed, TOOL_SPECS):
                assert tool.description == spec.description
                assert tool.title == spec.title
                assert tool.input_schema == spec.input_schema
                assert tool.output_schema == spec.output_schema
                assert tool.input_schema["type"] == "object"
                assert tool.input_schema["additionalProperties"] is False
                assert tool.annotations is not None
                assert tool.annotations.read_only_hint is spec.read_only
            by_name = {tool.name: tool for tool in listed}
            assert by_name["send"].input_schema["required"] == ["channel"]
            assert set(by_name["send"].input_schema["properties"]) == {"channel", "text", "json"}
            assert by_name["receive"].input_schema["properties"]["timeout_seconds"]["maximum"] == 60
            message = by_name["receive"].output_schema["properties"]["messages"]["items"]
            assert {"sender", "seq", "timestamp"} <= set(message["required"])
            assert by_name["list_channels"].annotations.read_only_hint is True
            assert by_name["leave"].annotations.destructive_hint is True

    run(body)


def test_two_agents_exchange_messages_through_their_servers(dev_env: DevStack, tmp_path: Path) -> None:
    channel = "myorg/mcp-tools/research"

    async def body() -> None:
        async with (
            agent_session(tmp_path, "researcher", dev_env) as researcher,
            agent_session(tmp_path, "writer", dev_env) as writer,
        ):
            assert await call(researcher, "create_channel", channel=channel) == {
                "channel": channel,
                "members": ["researcher"],
            }
            invite = await call(researcher, "invite", channel=channel)
            assert invite["token"].startswith("skt_inv_")
            assert (invite["max_uses"], invite["ttl_seconds"]) == (1, 3600)
            both = {"channel": channel, "members": ["researcher", "writer"]}
            assert await call(writer, "join_with_token", channel=channel, token=invite["token"]) == both

            sent = await call(researcher, "send", channel=channel, text="Finding: MLS scales to 1000 members")
            assert sent["content_type"] == "text/plain; charset=utf-8"
            await call(researcher, "send", channel=channel, json={"sources": 3, "topics": ["mls", "relay"]})
            messages = await receive_exactly(writer, channel, 2)
            assert [message["sender"] for message in messages] == ["researcher", "researcher"]
            assert messages[0]["text"] == "Finding: MLS scales to 1000 members"
            assert messages[0]["content_type"] == "text/plain; charset=utf-8"
            assert messages[1]["json"] == {"sources": 3, "topics": ["mls", "relay"]}
            assert messages[1]["content_type"] == "application/json"
            assert messages[0]["seq"] < messages[1]["seq"]
            assert all(isinstance(message["timestamp"], float) for message in messages)

            for draft in ("draft 1", "draft 2"):
                await call(writer, "send", channel=channel, text=draft)
            latest = await call(researcher, "receive_latest", channel=channel, timeout_seconds=PATIENCE)
            # Both drafts were stored before the call, so one receive takes both and keeps the newest.
            newest = latest["message"]
            assert (newest["text"], newest["sender"], latest["discarded"]) == ("draft 2", "writer", 1)
            empty = await call(researcher, "receive", channel=channel, timeout_seconds=0)
            assert empty == {"channel": channel, "messages": []}

            assert await call(writer, "list_channels") == {"channels": [channel]}
            assert await call(writer, "members", channel=channel) == both
            assert await call(writer, "leave", channel=channel) == {"channel": channel, "left": True}
            assert await call(writer, "list_channels") == {"channels": []}
            while (await call(researcher, "members", channel=channel))["members"] != ["researcher"]:
                await asyncio.sleep(0.05)  # the researcher applies the writer's leave when it arrives

    run(body)


async def receive_exactly(session: ClientSession, channel: str, count: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while len(messages) < count:
        messages += (await call(session, "receive", channel=channel, timeout_seconds=PATIENCE))["messages"]
    return messages


def test_bad_input_is_a_tool_error_that_says_what_to_do(dev_env: DevStack, tmp_path: Path) -> None:
    channel = "myorg/mcp-tools/errors"

    async def body() -> None:
        async with (
            agent_session(tmp_path, "owner", dev_env) as owner,
            agent_session(tmp_path, "latecomer", dev_env) as latecomer,
        ):
            await call(owner, "create_channel", channel=channel)
            text = await tool_error(owner, "send", channel="myorg/mcp-tools/never-created", text="hi")
            assert "unknown channel: myorg/mcp-tools/never-created" in text
            assert "Call list_channels" in text and "join_with_token" in text
            text = await tool_error(owner, "create_channel", channel="not a channel name")
            assert text.startswith("create_channel failed: invalid channel name: not a channel name")
            assert "e.g. myorg/team/general" in text
            # Creating a channel this agent holds is a no-op; another agent's channel of the name is refused.
            assert (await call(owner, "create_channel", channel=channel))["members"] == ["owner"]
            text = await tool_error(latecomer, "create_channel", channel=channel)
            assert "already exists on the relay" in text and "join_with_token" in text

            invite = await call(owner, "invite", channel=channel, ttl_seconds=1)
            await asyncio.sleep(1.5)  # past the invite's expiry
            text = await tool_error(latecomer, "join_with_token", channel=channel, token=invite["token"])
            assert "invite_expired" in text
            assert "Ask a member of the channel for a new invite token" in text
            text = await tool_error(latecomer, "join_with_token", channel=channel, token="skt_inv_not-a-token")
            assert "join_with_token failed: channel error" in text

            # Arguments are checked against the schema, with the rule in the message.
            assert "missing argument 'channel'" in await tool_error(owner, "send", text="hi")
            assert "give exactly one of 'text'" in await tool_error(owner, "send", channel=channel)
            assert "give exactly one of 'text'" in await tool_error(owner, "send", channel=channel, text="a", json=1)
            not_a_string = await tool_error(owner, "send", channel=channel, text=5)
            assert "'text' must be a string, got the number 5" in not_a_string
            assert "unknown argument 'chanel'" in await tool_error(owner, "members", chanel=channel)
            assert "at most 60" in await tool_error(owner, "receive", channel=channel, timeout_seconds=3600)
            assert "at least 1" in await tool_error(owner, "invite", channel=channel, max_uses=0)
            assert "unknown tool 'delete_everything'" in await tool_error(owner, "delete_everything")

            # After all that, the server still serves.
            assert await call(owner, "list_channels") == {"channels": [channel]}
            assert await call(latecomer, "list_channels") == {"channels": []}

    run(body)


def test_a_server_without_identity_tells_the_agent_how_to_configure_it(tmp_path: Path) -> None:
    async def body() -> None:
        async with agent_session(tmp_path, None) as session:
            text = await tool_error(session, "list_channels")
            assert "set SKYTALE_IDENTITY in the MCP server's environment" in text
            assert "--identity" in text

    run(body)


def test_create_server_serves_an_existing_manager_in_process(dev_env: DevStack, channel_name: str) -> None:
    async def body() -> None:
        with SkytaleChannelManager("embedder") as manager:
            manager.create(channel_name)
            async with Client(create_server(manager)) as client:
                result = await client.call_tool("members", {"channel": channel_name})
                assert result.structured_content == {"channel": channel_name, "members": ["embedder"]}
            manager.send(channel_name, "the manager stays open: the server never closes a manager it was given")

    run(body)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_streamable_http(dev_env: DevStack, tmp_path: Path) -> None:
    port = free_port()
    command = [str(SKYTALE_BIN), "mcp", "--transport", "streamable-http", "--port", str(port)]
    env = {**os.environ, **agent_env(tmp_path, "http-agent", dev_env)}
    with open(tmp_path / "http-server.log", "w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    channel = "myorg/mcp-tools/over-http"

    async def body() -> None:
        url = f"http://127.0.0.1:{port}/mcp"
        while True:  # until the server listens (bounded by run()'s patience)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "http-server.log").read_text()
                await asyncio.sleep(0.1)
        async with streamable_http_client(url) as (read_stream, write_stream):
            async with ClientSession(read_stream, write_stream) as session:
                await session.initialize()
                assert [tool.name for tool in (await session.list_tools()).tools] == TOOL_NAMES
                assert await call(session, "create_channel", channel=channel) == {
                    "channel": channel,
                    "members": ["http-agent"],
                }
                assert "unknown channel" in await tool_error(session, "members", channel="myorg/mcp-tools/nope")
                assert await call(session, "list_channels") == {"channels": [channel]}

    try:
        run(body)
    finally:
        server.terminate()
        server.wait(timeout=PATIENCE)


def test_skytale_mcp_names_what_to_install_when_the_module_is_missing(tmp_path: Path) -> None:
    # An interpreter without skytale_sdk: a fresh virtualenv's.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    env = {**os.environ, "SKYTALE_PYTHON": str(tmp_path / "bare" / "bin" / "python")}
    result = subprocess.run([str(SKYTALE_BIN), "mcp"], env=env, capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode != 0
    assert "cannot import skytale_sdk.mcp_server" in result.stderr
    assert 'pip install ".[mcp]"' in result.stderr and "SKYTALE_PYTHON" in result.stderr

    env["SKYTALE_PYTHON"] = str(tmp_path / "no-such-python")
    result = subprocess.run([str(SKYTALE_BIN), "mcp"], env=env, capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode != 0
    assert f"cannot run the Python interpreter {tmp_path / 'no-such-python'}" in result.stderr
    assert "SKYTALE_PYTHON" in result.stderr


def test_skytale_mcp_passes_every_argument_through() -> None:
    result = subprocess.run([str(SKYTALE_BIN), "mcp", "--help"], capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: skytale mcp [-h] [--transport {stdio,streamable-http}]")
    result = subprocess.run(
        [str(SKYTALE_BIN), "mcp", "--transport", "carrier-pigeon"], capture_output=True, text=True, timeout=PATIENCE
    )
    assert result.returncode == 2
    assert "argument --transport: invalid choice: 'carrier-pigeon'" in result.stderr


def test_import_without_mcp_names_the_extra() -> None:
    code = "import sys; sys.modules['mcp'] = None; import skytale_sdk.mcp_server"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode != 0
    assert "pip install '.[mcp]'" in result.stderr


def test_the_readme_mcp_servers_snippet_configures_a_working_server(dev_env: DevStack, tmp_path: Path) -> None:
    section = (REPO / "README.md").read_text().split("### MCP server: `skytale mcp`\n", 1)[1]
    config = json.loads(section.split("```json\n", 1)[1].split("```\n", 1)[0])
    [(name, entry)] = config["mcpServers"].items()
    assert (name, entry["command"], entry["args"]) == ("skytale", "skytale", ["mcp"])
    assert set(entry["env"]) == {"SKYTALE_IDENTITY", "SKYTALE_RELAY", "SKYTALE_API_URL", "SKYTALE_API_KEY"}
    # As a host would start it, with this test's stack in place of the snippet's placeholders.
    env = {**entry["env"], **dev_env.env, "SKYTALE_DATA_DIR": str(tmp_path / "readme-agent")}
    parameters = StdioServerParameters(command=str(SKYTALE_BIN), args=entry["args"], env=env)

    async def body() -> None:
        async with stdio_client(parameters) as (read_stream, write_stream):
            async with ClientSession(read_stream, write_stream) as session:
                await session.initialize()
                assert await call(session, "list_channels") == {"channels": []}

    run(body)


def test_the_example_runs(dev_env: DevStack, tmp_path: Path) -> None:
    environment = {**os.environ, "TMPDIR": str(tmp_path)}
    command = [sys.executable, str(REPO / "examples" / "mcp_researcher_writer.py")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=PATIENCE, env=environment)
    assert result.returncode == 0, result.stderr
    assert "writer received from researcher: MLS gives each message forward secrecy" in result.stdout
    assert "researcher received the draft from writer" in result.stdout

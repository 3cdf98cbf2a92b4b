"""An MCP server exposing Skytale channels as tools: ``skytale mcp``, ``skytale-mcp`` or
``python -m skytale_sdk.mcp_server [--transport stdio|streamable-http] [--host 127.0.0.1] [--port N]``.

The tools are :mod:`skytale_sdk.tools`' (create_channel, invite, join_with_token, send, receive, receive_latest,
list_channels, members, leave), with their descriptions, input and output schemas; each call returns structured
content (and the same JSON as text), and each failure an MCP tool error (``isError``) whose text says what to
do. The server is one agent: one :class:`~skytale_sdk.SkytaleChannelManager`, configured by the environment
(``SKYTALE_IDENTITY`` or ``--identity``, ``SKYTALE_RELAY``, ``SKYTALE_API_KEY``, ``SKYTALE_API_URL``,
``SKYTALE_DATA_DIR``) and connected at the first tool call, so a configuration problem reaches the agent as a
tool error rather than as a server that would not start. It is built on the ``mcp`` package's low-level
``Server``, so the schemas published are exactly the shared ones.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable, Union

try:
    import anyio
    import mcp.types as types
    from mcp.server import Server, ServerRequestContext
    from mcp.server.stdio import stdio_server
except ImportError as _error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"skytale_sdk.mcp_server needs the mcp package ({_error}): pip install '.[mcp]' in the Skytale source tree"
    ) from _error

from .errors import SkytaleError
from .manager import SkytaleChannelManager
from .tools import TOOL_SPECS, SkytaleTools, ToolError, ToolSpec
from .tools._errors import as_tool_error

__all__ = ["create_server", "main", "SERVER_NAME"]

SERVER_NAME = "skytale"

_INSTRUCTIONS = (
    "End-to-end encrypted channels between agents. To work with another agent: one of you calls create_channel "
    "and invite, and hands the token to the other, who calls join_with_token. Then send and receive messages on "
    "the channel (receive waits up to timeout_seconds for the next ones). Channel names are org/namespace/service."
)

#: What the server serves: a manager, or a function that opens one (called at the first tool call).
ManagerSource = Union[SkytaleChannelManager, Callable[[], SkytaleChannelManager]]


class _Agent:
    """The server's tools, over a manager opened at the first call (again at the next one if that failed)."""

    def __init__(self, source: ManagerSource) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._tools: SkytaleTools | None = None

    def tools(self, tool: str) -> SkytaleTools:
        with self._lock:
            if self._tools is None:
                try:
                    manager = self._source if isinstance(self._source, SkytaleChannelManager) else self._source()
                except SkytaleError as error:
                    raise as_tool_error(tool, error) from error
                self._tools = SkytaleTools(manager)
            return self._tools

    def call(self, name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
        return self.tools(name).call(name, arguments)

    def close(self) -> None:
        """Closes the manager if this agent opened it."""
        with self._lock:
            if self._tools is not None and not isinstance(self._source, SkytaleChannelManager):
                self._tools.manager.close()
            self._tools = None


def _mcp_tool(spec: ToolSpec) -> types.Tool:
    return types.Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=dict(spec.input_schema),
        output_schema=dict(spec.output_schema),
        annotations=types.ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            destructive_hint=spec.destructive,
            open_world_hint=False,
        ),
    )


def create_server(manager: ManagerSource) -> Server[dict[str, Any]]:
    """The MCP ``Server`` (low level) of the Skytale tools over ``manager``, or over the manager that
    ``manager()`` opens at the first tool call (never closed by the server). Run it with ``server.run(read,
    write, server.create_initialization_options())`` or serve ``server.streamable_http_app()``."""
    return _server(_Agent(manager))


def _server(agent: _Agent) -> Server[dict[str, Any]]:
    tools = [_mcp_tool(spec) for spec in TOOL_SPECS]
    input_schemas = {tool.name: tool.input_schema for tool in tools}

    async def list_tools(
        ctx: ServerRequestContext[dict[str, Any]], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[dict[str, Any]], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            result = await anyio.to_thread.run_sync(agent.call, params.name, params.arguments)
        except ToolError as error:
            return types.CallToolResult(content=[types.TextContent(type="text", text=str(error))], is_error=True)
        text = json.dumps(result, ensure_ascii=False)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=result)

    return Server(
        SERVER_NAME,
        version=_package_version(),
        title="Skytale encrypted channels",
        instructions=_INSTRUCTIONS,
        get_tool_input_schema=input_schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _package_version() -> str:
    try:
        return version("skytale-sdk")
    except PackageNotFoundError:  # pragma: no cover - a source checkout that was never installed
        return "0"


def _open_manager(identity: str | None) -> Callable[[], SkytaleChannelManager]:
    def open_manager() -> SkytaleChannelManager:
        if not identity:
            raise SkytaleError(
                "runtime error: this agent has no identity: set SKYTALE_IDENTITY in the MCP server's environment "
                "(the env of its mcpServers entry) or start it with --identity NAME"
            )
        return SkytaleChannelManager(identity)

    return open_manager


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="skytale mcp",
        description="An MCP server exposing Skytale's end-to-end encrypted channels as tools. Configured by "
        "SKYTALE_IDENTITY, SKYTALE_RELAY, SKYTALE_API_KEY, SKYTALE_API_URL and SKYTALE_DATA_DIR.",
    )
    parser.add_argument("--transport", choices=("stdio", "streamable-http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="streamable-http: address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="streamable-http: port to listen on")
    parser.add_argument("--path", default="/mcp", help="streamable-http: the endpoint's path")
    parser.add_argument("--identity", default=None, help="this agent's identity (default: SKYTALE_IDENTITY)")
    return parser.parse_args(argv)


async def _serve(server: Server[Any], arguments: argparse.Namespace) -> None:
    if arguments.transport == "stdio":
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
        return
    import uvicorn

    app = server.streamable_http_app(streamable_http_path=arguments.path, host=arguments.host)
    config = uvicorn.Config(app, host=arguments.host, port=arguments.port, log_level="warning")
    await uvicorn.Server(config).serve()


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the server until its client disconnects (stdio) or it is interrupted (streamable HTTP)."""
    arguments = _arguments(argv)
    agent = _Agent(_open_manager(arguments.identity or os.environ.get("SKYTALE_IDENTITY")))
    try:
        anyio.run(_serve, _server(agent), arguments)
    except KeyboardInterrupt:
        pass
    finally:
        agent.close()


if __name__ == "__main__":
    main()

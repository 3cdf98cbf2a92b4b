"""An MCP client calls an MCP server's tool over an end-to-end encrypted Skytale channel.

Start ``skytale dev --relay-port 0 --api-port 0`` in one shell, paste the three ``export SKYTALE_...`` lines it
prints into another, and run ``python examples/mcp_tool_call.py`` there (needs ``pip install '.[mcp]'``).
Each run uses fresh agents and a fresh channel, so it can be repeated against the same ``skytale dev``.
"""

import asyncio
import tempfile
import uuid

import anyio
from mcp import ClientSession
from mcp.server.mcpserver import MCPServer
from mcp.types import TextContent

from skytale_sdk import SkytaleChannelManager
from skytale_sdk.integrations.mcp_transport import serve, skytale_client

RUN_DIR = tempfile.mkdtemp(prefix="skytale-mcp-example-")  # this run's agents' data_dirs
CHANNEL = f"myorg/mcp/calculator-{uuid.uuid4().hex[:8]}"  # one channel per MCP client-server session

# The MCP server: a real MCPServer (the former FastMCP) with one tool.
calculator = MCPServer("calculator")


@calculator.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


async def main() -> None:
    # The client agent creates the channel and invites the server agent.
    client_agent = SkytaleChannelManager(identity=b"mcp-client", data_dir=f"{RUN_DIR}/client")
    server_agent = SkytaleChannelManager(identity=b"mcp-server", data_dir=f"{RUN_DIR}/server")
    client_agent.create(CHANNEL)
    server_agent.join_with_token(CHANNEL, client_agent.invite(CHANNEL))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(serve, calculator, server_agent, CHANNEL)  # serves until cancelled

        async with skytale_client(client_agent, CHANNEL) as (read_stream, write_stream):
            async with ClientSession(read_stream, write_stream) as session:
                await session.initialize()
                tools = await session.list_tools()
                print("tools:", [tool.name for tool in tools.tools])
                result = await session.call_tool("add", {"a": 2, "b": 40})
                answer = result.content[0]
                print("add(2, 40) =", answer.text if isinstance(answer, TextContent) else answer)

        tasks.cancel_scope.cancel()

    client_agent.close()
    server_agent.close()


if __name__ == "__main__":
    asyncio.run(main())

"""Two agents, a researcher and a writer, coordinate over one end-to-end encrypted channel through the tools of
their own Skytale MCP servers (``skytale mcp``), each reached by a real ``mcp`` client session over stdio.

Start ``skytale dev --relay-port 0 --api-port 0`` in one shell, paste the three ``export SKYTALE_...`` lines it
prints into another, and run ``python examples/mcp_researcher_writer.py`` there (needs ``pip install
'.[mcp]'`` in the Skytale source tree). Each run uses a fresh channel and fresh agent directories, so it
can be repeated.

No LLM here: each agent follows a script of tool calls (``researcher`` and ``writer`` below) that a model would
otherwise choose. With a real model, put ``skytale mcp`` into an MCP host (Claude Desktop, Cursor, an agent
framework's MCP client) with the README's ``mcpServers`` snippet: the model sees the same tools, with their
descriptions and schemas, and makes these calls itself.
"""

import asyncio
import json
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import TextContent

CHANNEL = f"myorg/research/report-{uuid.uuid4().hex[:8]}"
AGENTS_DIR = tempfile.mkdtemp(prefix="skytale-mcp-agents-")


@asynccontextmanager
async def skytale_tools(identity: str) -> AsyncIterator[ClientSession]:
    """A session with this agent's own Skytale MCP server (the same as ``skytale mcp``), configured by its
    environment: the agent's identity and data directory, and the relay and API of ``skytale dev``."""
    env = {name: os.environ[name] for name in ("SKYTALE_RELAY", "SKYTALE_API_URL", "SKYTALE_API_KEY")}
    env |= {"SKYTALE_IDENTITY": identity, "SKYTALE_DATA_DIR": os.path.join(AGENTS_DIR, identity)}
    server = StdioServerParameters(command=sys.executable, args=["-m", "skytale_sdk.mcp_server"], env=env)
    async with stdio_client(server) as (read_stream, write_stream):
        async with ClientSession(read_stream, write_stream) as session:
            await session.initialize()
            yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """One tool call, as a host makes it for its model; a tool error's text is what the model would read."""
    result = await session.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(" ".join(part.text for part in result.content if isinstance(part, TextContent)))
    structured: dict[str, Any] | None = result.structured_content
    assert structured is not None
    return structured


async def main() -> None:
    async with skytale_tools("researcher") as researcher, skytale_tools("writer") as writer:
        # The researcher opens the channel and invites the writer (the token goes to the writer out of band).
        await call(researcher, "create_channel", channel=CHANNEL)
        invite = await call(researcher, "invite", channel=CHANNEL)
        await call(writer, "join_with_token", channel=CHANNEL, token=invite["token"])

        # The researcher shares a finding; the writer reads it and answers with a draft.
        finding = {"claim": "MLS gives each message forward secrecy", "source": "RFC 9420"}
        await call(researcher, "send", channel=CHANNEL, json=finding)
        for message in (await call(writer, "receive", channel=CHANNEL, timeout_seconds=30))["messages"]:
            print(f"writer received from {message['sender']}: {message['json']['claim']}")
            draft = f"Draft: {message['json']['claim']} ({message['json']['source']})."
            await call(writer, "send", channel=CHANNEL, text=draft)

        latest = await call(researcher, "receive_latest", channel=CHANNEL, timeout_seconds=30)
        print(f"researcher received the draft from {latest['message']['sender']}: {latest['message']['text']}")
        print("members:", json.dumps((await call(researcher, "members", channel=CHANNEL))["members"]))


asyncio.run(main())

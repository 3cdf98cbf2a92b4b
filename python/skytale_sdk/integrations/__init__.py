"""Protocol integrations over :class:`~skytale_sdk.SkytaleChannelManager` (docs/integrations.md).

Each lives in its own module and needs its own extra, imported only when that module is:
:mod:`skytale_sdk.integrations.a2a` (``pip install skytale-sdk[a2a]``),
:mod:`skytale_sdk.integrations.mcp_transport` (``pip install '.[mcp]'``),
:mod:`skytale_sdk.integrations.slim` (no extra). The cross-protocol bridge is :mod:`skytale_sdk.bridge`.

The agent tools of :mod:`skytale_sdk.tools` are adapted here for LangChain / LangGraph
(:mod:`skytale_sdk.integrations.langchain`, ``pip install '.[langchain]'``) and the OpenAI Agents SDK
(:mod:`skytale_sdk.integrations.openai_agents`, ``pip install '.[openai-agents]'``); their MCP server is
:mod:`skytale_sdk.mcp_server`.
"""

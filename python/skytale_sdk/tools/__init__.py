"""Skytale channels as agent tools: one implementation, adapted by each framework integration.

:class:`SkytaleTools` runs the tools over a :class:`~skytale_sdk.SkytaleChannelManager`; :data:`TOOL_SPECS` holds
each tool's name, description and JSON schemas; every failure is a :class:`ToolError` worded for the agent. The
adapters only translate: :mod:`skytale_sdk.mcp_server` (an MCP server, extra ``[mcp]``),
:mod:`skytale_sdk.integrations.langchain` (``SkytaleToolkit``, extra ``[langchain]``) and
:mod:`skytale_sdk.integrations.openai_agents` (``skytale_function_tools``, extra ``[openai-agents]``).
docs/integrations.md ("Agent tools") lists the tools, their schemas and their errors.
"""

from ._catalog import TOOL_SPECS, ToolSpec
from ._errors import ToolError
from ._toolset import JSON_CONTENT_TYPE, TEXT_CONTENT_TYPE, SkytaleTools

__all__ = ["SkytaleTools", "ToolSpec", "TOOL_SPECS", "ToolError", "JSON_CONTENT_TYPE", "TEXT_CONTENT_TYPE"]

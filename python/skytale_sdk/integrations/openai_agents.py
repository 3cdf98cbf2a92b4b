"""Skytale channels as OpenAI Agents SDK tools: ``Agent(..., tools=skytale_function_tools(manager))``.

Each tool is an ``agents.FunctionTool`` (what ``@function_tool`` builds) adapting one of :mod:`skytale_sdk.tools`:
same name and description, the shared JSON schema as ``params_json_schema``. The schema is not in the SDK's strict
mode (``strict_json_schema=False``): strict mode requires every argument and allows no free-form JSON value, and
``send``'s ``json`` argument is one. The output schema is not passed as ``output_json_schema`` either: the SDK
rewrites it into strict form, which would make a message's alternative ``text`` and ``json`` both required. A call
returns its result as JSON text; a failed call returns ``"Error: "`` and the
:class:`~skytale_sdk.tools.ToolError`'s text, which the model reads, and the run goes on. The blocking
operations run in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

try:
    from agents import FunctionTool, Tool
    from agents.tool_context import ToolContext
except ImportError as _error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"skytale_sdk.integrations.openai_agents needs the openai-agents package ({_error}): "
        "pip install '.[openai-agents]' in the Skytale source tree"
    ) from _error

from ..manager import SkytaleChannelManager
from ..tools import TOOL_SPECS, SkytaleTools, ToolError, ToolSpec

__all__ = ["skytale_function_tools", "ERROR_PREFIX"]

#: How a failed call's output starts, before the :class:`~skytale_sdk.tools.ToolError` text.
ERROR_PREFIX = "Error: "


def skytale_function_tools(manager: SkytaleChannelManager) -> list[Tool]:
    """The Skytale tools of the agent behind ``manager``: create_channel, invite, join_with_token, send,
    receive, receive_latest, list_channels, members, leave; each a ``FunctionTool``, typed as ``Agent(tools=...)``
    takes them."""
    tools = SkytaleTools(manager)
    return [_function_tool(tools, spec) for spec in TOOL_SPECS]


def _function_tool(tools: SkytaleTools, spec: ToolSpec) -> FunctionTool:
    async def invoke(context: ToolContext[Any], arguments_json: str) -> str:
        try:
            arguments = json.loads(arguments_json) if arguments_json.strip() else {}
        except ValueError as error:
            return f"{ERROR_PREFIX}{spec.name}: the arguments are not valid JSON ({error})"
        try:
            result = await asyncio.to_thread(tools.call, spec.name, arguments)
        except ToolError as error:
            return f"{ERROR_PREFIX}{error}"
        return json.dumps(result, ensure_ascii=False)

    return FunctionTool(
        name=spec.name,
        description=spec.description,
        params_json_schema=dict(spec.input_schema),
        on_invoke_tool=invoke,
        strict_json_schema=False,
    )

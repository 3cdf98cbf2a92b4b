"""Skytale channels as LangChain tools, for LangChain and LangGraph agents: ``SkytaleToolkit(manager).get_tools()``.

Each tool is a ``langchain_core`` ``StructuredTool`` adapting one of :mod:`skytale_sdk.tools` (same name,
description and JSON input schema). A call returns the result as JSON text (the ``ToolMessage`` content the model
reads) and as a dict (its ``artifact``); a failed call returns the :class:`~skytale_sdk.tools.ToolError`'s text as
an error ``ToolMessage`` (``status="error"``), so the agent can correct itself and the graph keeps running.
Async calls run the blocking operation in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

try:
    from langchain_core.tools import BaseTool, BaseToolkit, StructuredTool, ToolException
    from pydantic import ConfigDict
except ImportError as _error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"skytale_sdk.integrations.langchain needs langchain-core ({_error}): "
        "pip install '.[langchain]' in the Skytale source tree"
    ) from _error

from ..manager import SkytaleChannelManager
from ..tools import TOOL_SPECS, SkytaleTools, ToolError, ToolSpec

__all__ = ["SkytaleToolkit"]


class SkytaleToolkit(BaseToolkit):
    """The Skytale tools of the agent behind ``manager``: create_channel, invite, join_with_token, send, receive,
    receive_latest, list_channels, members, leave. Pass ``get_tools()`` to an agent (e.g. LangGraph's
    ``create_react_agent(model, toolkit.get_tools())``)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(arbitrary_types_allowed=True)

    manager: SkytaleChannelManager

    def __init__(self, manager: SkytaleChannelManager, **kwargs: Any) -> None:
        super().__init__(manager=manager, **kwargs)  # type: ignore[call-arg]  # a pydantic field

    def get_tools(self) -> list[BaseTool]:
        tools = SkytaleTools(self.manager)
        return [_structured_tool(tools, spec) for spec in TOOL_SPECS]


def _structured_tool(tools: SkytaleTools, spec: ToolSpec) -> StructuredTool:
    def run(**arguments: Any) -> tuple[str, dict[str, Any]]:
        try:
            result = tools.call(spec.name, arguments)
        except ToolError as error:
            raise ToolException(str(error)) from error
        return json.dumps(result, ensure_ascii=False), result

    async def run_async(**arguments: Any) -> tuple[str, dict[str, Any]]:
        return await asyncio.to_thread(run, **arguments)

    return StructuredTool(
        name=spec.name,
        description=spec.description,
        args_schema=dict(spec.input_schema),
        func=run,
        coroutine=run_async,
        response_format="content_and_artifact",
        handle_tool_error=True,
    )

"""`SkytaleToolkit`: Skytale's tools as ``langchain_core`` tools, driven by LangGraph's prebuilt ReAct agent over a
real ``skytale dev``. The model is langchain_core's own fake chat model playing a script of tool calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.prebuilt import create_react_agent
from langgraph.warnings import LangGraphDeprecatedSinceV10

from conftest import DevStack
from skytale_sdk import SkytaleChannelManager
from skytale_sdk.integrations.langchain import SkytaleToolkit
from skytale_sdk.tools import TOOL_SPECS
from test_manager import PATIENCE

REPO = Path(__file__).resolve().parent.parent


class ScriptedChatModel(GenericFakeChatModel):
    """The fake chat model, answering with the scripted messages in turn (tool calls included); binding tools
    leaves the script as it is."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self


def tool_call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "args": arguments, "id": f"call-{uuid.uuid4().hex[:8]}", "type": "tool_call"}


def run_agent(tools: list[BaseTool], *turns: list[dict[str, Any]]) -> list[ToolMessage]:
    """Runs a prebuilt ReAct agent whose model makes each turn's tool calls (run concurrently by the agent's tool
    node) and then answers "done"; returns the run's ToolMessages, in the order of the calls."""
    script = [AIMessage(content="", tool_calls=calls) for calls in turns] + [AIMessage(content="done")]
    model = ScriptedChatModel(messages=iter(script))
    with warnings.catch_warnings():
        # Moved to langchain.agents.create_agent, in the langchain package; langgraph's is the same ReAct loop.
        warnings.simplefilter("ignore", LangGraphDeprecatedSinceV10)
        agent = create_react_agent(model, tools)
    state = agent.invoke({"messages": [HumanMessage(content="go")]}, {"recursion_limit": 2 * len(script) + 1})
    assert state["messages"][-1].content == "done"
    results = [message for message in state["messages"] if isinstance(message, ToolMessage)]
    order = {call["id"]: index for index, call in enumerate(call for calls in turns for call in calls)}
    return sorted(results, key=lambda message: order[message.tool_call_id])


def test_the_toolkit_has_every_tool_with_the_shared_schema(dev_env: DevStack) -> None:
    with SkytaleChannelManager("alice") as alice:
        tools = SkytaleToolkit(alice).get_tools()
        assert [tool.name for tool in tools] == [spec.name for spec in TOOL_SPECS]
        for tool, spec in zip(tools, TOOL_SPECS):
            assert tool.description == spec.description
            assert tool.args_schema == spec.input_schema
            # What a chat model's bind_tools sends the model.
            function = convert_to_openai_tool(tool)["function"]
            assert (function["name"], function["parameters"]) == (spec.name, spec.input_schema)


def test_a_react_agent_sends_while_another_agents_receive_returns_it(dev_env: DevStack, channel_name: str) -> None:
    with SkytaleChannelManager("researcher") as researcher, SkytaleChannelManager("writer") as writer:
        researcher_tools = SkytaleToolkit(researcher).get_tools()
        writer_tools = SkytaleToolkit(writer).get_tools()
        created, invited = run_agent(
            researcher_tools,
            [tool_call("create_channel", channel=channel_name)],
            [tool_call("invite", channel=channel_name)],
        )
        assert created.artifact == {"channel": channel_name, "members": ["researcher"]}
        [joined] = run_agent(
            writer_tools, [tool_call("join_with_token", channel=channel_name, token=invited.artifact["token"])]
        )
        assert joined.artifact["members"] == ["researcher", "writer"]

        # The writer's agent waits in its receive tool call while the researcher's agent sends.
        received: list[ToolMessage] = []
        writer_run = threading.Thread(
            target=lambda: received.extend(
                run_agent(writer_tools, [tool_call("receive", channel=channel_name, timeout_seconds=PATIENCE)])
            )
        )
        writer_run.start()
        [sent] = run_agent(researcher_tools, [tool_call("send", channel=channel_name, json={"finding": "MLS", "n": 3})])
        writer_run.join(PATIENCE)
        assert sent.status == "success" and sent.artifact["content_type"] == "application/json"

        [receive_result] = received
        assert receive_result.status == "success"
        [message] = receive_result.artifact["messages"]
        assert (message["sender"], message["json"]) == ("researcher", {"finding": "MLS", "n": 3})
        assert isinstance(message["seq"], int) and isinstance(message["timestamp"], float)
        # The model reads the same result as JSON text.
        assert json.loads(receive_result.content) == receive_result.artifact


def test_bad_input_is_an_error_tool_message_and_the_agent_goes_on(dev_env: DevStack, channel_name: str) -> None:
    with SkytaleChannelManager("owner") as owner, SkytaleChannelManager("latecomer") as latecomer:
        owner.create(channel_name)
        expired = owner.invite(channel_name, ttl=1)
        threading.Event().wait(1.5)  # past the invite's expiry
        results = run_agent(
            SkytaleToolkit(latecomer).get_tools(),
            [
                tool_call("send", channel="myorg/tests/never-created", text="hi"),
                tool_call("create_channel", channel="not a name"),
                tool_call("join_with_token", channel=channel_name, token=expired),
                tool_call("receive", channel=channel_name, timeout_seconds="soon"),
                tool_call("list_channels"),
            ],
        )
        unknown, bad_name, expired_invite, bad_argument, listed = results
        for result in (unknown, bad_name, expired_invite, bad_argument):
            assert result.status == "error"
        assert "unknown channel: myorg/tests/never-created" in unknown.content
        assert "Call list_channels" in unknown.content
        assert "invalid channel name: not a name" in bad_name.content and "e.g. myorg/team/general" in bad_name.content
        assert "invite_expired" in expired_invite.content and "new invite token" in expired_invite.content
        assert "argument 'timeout_seconds' must be a number, got a string" in bad_argument.content
        assert listed.status == "success" and listed.artifact == {"channels": []}


def test_import_without_langchain_names_the_extra() -> None:
    code = "import sys; sys.modules['langchain_core'] = None; import skytale_sdk.integrations.langchain"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode != 0
    assert "pip install '.[langchain]'" in result.stderr


def run_python(arguments: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TMPDIR": str(tmp_path)}
    command = [sys.executable, *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=PATIENCE, env=environment)


def test_the_example_runs(dev_env: DevStack, tmp_path: Path) -> None:
    result = run_python([str(REPO / "examples" / "langgraph_researcher_writer.py")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "writer received from researcher: MLS gives each message forward secrecy" in result.stdout
    assert "writer: Draft: MLS gives each message forward secrecy (RFC 9420)." in result.stdout


def test_the_readme_snippet_runs(dev_env: DevStack, tmp_path: Path) -> None:
    section = (REPO / "README.md").read_text().split("### LangChain / LangGraph\n", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```\n", 1)[0]
    result = run_python(["-c", snippet], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "researcher: Hello from the researcher"


@pytest.mark.parametrize("timeout_seconds", [-1, 61])
def test_out_of_range_arguments_name_the_range(dev_env: DevStack, channel_name: str, timeout_seconds: int) -> None:
    with SkytaleChannelManager("alice") as alice:
        alice.create(channel_name)
        [result] = run_agent(
            SkytaleToolkit(alice).get_tools(),
            [tool_call("receive", channel=channel_name, timeout_seconds=timeout_seconds)],
        )
        assert result.status == "error"
        assert ("at least 0" if timeout_seconds < 0 else "at most 60") in result.content

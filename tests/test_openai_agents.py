"""`skytale_function_tools`: Skytale's tools as OpenAI Agents SDK function tools, run by the SDK's real ``Runner``
over a real ``skytale dev``. The LLM is a custom ``Model`` playing a script of tool calls: no network, no key."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agents import Agent, Model, ModelResponse, Runner, set_tracing_disabled
from agents.items import ToolCallOutputItem
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from conftest import DevStack
from skytale_sdk import SkytaleChannelManager
from skytale_sdk.integrations.openai_agents import ERROR_PREFIX, skytale_function_tools
from skytale_sdk.tools import TOOL_SPECS
from test_manager import PATIENCE

REPO = Path(__file__).resolve().parent.parent
set_tracing_disabled(True)  # the SDK would export traces to OpenAI

Call = tuple[str, dict[str, Any]]


class ScriptedModel(Model):
    """Answers each turn with the next turn's function calls, then with a final "done"; records the tools it was
    offered."""

    def __init__(self, *turns: list[Call]) -> None:
        self.turns = list(turns)
        self.offered_tools: list[Any] = []

    async def get_response(
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any = None,
    ) -> ModelResponse:
        self.offered_tools = tools
        if not self.turns:
            text = ResponseOutputText(type="output_text", text="done", annotations=[])
            final = ResponseOutputMessage(
                id="msg", type="message", role="assistant", status="completed", content=[text]
            )
            return ModelResponse(output=[final], usage=Usage(), response_id=None)
        calls = [
            ResponseFunctionToolCall(
                type="function_call", call_id=f"call-{uuid.uuid4().hex[:8]}", name=name, arguments=json.dumps(arguments)
            )
            for name, arguments in self.turns.pop(0)
        ]
        return ModelResponse(output=list(calls), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the scripted model answers Runner.run only")


async def run_agent(manager: SkytaleChannelManager, *turns: list[Call]) -> list[str]:
    """Runs an agent with the Skytale tools whose model makes each turn's calls; returns the tools' outputs in
    the order of the calls."""
    model = ScriptedModel(*turns)
    agent = Agent(
        name="agent", instructions="Use the Skytale tools.", model=model, tools=skytale_function_tools(manager)
    )
    result = await Runner.run(agent, "go", max_turns=len(turns) + 1)
    assert result.final_output == "done"
    outputs = {
        item.raw_item["call_id"]: item.output for item in result.new_items if isinstance(item, ToolCallOutputItem)
    }
    calls = [item.raw_item for item in result.new_items if item.type == "tool_call_item"]
    return [outputs[call.call_id] for call in calls]


def run(body: Any) -> None:
    asyncio.run(asyncio.wait_for(body, PATIENCE))


def test_the_tools_are_function_tools_with_the_shared_schemas(dev_env: DevStack) -> None:
    with SkytaleChannelManager("alice") as alice:
        tools = skytale_function_tools(alice)
        assert [tool.name for tool in tools] == [spec.name for spec in TOOL_SPECS]
        for tool, spec in zip(tools, TOOL_SPECS):
            assert tool.description == spec.description
            assert tool.params_json_schema == spec.input_schema
            assert tool.strict_json_schema is False

        model = ScriptedModel([("list_channels", {})])
        [output] = asyncio.run(run_with(model, alice))
        assert json.loads(output) == {"channels": []}
        assert [tool.name for tool in model.offered_tools] == [spec.name for spec in TOOL_SPECS]


async def run_with(model: ScriptedModel, manager: SkytaleChannelManager) -> list[str]:
    agent = Agent(name="agent", model=model, tools=skytale_function_tools(manager))
    result = await Runner.run(agent, "go")
    return [item.output for item in result.new_items if isinstance(item, ToolCallOutputItem)]


def test_a_runner_sends_while_another_agents_receive_returns_it(dev_env: DevStack, channel_name: str) -> None:
    async def body() -> None:
        with SkytaleChannelManager("researcher") as researcher, SkytaleChannelManager("writer") as writer:
            created, invited = await run_agent(
                researcher, [("create_channel", {"channel": channel_name})], [("invite", {"channel": channel_name})]
            )
            assert json.loads(created) == {"channel": channel_name, "members": ["researcher"]}
            token = json.loads(invited)["token"]
            [joined] = await run_agent(writer, [("join_with_token", {"channel": channel_name, "token": token})])
            assert json.loads(joined)["members"] == ["researcher", "writer"]

            # The writer's run waits in its receive call while the researcher's run sends.
            receiving = asyncio.ensure_future(
                run_agent(writer, [("receive", {"channel": channel_name, "timeout_seconds": PATIENCE})])
            )
            [sent] = await run_agent(researcher, [("send", {"channel": channel_name, "text": "MLS, RFC 9420"})])
            assert json.loads(sent)["content_type"] == "text/plain; charset=utf-8"
            [received] = await receiving
            [message] = json.loads(received)["messages"]
            assert (message["sender"], message["text"]) == ("researcher", "MLS, RFC 9420")
            assert isinstance(message["seq"], int) and isinstance(message["timestamp"], float)

    run(body())


def test_bad_input_is_an_error_output_and_the_run_goes_on(dev_env: DevStack, channel_name: str) -> None:
    async def body() -> None:
        with SkytaleChannelManager("owner") as owner, SkytaleChannelManager("latecomer") as latecomer:
            owner.create(channel_name)
            expired = owner.invite(channel_name, ttl=1)
            await asyncio.sleep(1.5)  # past the invite's expiry
            unknown, bad_name, expired_invite, bad_argument, listed = await run_agent(
                latecomer,
                [
                    ("send", {"channel": "myorg/tests/never-created", "json": {"x": 1}}),
                    ("create_channel", {"channel": "not a name"}),
                    ("join_with_token", {"channel": channel_name, "token": expired}),
                    ("invite", {"channel": channel_name, "max_uses": "two"}),
                ],
                [("list_channels", {})],
            )
            for output in (unknown, bad_name, expired_invite, bad_argument):
                assert output.startswith(ERROR_PREFIX)
            assert "unknown channel: myorg/tests/never-created" in unknown and "Call list_channels" in unknown
            assert "invalid channel name: not a name" in bad_name and "e.g. myorg/team/general" in bad_name
            assert "invite_expired" in expired_invite and "new invite token" in expired_invite
            assert "argument 'max_uses' must be an integer, got a string" in bad_argument
            assert json.loads(listed) == {"channels": []}

    run(body())


def test_import_without_openai_agents_names_the_extra() -> None:
    code = "import sys; sys.modules['agents'] = None; import skytale_sdk.integrations.openai_agents"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode != 0
    assert "pip install '.[openai-agents]'" in result.stderr


def test_the_example_runs(dev_env: DevStack, tmp_path: Path) -> None:
    environment = {**os.environ, "TMPDIR": str(tmp_path)}
    command = [sys.executable, str(REPO / "examples" / "openai_agents_researcher_writer.py")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=PATIENCE, env=environment)
    assert result.returncode == 0, result.stderr
    assert "writer received from researcher: MLS gives each message forward secrecy" in result.stdout
    assert "researcher: writer: Draft: MLS gives each message forward secrecy (RFC 9420)." in result.stdout


def test_the_readme_snippet_compiles_and_its_imports_exist() -> None:
    # Running it needs an OpenAI key; the example above runs the same wiring with a scripted model.
    section = (REPO / "README.md").read_text().split("### OpenAI Agents SDK\n", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```\n", 1)[0]
    compile(snippet, "README.md", "exec")
    imports = "\n".join(line for line in snippet.splitlines() if line.startswith(("from ", "import ")))
    exec(imports, {})

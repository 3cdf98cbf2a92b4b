"""Two OpenAI Agents SDK agents, a researcher and a writer, coordinate over one end-to-end encrypted channel
through Skytale's function tools (``skytale_function_tools``).

Start ``skytale dev --relay-port 0 --api-port 0`` in one shell, paste the three ``export SKYTALE_...`` lines it
prints into another, and run ``python examples/openai_agents_researcher_writer.py`` there (needs ``pip install
'.[openai-agents]'`` in the Skytale source tree). Each run uses a fresh channel and fresh agent directories, so it
can be repeated.

No OpenAI key needed: each agent's model is ``ScriptedModel``, a ``Model`` that plays the tool calls an LLM would
choose. To use a real model, leave ``model=`` out of ``Agent(...)`` (or name one, ``model="gpt-4o-mini"``), set
``OPENAI_API_KEY`` and drop ``set_tracing_disabled``: the model sees the same tools, descriptions and schemas.
"""

import asyncio
import json
import tempfile
import uuid
from typing import Any, Callable, Union

from agents import Agent, Model, ModelResponse, Runner, set_tracing_disabled
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from skytale_sdk import SkytaleChannelManager
from skytale_sdk.integrations.openai_agents import skytale_function_tools

set_tracing_disabled(True)  # no traces sent to OpenAI: there is no key
RUN_DIR = tempfile.mkdtemp(prefix="skytale-agents-example-")  # this run's agents' data_dirs
CHANNEL = f"myorg/research/report-{uuid.uuid4().hex[:8]}"

#: A model turn: tool calls, a final answer, or a function of the previous turn's tool outputs giving either.
Turn = Union[list[tuple[str, dict[str, Any]]], str]
Step = Union[Turn, Callable[[list[Any]], Turn]]


class ScriptedModel(Model):
    """Stands in for an LLM: answers each turn with the next step of its script."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        step = self.steps.pop(0)
        turn = step(previous_outputs(input)) if callable(step) else step
        if isinstance(turn, str):
            text = ResponseOutputText(type="output_text", text=turn, annotations=[])
            answer = ResponseOutputMessage(
                id="answer", type="message", role="assistant", status="completed", content=[text]
            )
            return ModelResponse(output=[answer], usage=Usage(), response_id=None)
        calls = [
            ResponseFunctionToolCall(
                type="function_call", call_id=uuid.uuid4().hex, name=name, arguments=json.dumps(args)
            )
            for name, args in turn
        ]
        return ModelResponse(output=list(calls), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("this scripted model answers Runner.run only")


def previous_outputs(items: Any) -> list[Any]:
    """The outputs of the tool calls of the previous turn, as JSON (or the error text)."""
    outputs: list[Any] = []
    for item in reversed(items if isinstance(items, list) else []):
        if not (isinstance(item, dict) and item.get("type") == "function_call_output"):
            break
        try:
            outputs.insert(0, json.loads(item["output"]))
        except ValueError:
            outputs.insert(0, item["output"])
    return outputs


async def run(manager: SkytaleChannelManager, task: str, *steps: Step) -> str:
    """One agent run with the Skytale tools; returns its final answer."""
    agent = Agent(name=task, instructions=task, model=ScriptedModel(*steps), tools=skytale_function_tools(manager))
    return str((await Runner.run(agent, task)).final_output)


def draft_from(outputs: list[Any]) -> Turn:
    """The writer's second turn: a draft from each finding it received."""
    for message in outputs[0]["messages"]:
        print(f"writer received from {message['sender']}: {message['json']['claim']}")
    return [
        ("send", {"channel": CHANNEL, "text": f"Draft: {m['json']['claim']} ({m['json']['source']})."})
        for m in outputs[0]["messages"]
    ]


async def main() -> None:
    researcher = SkytaleChannelManager("researcher", data_dir=f"{RUN_DIR}/researcher")
    writer = SkytaleChannelManager("writer", data_dir=f"{RUN_DIR}/writer")
    with researcher, writer:
        # The researcher opens the channel and creates an invite; the token reaches the writer in its task.
        token = await run(
            researcher,
            f"Open {CHANNEL} and invite the writer.",
            [("create_channel", {"channel": CHANNEL})],
            [("invite", {"channel": CHANNEL})],
            lambda outputs: outputs[0]["token"],
        )
        await run(
            writer,
            f"Join {CHANNEL} with the invite token {token}.",
            [("join_with_token", {"channel": CHANNEL, "token": token})],
            "Joined.",
        )

        # The writer waits for findings (its receive tool call) while the researcher shares one.
        writing = asyncio.ensure_future(
            run(
                writer,
                "Turn the researcher's findings into a draft.",
                [("receive", {"channel": CHANNEL, "timeout_seconds": 30})],
                draft_from,
                "Draft sent.",
            )
        )
        finding = {"claim": "MLS gives each message forward secrecy", "source": "RFC 9420"}
        await run(researcher, "Share your finding.", [("send", {"channel": CHANNEL, "json": finding})], "Sent.")
        await writing

        answer = await run(
            researcher,
            "Read the writer's draft.",
            [("receive_latest", {"channel": CHANNEL, "timeout_seconds": 30})],
            lambda outputs: f"{outputs[0]['message']['sender']}: {outputs[0]['message']['text']}",
        )
        print(f"researcher: {answer}")


asyncio.run(main())

"""Two LangGraph agents, a researcher and a writer, coordinate over one end-to-end encrypted channel through
Skytale's LangChain tools (``SkytaleToolkit``).

Start ``skytale dev --relay-port 0 --api-port 0`` in one shell, paste the three ``export SKYTALE_...`` lines it
prints into another, and run ``python examples/langgraph_researcher_writer.py`` there (needs ``pip install
'.[langchain]'`` in the Skytale source tree). Each run uses a fresh channel and fresh agent directories, so it
can be repeated.

No LLM key needed: each agent's model is ``ScriptedChatModel``, which plays the tool calls a model would choose.
To use a real model, pass any LangChain chat model that supports tool calling instead, e.g.
``create_react_agent(ChatOpenAI(model="gpt-4o-mini"), tools, prompt=...)`` (``pip install langchain-openai``): it
sees the same tools, descriptions and schemas.
"""

import json
import tempfile
import threading
import uuid
import warnings
from typing import Any, Callable, Union, cast

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.prebuilt import create_react_agent
from langgraph.warnings import LangGraphDeprecatedSinceV10

from skytale_sdk import SkytaleChannelManager
from skytale_sdk.integrations.langchain import SkytaleToolkit

# create_react_agent now also lives in the langchain package (langchain.agents.create_agent); this example needs
# only langgraph.
warnings.simplefilter("ignore", LangGraphDeprecatedSinceV10)
RUN_DIR = tempfile.mkdtemp(prefix="skytale-langgraph-example-")  # this run's agents' data_dirs
CHANNEL = f"myorg/research/report-{uuid.uuid4().hex[:8]}"

#: A scripted model turn: a message, or a function of the tool results the previous turn got.
Step = Union[AIMessage, Callable[[list[dict[str, Any]]], AIMessage]]


class ScriptedChatModel(BaseChatModel):
    """Stands in for an LLM: answers each turn with the next step of its script."""

    steps: list[Any]  # of Step (pydantic would try to validate a function as an AIMessage)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        step = self.steps.pop(0)
        results: list[Any] = []
        for message in reversed(messages):  # the tool results of the previous turn
            if not isinstance(message, ToolMessage):
                break
            text = message.text
            results.insert(0, json.loads(text) if message.status == "success" else text)
        reply = cast(AIMessage, step(results) if callable(step) else step)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def bind_tools(self, tools: Any, **kwargs: Any) -> "ScriptedChatModel":
        return self

    @property
    def _llm_type(self) -> str:
        return "scripted"


def calls(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
    """A turn that calls tools."""
    tool_calls = [{"name": name, "args": args, "id": f"call-{uuid.uuid4().hex[:8]}"} for name, args in calls]
    return AIMessage(content="", tool_calls=tool_calls)


def agent(manager: SkytaleChannelManager, *steps: Step) -> Any:
    return create_react_agent(ScriptedChatModel(steps=list(steps)), SkytaleToolkit(manager).get_tools())


def run(agent: Any, task: str) -> str:
    """Runs one task; returns the agent's final answer."""
    answer: BaseMessage = agent.invoke({"messages": [HumanMessage(content=task)]})["messages"][-1]
    return answer.text


def draft_from(results: list[dict[str, Any]]) -> AIMessage:
    """The writer's second turn: a draft from each finding it received."""
    for message in results[0]["messages"]:
        print(f"writer received from {message['sender']}: {message['json']['claim']}")
    drafts = [f"Draft: {m['json']['claim']} ({m['json']['source']})." for m in results[0]["messages"]]
    return calls(*(("send", {"channel": CHANNEL, "text": draft}) for draft in drafts))


def main() -> None:
    researcher_agent = SkytaleChannelManager("researcher", data_dir=f"{RUN_DIR}/researcher")
    writer_agent = SkytaleChannelManager("writer", data_dir=f"{RUN_DIR}/writer")
    with researcher_agent, writer_agent:
        # The researcher opens the channel and creates an invite; the token reaches the writer in its task.
        opener = agent(
            researcher_agent,
            calls(("create_channel", {"channel": CHANNEL})),
            calls(("invite", {"channel": CHANNEL})),  # a turn of its own: the calls of one turn run concurrently
            lambda results: AIMessage(content=results[0]["token"]),
        )
        token = run(opener, f"Open {CHANNEL} and invite the writer.")
        joiner = agent(
            writer_agent,
            calls(("join_with_token", {"channel": CHANNEL, "token": token})),
            AIMessage(content="Joined."),
        )
        run(joiner, f"Join {CHANNEL} with the invite token {token}.")

        # The writer waits for findings (its receive tool call) while the researcher shares one.
        writer = agent(
            writer_agent,
            calls(("receive", {"channel": CHANNEL, "timeout_seconds": 30})),
            draft_from,
            AIMessage(content="Draft sent."),
        )
        writing = threading.Thread(target=run, args=(writer, "Turn the researcher's findings into a draft."))
        writing.start()
        finding = {"claim": "MLS gives each message forward secrecy", "source": "RFC 9420"}
        sharer = agent(
            researcher_agent, calls(("send", {"channel": CHANNEL, "json": finding})), AIMessage(content="Sent.")
        )
        run(sharer, "Share your finding with the writer.")
        writing.join()

        reader = agent(
            researcher_agent,
            calls(("receive_latest", {"channel": CHANNEL, "timeout_seconds": 30})),
            lambda results: AIMessage(content=f"{results[0]['message']['sender']}: {results[0]['message']['text']}"),
        )
        print(run(reader, "Read the writer's draft."))


main()

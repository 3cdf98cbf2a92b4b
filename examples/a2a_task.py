"""An a2a-sdk client gives an a2a-sdk agent a task, and follows it, over an end-to-end encrypted channel.

The server is the SDK's own ``DefaultRequestHandler`` (task store, event queue, ``AgentExecutor``) answering
requests read from the channel by ``SkytaleA2AServer``; the client is the SDK's own ``Client``, built by
``create_client`` with a transport that sends its requests over the channel instead of HTTP.

Start ``skytale dev --relay-port 0 --api-port 0`` in one shell, paste the three ``export SKYTALE_...`` lines it
prints into another, and run ``python examples/a2a_task.py`` there (needs ``pip install '.[a2a]'``).
Each run uses fresh agents and a fresh context, so it can be repeated against the same ``skytale dev``.
"""

import asyncio
import tempfile
import uuid

from a2a.helpers.proto_helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentSkill,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    TaskState,
)

from skytale_sdk import SkytaleChannelManager
from skytale_sdk.integrations.a2a import SkytaleA2AAdapter, SkytaleA2AServer, create_client

RUN_DIR = tempfile.mkdtemp(prefix="skytale-a2a-task-example-")  # this run's agents' data_dirs
CONTEXT = f"shouting-{uuid.uuid4().hex[:8]}"


class ShoutingAgent(AgentExecutor):
    """Opens a task, works on it, and returns the user's text upper-cased as an artifact."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None  # a request always carries the user's message
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        await updater.add_artifact([Part(text=context.get_user_input().upper())], name="shout")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError("too fast to cancel")


async def main() -> None:
    server_agent = SkytaleChannelManager(identity=b"shouter", data_dir=f"{RUN_DIR}/shouter")
    client_agent = SkytaleChannelManager(identity=b"asker", data_dir=f"{RUN_DIR}/asker")
    server = SkytaleA2AAdapter(server_agent, agent_id="shouter", org="myorg")
    client = SkytaleA2AAdapter(client_agent, agent_id="asker", org="myorg")
    channel = server.create_context(CONTEXT)
    client.join_context(CONTEXT, server_agent.add_member(channel, client_agent.key_package()))

    card = AgentCard(
        name="shouter",
        description="Upper-cases what it is told",
        version="1.0.0",
        supported_interfaces=[server.agent_interface(CONTEXT)],  # skytale://myorg/a2a/<context>
        capabilities=AgentCapabilities(streaming=True, extensions=[server.agent_card_extension()]),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="shout", name="shout", description="upper-cases text", tags=["text"])],
    )
    handler = DefaultRequestHandler(agent_executor=ShoutingAgent(), task_store=InMemoryTaskStore(), agent_card=card)

    async with SkytaleA2AServer(server, CONTEXT, handler), create_client(client, CONTEXT, card) as a2a_client:
        question = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text="hello over mls")])
        task_id = ""
        async for event in a2a_client.send_message(SendMessageRequest(message=question)):
            kind = event.WhichOneof("payload")
            if kind == "task":
                task_id = event.task.id
            if kind == "status_update":
                print("status:", TaskState.Name(event.status_update.status.state))
            if kind == "artifact_update":
                print("artifact:", event.artifact_update.artifact.parts[0].text)
        task = await a2a_client.get_task(GetTaskRequest(id=task_id))
        print("task", task.id, TaskState.Name(task.status.state))

    server_agent.close()
    client_agent.close()


if __name__ == "__main__":
    asyncio.run(main())

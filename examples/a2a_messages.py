"""Two agents exchange A2A messages (the a2a-sdk's own ``Message`` type) over an end-to-end encrypted channel.

Start ``skytale dev --relay-port 0 --api-port 0`` in one shell, paste the three ``export SKYTALE_...`` lines it
prints into another, and run ``python examples/a2a_messages.py`` there (needs ``pip install '.[a2a]'``).
Each run uses fresh agents and a fresh context, so it can be repeated against the same ``skytale dev``.
"""

import tempfile
import uuid

from skytale_sdk import SkytaleChannelManager
from skytale_sdk.integrations.a2a import SkytaleA2AAdapter

RUN_DIR = tempfile.mkdtemp(prefix="skytale-a2a-example-")  # this run's agents' data_dirs
context = f"research-{uuid.uuid4().hex[:8]}"

alice = SkytaleChannelManager(identity=b"alice", data_dir=f"{RUN_DIR}/alice")
bob = SkytaleChannelManager(identity=b"bob", data_dir=f"{RUN_DIR}/bob")
# org: the org of the API key that creates contexts (`skytale dev` uses "myorg").
researcher = SkytaleA2AAdapter(alice, agent_id="researcher", org="myorg")
writer = SkytaleA2AAdapter(bob, agent_id="writer", org="myorg")

channel = researcher.create_context(context)  # the channel myorg/a2a/<context>
writer.join_context(context, alice.add_member(channel, bob.key_package()))

researcher.send_message(context, [{"type": "text", "text": "Hello"}, {"type": "data", "data": {"sources": 3}}])
for msg in writer.receive_messages(context):
    print(f"{msg['agent_id']} -> writer: {msg['parts']}")

alice.close()
bob.close()

"""The SDK reference's "Full example": two agents, an invite, end-to-end encrypted messages.

Run it with ``scripts/quickstart.sh``, or against your own ``skytale dev``: start
``skytale dev --relay-port 0 --api-port 0`` in one shell, paste the three ``export SKYTALE_...`` lines it prints
into another, and run ``python examples/full_example.py`` there. Once created, ``myorg/team/general`` belongs to
that run's MLS group, so a second run needs a fresh ``skytale dev`` (quickstart.sh starts one each time).

Only the setup differs from the reference: the managers read ``SKYTALE_RELAY``, ``SKYTALE_API_URL`` and
``SKYTALE_API_KEY`` (printed by ``skytale dev``) from the environment, and keep their default data_dirs in a fresh
temp directory, so every run starts with new agents.
"""

import tempfile

from skytale_sdk import SkytaleChannelManager

# Setup: the managers' default data_dirs (<temp dir>/skytale-<hex(identity)>) go into a directory of this run.
tempfile.tempdir = tempfile.mkdtemp(prefix="skytale-full-example-")

# Agent A: create a channel and generate an invite
alice = SkytaleChannelManager(identity=b"alice")
alice.create("myorg/team/general")
token = alice.invite("myorg/team/general")

# Agent B: join with the invite token
bob = SkytaleChannelManager(identity=b"bob")
bob.join_with_token("myorg/team/general", token)

# Send and receive — end-to-end encrypted
alice.send("myorg/team/general", "Hello from Alice!")
alice.send("myorg/team/general", "Another message!")

msgs = bob.receive("myorg/team/general")
for msg in msgs:
    print(f"Bob received: {msg}")

# Clean up
alice.close()
bob.close()

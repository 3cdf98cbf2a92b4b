"""The SDK reference's "Full example": two agents, an invite, end-to-end encrypted messages.

Run it with ``scripts/quickstart.sh``, or against your own ``skytale dev``: start
``skytale dev --relay-port 0 --api-port 0`` in one shell, paste the three ``export SKYTALE_...`` lines it prints
into another, and run ``python examples/full_example.py`` there. The managers read ``SKYTALE_RELAY``,
``SKYTALE_API_URL`` and ``SKYTALE_API_KEY`` from the environment.

Run it again against the same stack and it does the same: the agents' data_dirs (by default
``~/.skytale/<hex(identity)>``) hold the channel, so ``create`` and ``join_with_token`` are no-ops and Bob
receives the two new messages. Against a new stack (another ``skytale dev --dir``), the old data_dirs hold a
channel the new relay never had, and the managers say so and which directory to remove; quickstart.sh gives each
run's agents a home of their own.
"""

from skytale_sdk import SkytaleChannelManager

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

"""The SDK reference's "Full example", verbatim apart from setup, against a real ``skytale dev``."""

from __future__ import annotations

from conftest import DevStack
from skytale_sdk import SkytaleChannelManager


def test_full_example(dev_env: DevStack) -> None:
    # Setup (dev_env): SKYTALE_RELAY, SKYTALE_API_URL and SKYTALE_API_KEY come from `skytale dev`; the managers'
    # default data_dirs land in this test's temp dir. Everything below is the reference's code, plus the record
    # of what Bob received.
    received = []

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
        received.append(msg)

    # Clean up
    alice.close()
    bob.close()

    assert received == ["Hello from Alice!", "Another message!"]
    assert token.startswith("skt_inv_")

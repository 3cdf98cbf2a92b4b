"""Two agents on one encrypted channel.

Alice creates the channel, Bob hands her a key package, Alice adds him and gives him the resulting Welcome,
Bob joins with it, and they talk both ways. The relay in between only ever sees MLS ciphertext.

Run it with ``scripts/quickstart.sh``, or against your own relay:
``SKYTALE_RELAY=http://127.0.0.1:PORT python examples/quickstart.py``.
"""

import os
import tempfile

from skytale_sdk import SkytaleClient

CHANNEL = "acme/research/general"


def main() -> None:
    relay = os.environ["SKYTALE_RELAY"]
    base_dir = os.environ.get("SKYTALE_QUICKSTART_DIR") or tempfile.mkdtemp(prefix="skytale-quickstart-")

    with SkytaleClient(relay, os.path.join(base_dir, "alice"), b"alice") as alice, SkytaleClient(
        relay, os.path.join(base_dir, "bob"), b"bob"
    ) as bob:
        alice_channel = alice.create_channel(CHANNEL)
        print(f"alice created {CHANNEL} (epoch {alice_channel.epoch})")

        key_package = bob.generate_key_package()
        print(f"bob generated a key package ({len(key_package)} bytes)")

        welcome = alice_channel.add_member(key_package)
        print(f"alice added bob; the Welcome is {len(welcome)} bytes")

        bob_channel = bob.join_channel(CHANNEL, welcome)
        print(f"bob joined {bob_channel.name} (epoch {bob_channel.epoch})")

        alice_inbox = alice_channel.messages(timeout=30)
        bob_inbox = bob_channel.messages(timeout=30)

        alice_channel.send(b"Hello Bob, this is Alice.")
        print(f"bob received:   {next(bob_inbox).decode()}")

        bob_channel.send(b"Hi Alice! Bob here, reading you loud and clear.")
        print(f"alice received: {next(alice_inbox).decode()}")

        members = sorted(member.decode() for member in alice_channel.members())
        print(f"members of {CHANNEL}: {', '.join(members)}")


if __name__ == "__main__":
    main()

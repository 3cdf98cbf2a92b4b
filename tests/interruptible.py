"""A program blocked in one SDK call, for the Ctrl-C tests: ``python interruptible.py CALL [ENDPOINT]``.

It sets up (against the ``skytale dev`` in its environment, or the relay at ENDPOINT), prints ``ready``, waits for
a line on stdin (the test breaks the relay or the API meanwhile, if the call needs it), prints ``blocking`` and
makes the call, which would block for a minute. On KeyboardInterrupt it prints ``interrupted`` and exits 0.
"""

from __future__ import annotations

import sys
import tempfile
import uuid

from skytale_sdk import SkytaleChannelManager, SkytaleClient


def main() -> None:
    call = sys.argv[1]
    channel_name = f"myorg/interrupt/{call}-{uuid.uuid4().hex[:8]}"
    tempfile.tempdir = tempfile.mkdtemp(prefix="skytale-interruptible-")
    if call == "send":
        client = SkytaleClient(sys.argv[2], tempfile.mkdtemp(), "alice")
        channel = client.create_channel(channel_name)
        blocking = lambda: channel.send(b"during the outage")  # noqa: E731
    elif call == "messages":
        client = SkytaleClient(sys.argv[2], tempfile.mkdtemp(), "alice")
        channel = client.create_channel(channel_name)
        blocking = lambda: next(channel.messages())  # noqa: E731
    elif call == "join_with_token":
        # Nobody admits joiners once the owner is closed: the join waits for its whole timeout.
        with SkytaleChannelManager("owner") as owner:
            owner.create(channel_name)
            token = owner.invite(channel_name)
        joiner = SkytaleChannelManager("joiner")
        blocking = lambda: joiner.join_with_token(channel_name, token, timeout=120)  # noqa: E731
    else:
        manager = SkytaleChannelManager("alice")
        manager.create(channel_name)
        calls = {
            "receive": lambda: manager.receive(channel_name, timeout=120),
            "invite": lambda: manager.invite(channel_name),
        }
        blocking = calls[call]
    print("ready", flush=True)
    sys.stdin.readline()
    print("blocking", flush=True)
    try:
        blocking()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return
    print("returned", flush=True)


if __name__ == "__main__":
    main()

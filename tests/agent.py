"""A member running in its own process, for the tests that kill a client.

Usage: ``python agent.py ENDPOINT DATA_DIR IDENTITY CHANNEL {join|resume}``

``join``: prints ``key-package <hex>``, reads ``<hex welcome>`` from stdin, joins. ``resume``: reopens the channel
from DATA_DIR. Then prints ``ready`` and one ``message <hex payload>`` line per received message, flushing each
line, so the test sees exactly what this process had consumed when it was killed.
"""

import sys

from skytale_sdk import SkytaleClient


def main() -> None:
    endpoint, data_dir, identity, channel_name, mode = sys.argv[1:6]
    client = SkytaleClient(endpoint, data_dir, identity.encode())
    if mode == "join":
        print("key-package", client.generate_key_package().hex(), flush=True)
        welcome = bytes.fromhex(sys.stdin.readline().strip())
        channel = client.join_channel(channel_name, welcome)
    else:
        channel = client.open_channel(channel_name)
    print("ready", flush=True)
    for payload in channel.messages():
        print("message", payload.hex(), flush=True)


if __name__ == "__main__":
    main()

"""A consumer slower than its producer still gets every message: backpressure, never loss (docs/relay.md, "Memory
and backpressure")."""

from __future__ import annotations

import threading
import time

from channels import form_channel, inbox, payloads

CHANNEL = "acme/team/general"


def test_slow_consumer_receives_a_whole_burst(make_client):
    alice_channel, bob_channel = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    total = 10_000
    sent = payloads("burst", total)
    sender = threading.Thread(target=lambda: [alice_channel.send(p) for p in sent])
    sender.start()
    received = []
    for payload in inbox(bob_channel):
        time.sleep(0.001)  # a consumer slower than the producer
        received.append(payload)
        if len(received) == total:
            break
    sender.join()
    assert received == sent

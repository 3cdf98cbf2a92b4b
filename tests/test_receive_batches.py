"""``MessageIterator.next_batch`` and ``Channel.start_sync`` against a real relay."""

from __future__ import annotations

import pytest

from channels import RECEIVE_TIMEOUT, form_channel, payloads

CHANNEL = "acme/team/batches"


def test_next_batch_takes_what_is_waiting_in_order_up_to_max(make_client) -> None:
    alice, bob = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    sent = payloads("alice", 50)
    alice.send_many(sent)
    assert bob.sync(RECEIVE_TIMEOUT)
    incoming = bob.messages(with_meta=True, timeout=RECEIVE_TIMEOUT)
    first = incoming.next_batch(max=20)
    # Everything was in the inbox before the call, so the batch is full.
    assert [m.payload for m in first] == sent[:20]
    assert [m.seq for m in first] == sorted(m.seq for m in first)
    received: list[bytes] = [m.payload for m in first]
    while len(received) < len(sent):
        received += [m.payload for m in incoming.next_batch(max=20)]
    assert received == sent
    bob.close()
    assert incoming.next_batch() == []


def test_a_started_sync_covers_what_was_stored_before_it(make_client) -> None:
    alice, bob = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    alice.send_many(payloads("alice", 30))
    request = bob.start_sync()
    assert request.wait(RECEIVE_TIMEOUT)
    # Everything the relay held when the request started is in bob's inbox now: nothing is left to wait for.
    assert bob.delivered_seq > 0
    incoming = bob.messages(timeout=RECEIVE_TIMEOUT)
    assert incoming.next_batch(max=100) == payloads("alice", 30)
    with pytest.raises(RuntimeError, match="already waited for"):
        request.wait(1.0)

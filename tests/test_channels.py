"""Channel membership and message flow between real clients through a real relay."""

from __future__ import annotations

import threading
import time

from channels import form_channel, inbox, meta_inbox, payloads, take, wait_until

CHANNEL = "acme/team/general"


def test_two_members_exchange_messages_both_ways(make_client):
    alice, bob = make_client("alice"), make_client("bob")
    alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])

    alice_channel.send(b"hello bob")
    assert take(inbox(bob_channel), 1) == [b"hello bob"]

    bob_channel.send(b"hello alice")
    assert take(inbox(alice_channel), 1) == [b"hello alice"]

    assert sorted(alice_channel.members()) == [b"alice", b"bob"]
    assert sorted(bob_channel.members()) == [b"alice", b"bob"]
    assert alice_channel.epoch == bob_channel.epoch
    assert bob_channel.name == CHANNEL


def test_messages_arrive_in_send_order(make_client):
    alice_channel, bob_channel = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    sent = payloads("alice", 200)
    for payload in sent:
        alice_channel.send(payload)
    assert take(inbox(bob_channel), len(sent)) == sent


def test_a_member_does_not_receive_its_own_messages(make_client):
    alice_channel, bob_channel = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    alice_channel.send(b"from alice")
    assert take(inbox(bob_channel), 1) == [b"from alice"]
    bob_channel.send(b"from bob")
    # Alice's own message has the lower sequence number: had it been delivered to her, it would come first.
    assert take(inbox(alice_channel), 1) == [b"from bob"]


def test_metadata_identifies_sender_sequence_epoch_and_storage_time(make_client):
    alice_channel, bob_channel = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    before = time.time()
    alice_channel.send(b"one")
    alice_channel.send(b"two")
    first, second = take(meta_inbox(bob_channel), 2)
    # The relay's clock is this machine's: both were stored between the first send and their arrival.
    assert before - 0.001 <= first.timestamp <= second.timestamp <= time.time()
    assert (first.payload, second.payload) == (b"one", b"two")
    assert first.sender == second.sender == b"alice"
    assert second.seq == first.seq + 1
    assert first.epoch == second.epoch == alice_channel.epoch
    assert bytes(first) == b"one"


def test_three_members_see_one_total_order(make_client):
    names = ["alice", "bob", "carol"]
    alice_channel, bob_channel, carol_channel = form_channel(CHANNEL, [make_client(n) for n in names])
    alice_sent, bob_sent = payloads("alice", 50), payloads("bob", 50)

    # Both send at once, so the relay interleaves them; every member must see the same interleaving.
    senders = [
        threading.Thread(target=lambda: [alice_channel.send(p) for p in alice_sent]),
        threading.Thread(target=lambda: [bob_channel.send(p) for p in bob_sent]),
    ]
    for sender in senders:
        sender.start()
    carol_seen = take(meta_inbox(carol_channel), 100)
    alice_seen = take(meta_inbox(alice_channel), 50)
    bob_seen = take(meta_inbox(bob_channel), 50)
    for sender in senders:
        sender.join()

    carol_seqs = [m.seq for m in carol_seen]
    assert carol_seqs == sorted(carol_seqs) and len(set(carol_seqs)) == 100
    assert [m.payload for m in carol_seen if m.sender == b"alice"] == alice_sent
    assert [m.payload for m in carol_seen if m.sender == b"bob"] == bob_sent
    # What alice saw (bob's messages) and bob saw (alice's) carry the same sequence numbers carol saw.
    carol_order = {m.payload: m.seq for m in carol_seen}
    assert [(m.payload, m.seq) for m in alice_seen] == [(m.payload, carol_order[m.payload]) for m in alice_seen]
    assert [(m.payload, m.seq) for m in bob_seen] == [(m.payload, carol_order[m.payload]) for m in bob_seen]
    assert {m.payload for m in alice_seen} == set(bob_sent)
    assert {m.payload for m in bob_seen} == set(alice_sent)


def test_member_added_while_others_send_receives_everything_from_its_epoch(make_client):
    alice, bob, carol = make_client("alice"), make_client("bob"), make_client("carol")
    alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])
    total = 300
    sent = payloads("bob", total)
    bob_sending = threading.Thread(target=lambda: [bob_channel.send(p) for p in sent])

    alice_inbox = meta_inbox(alice_channel)
    bob_sending.start()
    alice_seen = take(alice_inbox, 50)
    welcome = alice_channel.add_member(carol.generate_key_package())
    carol_channel = carol.join_channel(CHANNEL, welcome)
    join_epoch = carol_channel.epoch
    alice_seen += take(alice_inbox, total - 50)
    bob_sending.join()
    bob_channel.send(b"last")
    alice_seen += take(alice_inbox, 1)

    # Bob's sends that raced the add were re-sent at the new epoch by his client, never lost.
    assert [m.payload for m in alice_seen] == sent + [b"last"]
    expected_for_carol = [(m.payload, m.seq) for m in alice_seen if m.epoch >= join_epoch]
    carol_seen = take(meta_inbox(carol_channel), len(expected_for_carol))
    assert [(m.payload, m.seq) for m in carol_seen] == expected_for_carol
    assert expected_for_carol[-1][0] == b"last"


def test_rotate_key_moves_everyone_to_a_new_epoch(make_client):
    alice_channel, bob_channel = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    before = alice_channel.epoch
    bob_channel.rotate_key()
    assert bob_channel.epoch == before + 1

    bob_channel.send(b"after rotation")
    received = take(meta_inbox(alice_channel), 1)[0]
    assert received.payload == b"after rotation"
    assert received.epoch == before + 1
    assert alice_channel.epoch == before + 1


def test_removed_member_iterator_ends_with_channel_error_and_others_continue(make_client):
    from skytale_sdk import ChannelError

    names = ["alice", "bob", "carol"]
    alice_channel, bob_channel, carol_channel = form_channel(CHANNEL, [make_client(n) for n in names])
    before = alice_channel.epoch

    alice_channel.remove_member(b"bob")
    assert alice_channel.epoch == before + 1
    assert sorted(alice_channel.members()) == [b"alice", b"carol"]

    bob_inbox = inbox(bob_channel)
    try:
        next(bob_inbox)
        raise AssertionError("a removed member must not receive anything")
    except ChannelError as error:
        assert "removed" in str(error)

    alice_channel.send(b"without bob")
    received = take(meta_inbox(carol_channel), 1)[0]
    assert (received.payload, received.epoch) == (b"without bob", before + 1)
    carol_channel.send(b"still here")
    assert take(inbox(alice_channel), 1) == [b"still here"]


def test_concurrent_adds_from_two_members_converge(make_client):
    alice, bob, carol, dave = (make_client(n) for n in ["alice", "bob", "carol", "dave"])
    alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])
    carol_kp, dave_kp = carol.generate_key_package(), dave.generate_key_package()

    welcomes = {}
    barrier = threading.Barrier(2)

    def add(channel, name, key_package):
        barrier.wait()
        welcomes[name] = channel.add_member(key_package)

    adders = [
        threading.Thread(target=add, args=(alice_channel, "carol", carol_kp)),
        threading.Thread(target=add, args=(bob_channel, "dave", dave_kp)),
    ]
    for adder in adders:
        adder.start()
    for adder in adders:
        adder.join()
    assert set(welcomes) == {"carol", "dave"}

    carol_channel = carol.join_channel(CHANNEL, welcomes["carol"])
    dave_channel = dave.join_channel(CHANNEL, welcomes["dave"])
    channels = {"alice": alice_channel, "bob": bob_channel, "carol": carol_channel, "dave": dave_channel}

    # Everyone sends one message; everyone reads the other three, which also brings all of them to the last epoch.
    for name, channel in channels.items():
        channel.send(f"from {name}".encode())
    for name, channel in channels.items():
        expected = {f"from {other}".encode() for other in channels if other != name}
        assert set(take(inbox(channel), 3)) == expected
    epochs = {channel.epoch for channel in channels.values()}
    assert len(epochs) == 1
    assert sorted(alice_channel.members()) == [b"alice", b"bob", b"carol", b"dave"]


def test_leaving_member_iterator_ends_and_the_others_commit_its_removal(make_client):
    alice, bob, carol = make_client("alice"), make_client("bob"), make_client("carol")
    alice_channel, bob_channel, carol_channel = form_channel(CHANNEL, [alice, bob, carol])

    carol_inbox = inbox(carol_channel)
    carol_channel.leave()
    assert list(carol_inbox) == []
    assert carol.channels() == []

    bob_channel.send(b"after carol left")
    assert take(inbox(alice_channel), 1) == [b"after carol left"]
    # The removal is committed in the background by a remaining member, so it may land after Bob's message.
    wait_until(lambda: sorted(alice_channel.members()) == [b"alice", b"bob"])
    wait_until(lambda: alice_channel.epoch == bob_channel.epoch)
    assert sorted(bob_channel.members()) == [b"alice", b"bob"]

"""Bad input gives a typed error with the spec's prefix, and the client stays usable afterwards."""

from __future__ import annotations

import pytest

from channels import form_channel, inbox, take
from skytale_sdk import ChannelError, MlsError, SkytaleError, TransportError

CHANNEL = "acme/team/general"

INVALID_NAMES = [
    pytest.param("bad-name", id="one-component"),
    pytest.param("acme/team", id="two-components"),
    pytest.param("acme/team/general/extra", id="four-components"),
    pytest.param("", id="empty"),
    pytest.param("acme//general", id="empty-component"),
    pytest.param("/team/general", id="empty-first-component"),
    pytest.param("acme/team/", id="empty-last-component"),
    pytest.param("acme/te am/general", id="space"),
    pytest.param("acme/team/gen:eral", id="colon"),
    pytest.param("acme/tëam/general", id="non-ascii"),
    pytest.param("a" * 65 + "/team/general", id="component-too-long"),
]


def assert_still_usable(channel, peer_channel, payload=b"still works"):
    channel.send(payload)
    assert take(inbox(peer_channel), 1) == [payload]


@pytest.fixture
def pair(make_client):
    alice, bob = make_client("alice"), make_client("bob")
    alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])
    return alice, alice_channel, bob, bob_channel


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_channel_names_are_rejected_with_the_exact_message(pair, name):
    alice, alice_channel, _, bob_channel = pair
    for operation in (alice.create_channel, alice.open_channel, lambda n: alice.join_channel(n, b"\x00")):
        with pytest.raises(ChannelError) as raised:
            operation(name)
        assert str(raised.value) == f"invalid channel name: {name} (expected org/namespace/service)"
        assert isinstance(raised.value, RuntimeError)
    assert_still_usable(alice_channel, bob_channel)


def test_longest_valid_component_is_accepted(make_client):
    name = "a" * 64 + "/b.c_d-e/F9"
    assert make_client("alice").create_channel(name).name == name


def test_creating_an_existing_channel_is_a_channel_error(pair):
    alice, alice_channel, _, bob_channel = pair
    with pytest.raises(ChannelError, match="already exists"):
        alice.create_channel(CHANNEL)
    assert_still_usable(alice_channel, bob_channel)


def test_garbage_key_package_is_an_mls_error(pair):
    _, alice_channel, _, bob_channel = pair
    epoch = alice_channel.epoch
    for garbage in (b"", b"not a key package", bytes(range(256)) * 4):
        with pytest.raises(MlsError) as raised:
            alice_channel.add_member(garbage)
        assert str(raised.value).startswith("MLS engine error:")
    assert alice_channel.epoch == epoch
    assert_still_usable(alice_channel, bob_channel)


def test_garbage_welcome_is_an_mls_error(make_client, pair):
    _, alice_channel, _, bob_channel = pair
    carol = make_client("carol")
    for garbage in (b"", b"not a welcome", bytes(range(256)) * 4):
        with pytest.raises(MlsError) as raised:
            carol.join_channel("acme/team/other", garbage)
        assert str(raised.value).startswith("MLS engine error:")
    # A real Welcome still works afterwards.
    welcome = alice_channel.add_member(carol.generate_key_package())
    carol_channel = carol.join_channel(CHANNEL, welcome)
    assert_still_usable(carol_channel, bob_channel)


def test_a_welcome_tried_on_a_mistyped_name_still_joins_the_right_one(make_client, pair):
    _, alice_channel, _, bob_channel = pair
    carol = make_client("carol")
    welcome = alice_channel.add_member(carol.generate_key_package())
    with pytest.raises(
        ChannelError, match="the Welcome is not for channel acme/team/genreal: .*check the channel name"
    ):
        carol.join_channel("acme/team/genreal", welcome)
    assert carol.channels() == []
    carol_channel = carol.join_channel(CHANNEL, welcome)
    assert_still_usable(carol_channel, bob_channel)


def test_oversize_payload_is_a_channel_error_and_nothing_is_sent(make_relay, make_client):
    limit = 4096
    small_relay = make_relay(max_payload=limit)
    alice = make_client("alice", endpoint=small_relay.endpoint)
    bob = make_client("bob", endpoint=small_relay.endpoint)
    alice_channel, bob_channel = form_channel(CHANNEL, [alice, bob])

    with pytest.raises(ChannelError):
        alice_channel.send(b"x" * (2 * limit))
    # Had the oversize message reached the relay, bob would read it before this one.
    assert_still_usable(alice_channel, bob_channel, b"small")


def test_unknown_channel_is_a_channel_error(pair):
    alice, alice_channel, _, bob_channel = pair
    with pytest.raises(ChannelError):
        alice.open_channel("acme/team/never-created")
    assert_still_usable(alice_channel, bob_channel)


def test_remove_of_a_non_member_is_an_error_and_changes_nothing(pair):
    _, alice_channel, _, bob_channel = pair
    epoch = alice_channel.epoch
    with pytest.raises(SkytaleError):
        alice_channel.remove_member(b"mallory")
    assert alice_channel.epoch == epoch
    assert_still_usable(alice_channel, bob_channel)


def test_unreachable_relay_is_a_transport_error(tmp_path):
    from skytale_sdk import SkytaleClient

    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    with pytest.raises(TransportError) as raised:
        SkytaleClient("http://127.0.0.1:1", str(tmp_path / "alice"), b"alice")
    message = str(raised.value)
    assert message.startswith("transport error: cannot reach the relay at http://127.0.0.1:1 (")
    assert message.count("transport error") == 1
    assert "skytale dev" in message and "SKYTALE_RELAY" in message


def test_an_identity_is_bytes_or_str_and_nothing_else(relay, tmp_path):
    from skytale_sdk import SkytaleClient

    with SkytaleClient(relay.endpoint, str(tmp_path / "alice"), "alice") as alice:
        assert alice.identity == b"alice"
    with SkytaleClient(relay.endpoint, str(tmp_path / "alice"), b"alice") as alice:
        assert alice.identity == b"alice"
    with pytest.raises(TypeError, match="identity must be bytes or str, not int"):
        SkytaleClient(relay.endpoint, str(tmp_path / "bob"), 7)  # type: ignore[arg-type]


def test_errors_carry_a_code(pair):
    alice, alice_channel, _, _ = pair
    with pytest.raises(ChannelError) as raised:
        alice.create_channel("bad-name")
    assert raised.value.code == "invalid_name"
    with pytest.raises(ChannelError) as raised:
        alice.open_channel("acme/team/never-created")
    assert raised.value.code == "channel"
    with pytest.raises(MlsError) as raised:
        alice_channel.add_member(b"garbage")
    assert raised.value.code == "mls"

"""`skytale_sdk.tools`, the one implementation behind every framework's tools, called directly over a real
``skytale dev``: what goes on the wire, how received messages read, and the errors the adapters pass on."""

from __future__ import annotations

import math

import pytest

from conftest import DevStack
from skytale_sdk import Envelope, Protocol
from skytale_sdk.integrations.slim import SLIMAdapter
from skytale_sdk.tools import SkytaleTools, ToolError
from test_manager import PATIENCE, pair, receive_exactly


def test_text_is_plain_bytes_and_json_a_json_envelope(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, SLIMAdapter(bob) as slim:
        slim.subscribe(channel_name)
        tools = SkytaleTools(alice)
        tools.call("send", {"channel": channel_name, "text": "héllo"})
        tools.call("send", {"channel": channel_name, "json": {"k": [1, 2.5, None]}})
        plain, wrapped = receive_exactly(bob, channel_name, 2)
        assert plain == "héllo"  # what any manager.receive() reader sees
        envelope = Envelope.deserialize(wrapped.encode("utf-8", "surrogateescape"))
        assert (envelope.protocol, envelope.content_type, envelope.payload) == (
            Protocol.RAW,
            "application/json",
            b'{"k":[1,2.5,null]}',
        )
        assert slim.receive(channel_name, timeout=PATIENCE) == ["héllo".encode(), b'{"k":[1,2.5,null]}']


def test_received_messages_read_as_text_or_json(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        alice.send(channel_name, b"\xff not utf-8")
        alice.send_envelope(channel_name, Envelope(Protocol.SLIM, "application/vnd.x+json", b'{"a": 1}'))
        alice.send_envelope(channel_name, Envelope(Protocol.SLIM, "application/json", b"{broken"))
        alice.send_envelope(channel_name, Envelope(Protocol.A2A, "text/plain", b"from a2a"))
        messages: list[dict[str, object]] = []
        while len(messages) < 4:
            messages += SkytaleTools(bob).call("receive", {"channel": channel_name, "timeout_seconds": 60})["messages"]
        not_utf8, vendor_json, broken_json, a2a = messages
        assert (not_utf8["text"], not_utf8["content_type"]) == ("\ufffd not utf-8", "text/plain; charset=utf-8")
        assert (vendor_json["json"], vendor_json["content_type"]) == ({"a": 1}, "application/vnd.x+json")
        assert (broken_json["text"], "json" in broken_json) == ("{broken", False)
        assert (a2a["text"], a2a["content_type"]) == ("from a2a", "text/plain")
        assert {message["sender"] for message in messages} == {"alice"}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"text": "\ud800"}, "'text' is not valid Unicode"),
        ({"json": math.nan}, "'json' is not a JSON value"),
        ({"json": {1, 2}}, "'json' is not a JSON value"),
        ({"text": True}, "'text' must be a string, got a boolean"),
    ],
)
def test_send_refuses_what_it_cannot_send(
    dev_env: DevStack, channel_name: str, arguments: dict[str, object], expected: str
) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        with pytest.raises(ToolError, match=expected) as refused:
            SkytaleTools(alice).call("send", {"channel": channel_name, **arguments})
        assert refused.value.tool == "send"
        assert bob.receive(channel_name, timeout=0.5) == []  # nothing was sent


def test_the_manager_must_be_a_manager() -> None:
    with pytest.raises(TypeError, match="manager must be a SkytaleChannelManager, got str"):
        SkytaleTools("alice")  # type: ignore[arg-type]

"""ProtocolBridge over real MLS channels of a real ``skytale dev``, with the real a2a-sdk and mcp packages.

Alice speaks on every channel, the bridge runs on Bob's manager (a member of every channel) and Carol reads what
the bridge forwarded (members do not receive their own messages, hence three agents).
"""

from __future__ import annotations

import base64
import logging
import os
import sys
import threading
import time
import zlib
from collections.abc import Sequence
from typing import Any

import pytest
from a2a import types as a2a_types
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.types import JSONRPCNotification, JSONRPCRequest, JSONRPCResponse, jsonrpc_message_adapter

from channels import wait_until
from conftest import DevStack
from skytale_sdk import ChannelError, Envelope, Protocol, SkytaleChannelManager
from skytale_sdk._translate import Hop, translate
from skytale_sdk.bridge import ProtocolBridge
from skytale_sdk.integrations.slim import SLIMAdapter
from test_manager import PATIENCE

Managers = tuple[SkytaleChannelManager, SkytaleChannelManager, SkytaleChannelManager]


def stage(*channels: str) -> Managers:
    """Alice creates each channel and adds Bob (who runs the bridge) and Carol."""
    alice, bob, carol = (SkytaleChannelManager(name) for name in ("alice", "bob", "carol"))
    for channel in channels:
        alice.create(channel)
        for member in (bob, carol):
            member.join(channel, alice.add_member(channel, member.key_package()))
    return alice, bob, carol


def receive_exactly(manager: SkytaleChannelManager, channel: str, count: int) -> list[Envelope]:
    received: list[Envelope] = []
    deadline = time.monotonic() + PATIENCE
    while len(received) < count and time.monotonic() < deadline:
        received += manager.receive_envelopes(channel, timeout=PATIENCE)
    return received


def a2a_message(**fields: Any) -> a2a_types.Message:
    return json_format.ParseDict(fields, a2a_types.Message())


def a2a_envelope(message: a2a_types.Message, agent_id: str = "alice") -> Envelope:
    payload = json_format.MessageToJson(message).encode()
    return Envelope(Protocol.A2A, "application/json", payload, metadata={"agent_id": agent_id})


def parse_a2a(envelope: Envelope) -> a2a_types.Message:
    assert (envelope.protocol, envelope.content_type) == (Protocol.A2A, "application/json")
    return json_format.Parse(envelope.payload, a2a_types.Message())


def mcp_envelope(message: dict[str, Any]) -> Envelope:
    rpc = jsonrpc_message_adapter.validate_python(message)
    payload = jsonrpc_message_adapter.dump_json(rpc, by_alias=True, exclude_none=True)
    return Envelope(Protocol.MCP, "application/json", payload)


def parse_mcp(envelope: Envelope) -> Any:
    assert (envelope.protocol, envelope.content_type) == (Protocol.MCP, "application/json")
    return jsonrpc_message_adapter.validate_json(envelope.payload)


def bridge_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("skytale-bridge:")]


@pytest.fixture
def names(channel_name: str) -> tuple[str, str, str]:
    """Three channel names of the test's own (a name component holds at most 64 characters)."""
    prefix, service = channel_name.rsplit("/", 1)
    short = f"{prefix}/{service[:48]}-{zlib.crc32(service.encode()):08x}"
    return f"{short}-a", f"{short}-b", f"{short}-c"


def test_a2a_to_slim_field_by_field(dev_env: DevStack, names: Sequence[str]) -> None:
    source, target, _ = names
    alice, bob, carol = stage(source, target)
    with alice, bob, carol, ProtocolBridge(bob) as bridge, SLIMAdapter(carol) as slim:
        slim.subscribe(target)
        route = bridge.bridge(source, target, Protocol.A2A, Protocol.SLIM)
        text = a2a_message(
            messageId="m-1",
            contextId="research",
            taskId="task-1",
            role="ROLE_USER",
            parts=[{"text": "Hello"}],
            metadata={"priority": "high"},
        )
        png = {"raw": "iVBORw0K", "mediaType": "image/png", "filename": "a.png"}
        image = a2a_message(messageId="m-2", role="ROLE_AGENT", parts=[png])
        mixed = a2a_message(messageId="m-3", role="ROLE_USER", parts=[{"text": "see"}, {"data": {"rows": [1, 2]}}])
        for message in (text, image, mixed):
            alice.send_envelope(source, a2a_envelope(message))

        first, second, third = receive_envelopes(slim, target, 3)
        # A one-part message: the part's content is the payload, the rest of the message is in metadata "a2a".
        assert (first.protocol, first.content_type) == (Protocol.SLIM, "text/plain; charset=utf-8")
        assert first.payload == b"Hello"
        assert first.metadata == {
            "destination": target,
            "agent_id": "alice",
            "bridged_from": [source],
            "a2a": {
                "messageId": "m-1",
                "contextId": "research",
                "taskId": "task-1",
                "role": "ROLE_USER",
                "parts": [{"text": None}],
                "metadata": {"priority": "high"},
            },
        }
        assert (second.content_type, second.payload) == ("image/png", b"\x89PNG\r\n")
        assert second.metadata["a2a"]["parts"] == [{"raw": None, "mediaType": "image/png", "filename": "a.png"}]
        # Several parts: the whole A2A message is the payload.
        assert third.content_type == "application/a2a+json; type=Message"
        assert json_format.Parse(third.payload, a2a_types.Message()) == mixed
        assert "a2a" not in third.metadata
        bridge.stop()  # joins the route: its counters are final (the send returns after delivery)
        assert route.stats().forwarded == 3


def receive_envelopes(slim: SLIMAdapter, channel: str, count: int) -> list[Envelope]:
    received: list[Envelope] = []
    deadline = time.monotonic() + PATIENCE
    while len(received) < count and time.monotonic() < deadline:
        received += slim.receive_envelopes(channel, timeout=PATIENCE)
    return received


def test_slim_to_a2a_field_by_field(dev_env: DevStack, names: Sequence[str]) -> None:
    source, target, _ = names
    alice, bob, carol = stage(source, target)
    with alice, bob, carol, ProtocolBridge(bob, agent_id="bridge-7") as bridge:
        bridge.bridge(source, target, Protocol.SLIM, Protocol.A2A)
        slim = SLIMAdapter(alice)
        slim.publish(source, "hi there", content_type="text/plain; charset=utf-8")
        slim.publish(source, b'{"temperature": 21.5, "unit": "C"}', content_type="application/json")
        slim.publish(source, b"\x89PNG\r\n", content_type="image/png")
        slim.publish(source, "https://example.com/report.pdf", content_type="text/uri-list")
        alice.send(source, b"plain bytes")  # RAW: read by a SLIM route too

        envelopes = receive_exactly(carol, target, 5)
        assert all(e.metadata == {"agent_id": "bridge-7", "bridged_from": [source]} for e in envelopes)
        messages = [parse_a2a(e) for e in envelopes]
        for message in messages:
            assert message.role == a2a_types.Role.ROLE_AGENT
            assert message.context_id == target.rsplit("/", 1)[-1]
            assert message.message_id and not message.task_id
        assert len({m.message_id for m in messages}) == 5
        parts = [json_format.MessageToDict(m)["parts"] for m in messages]
        assert parts == [
            [{"text": "hi there"}],
            [{"data": {"temperature": 21.5, "unit": "C"}}],
            [{"raw": "iVBORw0K", "mediaType": "image/png"}],
            [{"url": "https://example.com/report.pdf"}],
            [{"raw": "cGxhaW4gYnl0ZXM="}],
        ]


def test_mcp_to_slim_field_by_field(dev_env: DevStack, names: Sequence[str]) -> None:
    source, target, _ = names
    alice, bob, carol = stage(source, target)
    with alice, bob, carol, ProtocolBridge(bob) as bridge, SLIMAdapter(carol) as slim:
        slim.subscribe(target)
        bridge.bridge(source, target, Protocol.MCP, Protocol.SLIM)
        request = mcp_envelope(
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1}}}
        )
        notification = mcp_envelope({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 0.5}})
        response = mcp_envelope({"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "3"}]}})
        for envelope in (request, notification, response):
            alice.send_envelope(source, envelope)

        received = receive_envelopes(slim, target, 3)
        assert [(e.protocol, e.content_type, e.payload) for e in received] == [
            (Protocol.SLIM, "application/json", sent.payload) for sent in (request, notification, response)
        ]
        assert [e.metadata["mcp"] for e in received] == [
            {"method": "tools/call", "id": 7},
            {"method": "notifications/progress"},
            {"id": 7},
        ]
        assert all(e.metadata["destination"] == target and e.metadata["bridged_from"] == [source] for e in received)


def test_slim_to_mcp_and_an_untranslatable_message_is_counted_logged_and_passed(
    dev_env: DevStack, names: Sequence[str], caplog: pytest.LogCaptureFixture
) -> None:
    source, target, _ = names
    alice, bob, carol = stage(source, target)
    with alice, bob, carol, ProtocolBridge(bob) as bridge, caplog.at_level(logging.WARNING, "skytale_sdk.bridge"):
        route = bridge.bridge(source, target, Protocol.SLIM, Protocol.MCP)
        slim = SLIMAdapter(alice)
        slim.publish(source, "not JSON-RPC", content_type="text/plain")
        result = b'{"jsonrpc": "2.0", "id": "abc", "result": {"ok": true}}'
        slim.publish(source, result, content_type="application/json")
        slim.publish(source, b'{"jsonrpc": "2.0", "method": "ping", "id": 1}')

        response, ping = (parse_mcp(e) for e in receive_exactly(carol, target, 2))
        assert isinstance(response, JSONRPCResponse) and (response.id, response.result) == ("abc", {"ok": True})
        assert isinstance(ping, JSONRPCRequest) and (ping.id, ping.method, ping.params) == (1, "ping", None)
        bridge.stop()  # joins the route: its counters are final (the send returns after delivery)
        stats = route.stats()
        assert (stats.forwarded, stats.untranslatable, stats.send_failures) == (2, {"no_mapping": 1}, 0)
        [warning] = [r for r in caplog.records if r.name == "skytale_sdk.bridge"]
        assert warning.levelno == logging.WARNING
        assert ": no_mapping: not one JSON-RPC 2.0 message" in warning.getMessage()


def test_a2a_to_mcp_field_by_field(dev_env: DevStack, names: Sequence[str]) -> None:
    source, target, _ = names
    alice, bob, carol = stage(source, target)
    with alice, bob, carol, ProtocolBridge(bob) as bridge:
        route = bridge.bridge(source, target, Protocol.A2A, Protocol.MCP)
        call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1}}}
        alice.send_envelope(source, a2a_envelope(a2a_message(messageId="m-1", parts=[{"data": call}])))
        alice.send_envelope(source, a2a_envelope(a2a_message(messageId="m-2", parts=[{"text": "status: done"}])))
        alice.send_envelope(source, a2a_envelope(a2a_message(messageId="m-3", parts=[{"url": "https://x.test/"}])))

        request_envelope, notification_envelope = receive_exactly(carol, target, 2)
        request, notification = parse_mcp(request_envelope), parse_mcp(notification_envelope)
        # A2A data parts hold numbers as doubles; the id and the arguments come back as the integers they were.
        assert isinstance(request, JSONRPCRequest)
        assert (request.id, request.method, request.params) == (3, "tools/call", {"name": "add", "arguments": {"a": 1}})
        assert type(request.id) is int and type(request.params["arguments"]["a"]) is int
        assert isinstance(notification, JSONRPCNotification)
        assert notification.method == "notifications/message"
        assert notification.params == {"level": "info", "data": "status: done", "logger": "alice"}
        assert request_envelope.metadata == {
            "agent_id": "alice",
            "bridged_from": [source],
            "a2a": {"messageId": "m-1", "parts": [{"data": None}]},
        }
        wait_until(lambda: route.stats().untranslatable == {"no_mapping": 1})
        assert route.stats().forwarded == 2


def test_mcp_to_a2a_field_by_field(dev_env: DevStack, names: Sequence[str]) -> None:
    source, target, _ = names
    alice, bob, carol = stage(source, target)
    with alice, bob, carol, ProtocolBridge(bob) as bridge:
        bridge.bridge(source, target, Protocol.MCP, Protocol.A2A)
        response = {"jsonrpc": "2.0", "id": 9, "result": {"content": [{"type": "text", "text": "3"}]}}
        alice.send_envelope(source, mcp_envelope(response))

        [envelope] = receive_exactly(carol, target, 1)
        assert envelope.metadata == {"agent_id": "skytale-bridge", "bridged_from": [source]}
        message = parse_a2a(envelope)
        assert (message.role, message.context_id) == (a2a_types.Role.ROLE_AGENT, target.rsplit("/", 1)[-1])
        [part] = json_format.MessageToDict(message)["parts"]
        assert part == {"data": response}


@pytest.mark.parametrize("middle", [Protocol.SLIM, Protocol.MCP])
def test_a2a_through_another_protocol_and_back_is_unchanged(
    dev_env: DevStack, names: Sequence[str], middle: Protocol
) -> None:
    first, second, third = names
    alice, bob, carol = stage(first, second, third)
    call = {"jsonrpc": "2.0", "id": 4, "method": "tools/list"}
    common = {"contextId": "ctx", "taskId": "t-9", "role": "ROLE_USER", "metadata": {"trace": "abc"}}
    originals = [
        a2a_message(messageId="text", parts=[{"text": "Hello", "metadata": {"lang": "en"}}], **common),
        a2a_message(messageId="texts", parts=[{"text": "one"}, {"text": "two"}], referenceTaskIds=["t-1"], **common),
        a2a_message(messageId="rpc", parts=[{"data": call}], extensions=["https://ext.test/v1"], **common),
    ]
    if middle is Protocol.SLIM:
        originals.append(a2a_message(messageId="file", parts=[{"raw": "AAEC", "filename": "x.bin"}], **common))
    # Two bridge agents: a manager does not receive its own messages, so one manager's routes never see each
    # other's output.
    with alice, bob, carol, ProtocolBridge(bob) as there, ProtocolBridge(carol) as back:
        there.bridge(first, second, Protocol.A2A, middle)
        back.bridge(second, third, middle, Protocol.A2A)
        for message in originals:
            alice.send_envelope(first, a2a_envelope(message, agent_id="agent-a"))

        arrived = receive_exactly(alice, third, len(originals))
        assert [parse_a2a(e) for e in arrived] == originals
        assert all(e.metadata == {"agent_id": "agent-a", "bridged_from": [first, second]} for e in arrived)


def test_wrong_protocol_and_malformed_messages_are_counted_and_logged(
    dev_env: DevStack, names: Sequence[str], caplog: pytest.LogCaptureFixture
) -> None:
    source, target, _ = names
    alice, bob, carol = stage(source, target)
    with alice, bob, carol, ProtocolBridge(bob) as bridge, caplog.at_level(logging.WARNING, "skytale_sdk.bridge"):
        route = bridge.bridge(source, target, Protocol.A2A, Protocol.SLIM)
        alice.send_envelope(source, mcp_envelope({"jsonrpc": "2.0", "method": "ping", "id": 1}))
        alice.send(source, "a plain message")
        alice.send_envelope(source, Envelope(Protocol.A2A, "application/json", b"{not json"))
        alice.send_envelope(source, Envelope(Protocol.A2A, "application/a2a+json; type=Nope", b"{}"))
        alice.send_envelope(source, a2a_envelope(a2a_message(messageId="ok", parts=[{"text": "fine"}])))

        [envelope] = receive_exactly(carol, target, 1)
        assert envelope.payload == b"fine"
        bridge.stop()  # joins the route: its counters are final (the send returns after delivery)
        stats = route.stats()
        assert (stats.forwarded, stats.untranslatable) == (1, {"wrong_protocol": 2, "malformed": 2})
        warnings = [r.getMessage() for r in caplog.records if r.name == "skytale_sdk.bridge"]
        assert len(warnings) == 4
        assert sum(": wrong_protocol: " in w for w in warnings) == 2
        assert sum(": malformed: " in w for w in warnings) == 2


def test_a_send_that_keeps_failing_is_retried_counted_and_logged(
    dev_env: DevStack, names: Sequence[str], caplog: pytest.LogCaptureFixture
) -> None:
    source, target, _ = names
    alice, bob, carol = stage(source, target)
    with alice, bob, carol, ProtocolBridge(bob, send_attempts=3, retry_backoff=0.01) as bridge:
        route = bridge.bridge(source, target, Protocol.SLIM, Protocol.A2A)
        slim = SLIMAdapter(alice)
        # Fits the relay's 1 MiB limit as SLIM bytes, not once base64-encoded into an A2A raw part.
        with caplog.at_level(logging.ERROR, "skytale_sdk.bridge"):
            slim.publish(source, os.urandom(800_000), content_type="application/octet-stream")
            slim.publish(source, "small", content_type="text/plain; charset=utf-8")
            [envelope] = receive_exactly(carol, target, 1)
        assert json_format.MessageToDict(parse_a2a(envelope))["parts"] == [{"text": "small"}]
        bridge.stop()  # joins the route: its counters are final (the send returns after delivery)
        stats = route.stats()
        assert (stats.forwarded, stats.send_failures, stats.untranslatable) == (1, 1, {})
        [error] = [r for r in caplog.records if r.name == "skytale_sdk.bridge"]
        assert error.levelno == logging.ERROR
        assert "after 3 attempt(s)" in error.getMessage() and "exceeds the relay limit" in error.getMessage()


def test_two_way_bridging_does_not_loop(dev_env: DevStack, names: Sequence[str]) -> None:
    a2a_channel, slim_channel, _ = names
    alice, bob, carol = stage(a2a_channel, slim_channel)
    # Bob bridges one way and Carol the other: each sees the other's output (a manager never sees its own).
    with alice, bob, carol, ProtocolBridge(bob) as forth, ProtocolBridge(carol) as back:
        forth.bridge(a2a_channel, slim_channel, Protocol.A2A, Protocol.SLIM)
        back.bridge(slim_channel, a2a_channel, Protocol.SLIM, Protocol.A2A)
        alice.send_envelope(a2a_channel, a2a_envelope(a2a_message(messageId="from-a2a", parts=[{"text": "ping"}])))
        SLIMAdapter(alice).publish(slim_channel, "pong", content_type="text/plain; charset=utf-8")

        # Each route forwards the original message and declines the other route's copy, once.
        def settled() -> bool:
            return [(s.forwarded, s.not_rebridged) for s in forth.stats() + back.stats()] == [(1, 1), (1, 1)]

        wait_until(settled)
        [on_slim] = receive_exactly(alice, slim_channel, 1)
        assert (on_slim.payload, on_slim.metadata["bridged_from"]) == (b"ping", [a2a_channel])
        [on_a2a] = receive_exactly(alice, a2a_channel, 1)
        assert json_format.MessageToDict(parse_a2a(on_a2a))["parts"] == [{"text": "pong"}]
        assert on_a2a.metadata["bridged_from"] == [slim_channel]
        # Nothing more comes, on either channel.
        assert alice.receive_envelopes(slim_channel, timeout=1.0) == []
        assert alice.receive_envelopes(a2a_channel, timeout=0.1) == []
        assert settled()


def test_same_protocol_routes_pass_messages_through(dev_env: DevStack, names: Sequence[str]) -> None:
    source, target, _ = names
    alice, bob, carol = stage(source, target)
    with alice, bob, carol, ProtocolBridge(bob) as bridge:
        bridge.bridge(source, target, Protocol.SLIM, Protocol.SLIM)
        SLIMAdapter(alice).publish(source, b"as is", content_type="application/x-thing")
        [envelope] = receive_exactly(carol, target, 1)
        assert (envelope.protocol, envelope.content_type, envelope.payload) == (
            Protocol.SLIM,
            "application/x-thing",
            b"as is",
        )
        assert envelope.metadata == {"destination": target, "bridged_from": [source]}


def test_the_bridge_does_not_drain_the_managers_receive(dev_env: DevStack, names: Sequence[str]) -> None:
    source, target, _ = names
    alice, bob, carol = stage(source, target)
    with alice, bob, carol, ProtocolBridge(bob) as bridge:
        bridge.bridge(source, target, Protocol.A2A, Protocol.SLIM)
        sent = a2a_envelope(a2a_message(messageId="m", parts=[{"text": "for everyone"}]))
        alice.send_envelope(source, sent)
        assert receive_exactly(carol, target, 1)[0].payload == b"for everyone"
        assert bob.receive_envelopes(source, timeout=PATIENCE) == [sent]


def test_stop_joins_every_thread_and_is_idempotent(dev_env: DevStack, names: Sequence[str]) -> None:
    first, second, _ = names
    alice, bob, carol = stage(first, second)
    with alice, bob, carol:
        bridge = ProtocolBridge(bob)
        bridge.bridge(first, second, Protocol.A2A, Protocol.SLIM)
        bridge.bridge(second, first, Protocol.SLIM, Protocol.MCP)
        assert len(bridge_threads()) == 2
        bridge.stop()
        assert bridge_threads() == []
        assert [s.running for s in bridge.stats()] == [False, False]
        assert all(s.error is None for s in bridge.stats())
        bridge.stop()
        # A stopped bridge can start routes again; leaving the with-block stops them.
        with bridge:
            bridge.bridge(first, second, Protocol.A2A, Protocol.SLIM)
            assert len(bridge_threads()) == 1
        assert bridge_threads() == []


def test_bad_routes_are_refused_with_a_clear_error(dev_env: DevStack, names: Sequence[str]) -> None:
    first, second, _ = names
    alice, bob, carol = stage(first, second)
    with alice, bob, carol, ProtocolBridge(bob) as bridge:
        with pytest.raises(ValueError, match="cannot bridge 'raw' messages"):
            bridge.bridge(first, second, Protocol.RAW, Protocol.SLIM)
        with pytest.raises(ValueError, match="'smtp' is not a valid Protocol"):
            bridge.bridge(first, second, "smtp", Protocol.SLIM)
        with pytest.raises(ChannelError, match="unknown channel: myorg/tests/nowhere"):
            bridge.bridge(first, "myorg/tests/nowhere", Protocol.A2A, Protocol.SLIM)
        with pytest.raises(ChannelError, match="unknown channel: myorg/tests/nowhere"):
            bridge.bridge("myorg/tests/nowhere", second, Protocol.A2A, Protocol.SLIM)
        with pytest.raises(ValueError, match="to itself without translation"):
            bridge.bridge(first, first, Protocol.SLIM, Protocol.SLIM)
        bridge.bridge(first, second, "a2a", "slim")
        with pytest.raises(ValueError, match="already bridging"):
            bridge.bridge(first, second, Protocol.A2A, Protocol.SLIM)
        with pytest.raises(ValueError, match="send_attempts must be at least 1"):
            ProtocolBridge(bob, send_attempts=0)


def test_a_missing_extra_is_an_import_error_naming_it(
    dev_env: DevStack, names: Sequence[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, _ = names
    alice, bob, carol = stage(first, second)
    with alice, bob, carol, ProtocolBridge(bob) as bridge:
        monkeypatch.setitem(sys.modules, "a2a", None)  # what `import a2a` finds when a2a-sdk is not installed
        monkeypatch.setitem(sys.modules, "mcp.types", None)
        with pytest.raises(ImportError, match=r"need the a2a-sdk package: pip install '\.\[a2a\]' in the Skytale"):
            bridge.bridge(first, second, Protocol.A2A, Protocol.SLIM)
        with pytest.raises(ImportError, match=r"need the mcp package: pip install '\.\[mcp\]' in the Skytale"):
            bridge.bridge(first, second, Protocol.SLIM, Protocol.MCP)
        # Pass-through needs neither.
        bridge.bridge(first, second, Protocol.A2A, Protocol.A2A)


def test_a_route_whose_source_ends_says_why(
    dev_env: DevStack, names: Sequence[str], caplog: pytest.LogCaptureFixture
) -> None:
    first, second, _ = names
    alice, bob, carol = stage(first, second)
    with alice, carol, ProtocolBridge(bob) as bridge, caplog.at_level(logging.ERROR, "skytale_sdk.bridge"):
        route = bridge.bridge(first, second, Protocol.A2A, Protocol.SLIM)
        bob.close()  # ends every channel listener of the bridge's manager
        wait_until(lambda: not route.running)
        assert route.stats().error == "the source channel was closed"
        assert bridge_threads() == []
        assert any("stopped: the source channel was closed" in r.getMessage() for r in caplog.records)


# Round trips of the translations themselves, over generated A2A messages (no channel needed: the end-to-end tests
# above cover the routes; these cover the field-by-field claim for every shape of message).

_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.text(max_size=12)
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
_OBJECTS = st.dictionaries(st.text(max_size=6), _JSON, max_size=3)


@st.composite
def _parts(draw: st.DrawFn, kinds: Sequence[str] = ("text", "raw", "data", "url")) -> dict[str, Any]:
    kind = draw(st.sampled_from(kinds))
    content = {
        "text": lambda: draw(st.text(max_size=20)),
        "raw": lambda: base64.b64encode(draw(st.binary(max_size=20))).decode(),
        "data": lambda: draw(_JSON),
        "url": lambda: draw(st.text(min_size=1, max_size=20)),
    }[kind]()
    part: dict[str, Any] = {kind: content}
    for key, values in (
        ("mediaType", st.sampled_from(["text/markdown", "image/png", "application/json"])),
        ("filename", st.text(min_size=1, max_size=8)),
        ("metadata", _OBJECTS),
    ):
        if draw(st.booleans()):
            part[key] = draw(values)
    return part


@st.composite
def _messages(draw: st.DrawFn, parts: Any) -> a2a_types.Message:
    fields: dict[str, Any] = {"messageId": draw(st.text(min_size=1, max_size=8)), "parts": draw(parts)}
    for key, values in (
        ("contextId", st.text(min_size=1, max_size=8)),
        ("taskId", st.text(min_size=1, max_size=8)),
        ("role", st.sampled_from(["ROLE_USER", "ROLE_AGENT"])),
        ("metadata", _OBJECTS),
        ("extensions", st.lists(st.text(min_size=1, max_size=8), max_size=2)),
        ("referenceTaskIds", st.lists(st.text(min_size=1, max_size=8), max_size=2)),
    ):
        if draw(st.booleans()):
            fields[key] = draw(values)
    return a2a_message(**fields)


def _round_trip(message: a2a_types.Message, middle: Protocol) -> a2a_types.Message:
    there, back = Hop("x/a2a/in", "x/mid/m", "bridge"), Hop("x/mid/m", "x/a2a/out", "bridge")
    translated = translate(a2a_envelope(message), Protocol.A2A, middle, there)
    return parse_a2a(translate(translated, middle, Protocol.A2A, back))


@settings(max_examples=300, deadline=None)
@given(_messages(st.lists(_parts(), max_size=3)))
def test_any_a2a_message_survives_slim_and_back(message: a2a_types.Message) -> None:
    assert _round_trip(message, Protocol.SLIM) == message


@settings(max_examples=200, deadline=None)
@given(_messages(st.lists(_parts(kinds=("text",)), min_size=1, max_size=3)))
def test_any_a2a_text_message_survives_mcp_and_back(message: a2a_types.Message) -> None:
    assert _round_trip(message, Protocol.MCP) == message

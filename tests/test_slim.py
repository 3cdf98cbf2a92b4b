"""SLIMAdapter over real MLS channels of a real ``skytale dev``."""

from __future__ import annotations

import logging
import time

import pytest

from conftest import DevStack
from skytale_sdk import ChannelError, Envelope, Protocol
from skytale_sdk.integrations.slim import SLIMAdapter
from test_manager import PATIENCE, pair, receive_exactly


def receive_envelopes_exactly(adapter: SLIMAdapter, channel: str, count: int) -> list[Envelope]:
    received: list[Envelope] = []
    deadline = time.monotonic() + PATIENCE
    while len(received) < count and time.monotonic() < deadline:
        received += adapter.receive_envelopes(channel, timeout=PATIENCE)
    return received


def test_publish_and_receive_keep_payloads_and_content_types(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, SLIMAdapter(alice) as publisher, SLIMAdapter(bob) as subscriber:
        subscriber.subscribe(channel_name)
        publisher.publish(channel_name, b"\x00\x01binary")
        publisher.publish(channel_name, "héllo", content_type="text/plain; charset=utf-8")
        publisher.publish(channel_name, b'{"temperature": 21.5}', content_type="application/json")

        envelopes = receive_envelopes_exactly(subscriber, channel_name, 3)
        assert [(e.protocol, e.content_type, e.payload) for e in envelopes] == [
            (Protocol.SLIM, "application/octet-stream", b"\x00\x01binary"),
            (Protocol.SLIM, "text/plain; charset=utf-8", "héllo".encode()),
            (Protocol.SLIM, "application/json", b'{"temperature": 21.5}'),
        ]
        assert all(e.metadata == {"destination": channel_name} for e in envelopes)

        publisher.publish(channel_name, b"next")
        assert subscriber.receive(channel_name, timeout=PATIENCE) == [b"next"]


def test_raw_messages_are_slim_payloads(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, SLIMAdapter(bob) as subscriber:
        subscriber.subscribe(channel_name)
        alice.send(channel_name, "plain send")
        [envelope] = receive_envelopes_exactly(subscriber, channel_name, 1)
        assert (envelope.protocol, envelope.content_type, envelope.payload) == (
            Protocol.RAW,
            "application/octet-stream",
            b"plain send",
        )


def test_other_protocols_are_skipped_logged_and_counted(
    dev_env: DevStack, channel_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, SLIMAdapter(alice) as publisher, SLIMAdapter(bob) as subscriber:
        subscriber.subscribe(channel_name)
        alice.send_envelope(channel_name, Envelope(Protocol.A2A, "application/json", b'{"parts": []}'))
        alice.send_envelope(channel_name, Envelope(Protocol.MCP, "application/json", b'{"jsonrpc": "2.0"}'))
        alice.send_envelope(channel_name, Envelope(Protocol.MCP, "application/json", b'{"jsonrpc": "2.0"}'))
        publisher.publish(channel_name, b"the slim one")
        with caplog.at_level(logging.DEBUG, logger="skytale_sdk.integrations.slim"):
            assert receive_envelopes_exactly(subscriber, channel_name, 1)[0].payload == b"the slim one"
        assert subscriber.skipped() == {"a2a": 1, "mcp": 2}
        skipped_logs = [r for r in caplog.records if r.name == "skytale_sdk.integrations.slim"]
        assert len(skipped_logs) == 3
        assert all(channel_name in r.getMessage() for r in skipped_logs)


def test_receive_waits_past_other_protocols_until_its_timeout(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, SLIMAdapter(bob) as subscriber:
        subscriber.subscribe(channel_name)
        alice.send_envelope(channel_name, Envelope(Protocol.MCP, "application/json", b"{}"))
        started = time.monotonic()
        assert subscriber.receive(channel_name, timeout=1.0) == []
        assert time.monotonic() - started >= 0.9
        assert subscriber.skipped() == {"mcp": 1}


def test_receive_needs_a_subscription_and_subscribe_is_idempotent(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, SLIMAdapter(bob) as subscriber:
        with pytest.raises(ChannelError, match=r"not subscribed.*subscribe\("):
            subscriber.receive(channel_name, timeout=0.1)
        with pytest.raises(ChannelError, match="unknown channel"):
            subscriber.subscribe("myorg/tests/nowhere")
        subscriber.subscribe(channel_name)
        subscriber.subscribe(channel_name)
        SLIMAdapter(alice).publish(channel_name, b"once")
        # One view despite two subscribe() calls: the message comes once.
        assert subscriber.receive(channel_name, timeout=PATIENCE) == [b"once"]
        assert subscriber.receive(channel_name, timeout=0.3) == []


def test_the_adapter_does_not_drain_the_managers_receive(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, SLIMAdapter(bob) as subscriber:
        subscriber.subscribe(channel_name)
        SLIMAdapter(alice).publish(channel_name, "shared", content_type="text/plain")
        assert subscriber.receive(channel_name, timeout=PATIENCE) == [b"shared"]
        [envelope] = bob.receive_envelopes(channel_name, timeout=PATIENCE)
        assert (envelope.protocol, envelope.payload) == (Protocol.SLIM, b"shared")


def test_bad_input_is_refused_with_a_clear_error(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob, SLIMAdapter(alice) as publisher:
        with pytest.raises(TypeError, match="payload must be bytes or str, got int"):
            publisher.publish(channel_name, 42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="content_type must be a non-empty string"):
            publisher.publish(channel_name, b"x", content_type="")
        with pytest.raises(ChannelError, match="unknown channel"):
            publisher.publish("myorg/tests/nowhere", b"x")


def test_close_closes_the_views(dev_env: DevStack, channel_name: str) -> None:
    alice, bob = pair(channel_name)
    with alice, bob:
        subscriber = SLIMAdapter(bob)
        subscriber.subscribe(channel_name)
        subscriber.close()
        subscriber.close()
        with pytest.raises(ChannelError, match="closed"):
            subscriber.receive(channel_name, timeout=0.1)
        with pytest.raises(ChannelError, match="closed"):
            subscriber.subscribe(channel_name)
        # The manager and its channel stay open.
        alice.send(channel_name, "still open")
        assert receive_exactly(bob, channel_name, 1) == ["still open"]

"""The bridge's translations as pure functions (``skytale_sdk._translate``): no relay, no thread.

The field-by-field tables are exercised end to end in test_bridge.py; these pin the rules underneath them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from skytale_sdk import Envelope, Protocol
from skytale_sdk._translate import (
    MALFORMED,
    NO_MAPPING,
    WRONG_PROTOCOL,
    Hop,
    Untranslatable,
    bridged_from,
    integral_numbers,
    media_type,
    slim_as_part,
    translate,
)

HOP = Hop("org/src/chan", "org/a2a/ctx", "the-bridge")


def untranslatable(envelope: Envelope, source: Protocol, target: Protocol) -> Untranslatable:
    with pytest.raises(Untranslatable) as raised:
        translate(envelope, source, target, HOP)
    return raised.value


def test_media_type_lowercases_type_and_parameter_names_and_unquotes_values() -> None:
    assert media_type('Text/Plain; Charset="UTF-8"; X = 1') == ("text/plain", {"charset": "UTF-8", "x": "1"})
    assert media_type("application/json") == ("application/json", {})


def test_integral_numbers_turns_exact_integral_floats_into_ints_everywhere() -> None:
    value = {"id": 1.0, "list": [2.0, 2.5, True], "nested": {"n": -3.0}, "text": "1.0", "huge": 2.0**60}
    assert integral_numbers(value) == {
        "id": 1,
        "list": [2, 2.5, True],
        "nested": {"n": -3},
        "text": "1.0",
        "huge": 2.0**60,  # beyond 2**53 a double is no exact integer: left as it is
    }
    assert type(integral_numbers(1.0)) is int and type(integral_numbers(2.0**60)) is float


@pytest.mark.parametrize(
    ("content_type", "payload", "part"),
    [
        ("text/plain; charset=utf-8", b"hi", {"text": "hi"}),
        ("text/markdown", b"# hi", {"text": "# hi", "mediaType": "text/markdown"}),
        ("application/x; charset=us-ascii", b"ok", {"text": "ok", "mediaType": "application/x; charset=us-ascii"}),
        ("application/json", b'{"a": 1}', {"data": {"a": 1}}),
        ("application/vnd.x+json", b"[1]", {"data": [1], "mediaType": "application/vnd.x+json"}),
        ("text/uri-list", b" https://x.example/z \n", {"url": "https://x.example/z"}),
        ("application/octet-stream", b"\x00\x01", {"raw": "AAE="}),
        # Not what the content type claims: kept as bytes, with the content type.
        ("application/json", b"{nope", {"raw": "e25vcGU=", "mediaType": "application/json"}),
        ("application/json", b"NaN", {"raw": "TmFO", "mediaType": "application/json"}),
        ("text/plain", b"\xff\xfe", {"raw": "//4=", "mediaType": "text/plain"}),
        ("text/plain; charset=latin-1", b"caf\xe9", {"raw": "Y2Fm6Q==", "mediaType": "text/plain; charset=latin-1"}),
        # A uri-list that is not exactly one URI is text.
        ("text/uri-list", b"https://a https://b", {"text": "https://a https://b", "mediaType": "text/uri-list"}),
        ("text/uri-list", b"# comment", {"text": "# comment", "mediaType": "text/uri-list"}),
    ],
)
def test_a_slim_payload_becomes_the_a2a_part_its_content_type_and_bytes_allow(
    content_type: str, payload: bytes, part: dict[str, Any]
) -> None:
    assert slim_as_part(content_type, payload) == part


def test_bridged_from_is_the_list_of_channels_or_malformed() -> None:
    assert bridged_from(Envelope(Protocol.SLIM, "text/plain", b"")) == []
    assert bridged_from(Envelope(Protocol.SLIM, "text/plain", b"", {"bridged_from": ["a/b/c"]})) == ["a/b/c"]
    for path in ("a/b/c", ["a/b/c", 1]):
        with pytest.raises(Untranslatable) as raised:
            bridged_from(Envelope(Protocol.SLIM, "text/plain", b"", {"bridged_from": path}))
        assert raised.value.reason == MALFORMED


def test_a_route_reads_only_its_source_protocol_and_a_slim_route_reads_raw_too() -> None:
    raw = Envelope(Protocol.RAW, "application/octet-stream", b"\x00")
    problem = untranslatable(raw, Protocol.A2A, Protocol.SLIM)
    assert (problem.reason, problem.detail) == (WRONG_PROTOCOL, "the route reads a2a messages, this one is raw")
    assert translate(raw, Protocol.SLIM, Protocol.SLIM, HOP) == Envelope(
        Protocol.SLIM,
        "application/octet-stream",
        b"\x00",
        {"destination": HOP.target, "bridged_from": [HOP.source]},
    )


def test_metadata_is_copied_except_the_keys_that_describe_the_source_protocol() -> None:
    source = Envelope(
        Protocol.SLIM,
        "text/plain; charset=utf-8",
        b"hello",
        {"destination": HOP.source, "mcp": {"id": 1}, "kept": "yes", "bridged_from": ["org/zero/chan"]},
    )
    translated = translate(source, Protocol.SLIM, Protocol.A2A, HOP)
    assert (translated.protocol, translated.content_type) == (Protocol.A2A, "application/json")
    assert translated.metadata == {
        "kept": "yes",
        "agent_id": HOP.agent_id,  # the source names none
        "bridged_from": ["org/zero/chan", HOP.source],
    }
    message = json.loads(translated.payload)
    assert (message["contextId"], message["role"], message["parts"]) == ("ctx", "ROLE_AGENT", [{"text": "hello"}])


def test_mcp_to_slim_keeps_the_bytes_and_summarises_method_and_id() -> None:
    payload = b'{"jsonrpc":"2.0","method":"ping","id":7}'
    translated = translate(Envelope(Protocol.MCP, "application/json", payload), Protocol.MCP, Protocol.SLIM, HOP)
    assert (translated.content_type, translated.payload) == ("application/json", payload)
    assert translated.metadata == {
        "destination": HOP.target,
        "mcp": {"method": "ping", "id": 7},
        "bridged_from": [HOP.source],
    }


def test_json_that_is_no_json_rpc_message_is_malformed_as_mcp_and_has_no_mapping_from_slim() -> None:
    not_rpc = b'{"a": 1}'
    from_mcp = untranslatable(Envelope(Protocol.MCP, "application/json", not_rpc), Protocol.MCP, Protocol.SLIM)
    from_slim = untranslatable(Envelope(Protocol.SLIM, "application/json", not_rpc), Protocol.SLIM, Protocol.MCP)
    assert (from_mcp.reason, from_slim.reason) == (MALFORMED, NO_MAPPING)


def test_a2a_text_parts_become_an_mcp_logging_notification() -> None:
    message = b'{"messageId":"m","role":"ROLE_USER","parts":[{"text":"a"},{"text":"b"}]}'
    source = Envelope(Protocol.A2A, "application/json", message, {"agent_id": "alice"})
    translated = translate(source, Protocol.A2A, Protocol.MCP, HOP)
    assert json.loads(translated.payload) == {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "data": ["a", "b"], "logger": "alice"},
    }
    assert translated.metadata == {
        "agent_id": "alice",
        "a2a": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": None}, {"text": None}]},
        "bridged_from": [HOP.source],
    }


def test_a2a_objects_travel_unchanged_on_slim_are_checked_and_have_no_mcp_form() -> None:
    task = Envelope(Protocol.A2A, "application/a2a+json; type=Task", b'{"id": "t"}', {"agent_id": "alice"})
    on_slim = translate(task, Protocol.A2A, Protocol.SLIM, HOP)
    assert (on_slim.content_type, on_slim.payload) == (task.content_type, task.payload)
    assert untranslatable(task, Protocol.A2A, Protocol.MCP).reason == NO_MAPPING
    unknown = Envelope(Protocol.A2A, "application/a2a+json; type=Nope", b"{}", {"agent_id": "alice"})
    assert untranslatable(unknown, Protocol.A2A, Protocol.SLIM).reason == MALFORMED
    not_a2a = Envelope(Protocol.A2A, "text/plain", b"{}", {"agent_id": "alice"})
    assert untranslatable(not_a2a, Protocol.A2A, Protocol.SLIM).reason == MALFORMED

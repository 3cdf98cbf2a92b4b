"""Envelope wire format: exact layout, round trips, and ValueError (only) for anything malformed."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skytale_sdk.envelope import Envelope, Protocol

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
envelopes = st.builds(
    Envelope,
    protocol=st.sampled_from(Protocol),
    content_type=st.text(),
    payload=st.binary(),
    metadata=st.none() | st.dictionaries(st.text(), json_values, max_size=5),
)


def frame(header: object, payload: bytes = b"") -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<I", len(encoded)) + encoded + payload


@given(envelopes)
def test_round_trip_preserves_every_field(envelope: Envelope) -> None:
    assert Envelope.deserialize(envelope.serialize()) == envelope


@given(st.binary())
def test_random_bytes_raise_nothing_but_value_error(data: bytes) -> None:
    try:
        Envelope.deserialize(data)
    except ValueError:
        pass


@given(st.binary(), st.binary(max_size=64))
def test_bytes_after_a_valid_length_prefix_raise_nothing_but_value_error(header: bytes, payload: bytes) -> None:
    try:
        Envelope.deserialize(struct.pack("<I", len(header)) + header + payload)
    except ValueError:
        pass


def test_wire_layout_is_length_prefix_json_header_payload() -> None:
    data = Envelope(Protocol.A2A, "application/json", b'{"parts":[]}', {"k": "v"}).serialize()
    (header_len,) = struct.unpack_from("<I", data)
    header = json.loads(data[4 : 4 + header_len])
    assert header == {"p": "a2a", "ct": "application/json", "md": {"k": "v"}}
    assert data[4 + header_len :] == b'{"parts":[]}'


def test_seed_example() -> None:
    env = Envelope(Protocol.A2A, "application/json", b'{"parts":[]}')
    env2 = Envelope.deserialize(env.serialize())
    assert env2.protocol == Protocol.A2A
    assert env2.metadata is None


def test_unknown_header_keys_are_ignored() -> None:
    envelope = Envelope.deserialize(frame({"p": "mcp", "ct": "text/plain", "future": 1}, b"x"))
    assert envelope == Envelope(Protocol.MCP, "text/plain", b"x")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "too short"),
        (b"\x01\x00\x00", "too short"),
        (struct.pack("<I", 10) + b"{}", "exceeds"),
        (struct.pack("<I", 0xFFFFFFFF), "exceeds"),
        (struct.pack("<I", 0), "JSON"),
        (struct.pack("<I", 3) + b"{x}", "JSON"),
        (struct.pack("<I", 2) + b"\xff\xfe", "UTF-8"),
        (struct.pack("<I", 20000) + b"[" * 10000 + b"]" * 10000, "JSON"),
        (frame([1, 2]), "object"),
        (frame("p"), "object"),
        (frame({"ct": "text/plain"}), "'p'"),
        (frame({"p": 1, "ct": "text/plain"}), "'p'"),
        (frame({"p": "acp", "ct": "text/plain"}), "unknown envelope protocol"),
        (frame({"p": "raw"}), "'ct'"),
        (frame({"p": "raw", "ct": 3}), "'ct'"),
        (frame({"p": "raw", "ct": "text/plain", "md": [1]}), "'md'"),
        (frame({"p": "raw", "ct": "text/plain", "md": "x"}), "'md'"),
    ],
)
def test_malformed_input_raises_value_error_saying_why(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Envelope.deserialize(data)


def test_construction_checks_field_types() -> None:
    with pytest.raises(ValueError):
        Envelope("carrier-pigeon", "text/plain", b"")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Envelope(Protocol.RAW, "text/plain", "not bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Envelope(Protocol.RAW, "text/plain", b"", {1: "non-str key"})  # type: ignore[dict-item]
    assert Envelope("slim", "text/plain", bytearray(b"x")) == Envelope(Protocol.SLIM, "text/plain", b"x")  # type: ignore[arg-type]


def test_metadata_that_json_cannot_carry_is_refused_at_serialize() -> None:
    with pytest.raises(TypeError):
        Envelope(Protocol.RAW, "text/plain", b"", {"blob": b"bytes"}).serialize()
    with pytest.raises(ValueError):
        Envelope(Protocol.RAW, "text/plain", b"", {"x": float("nan")}).serialize()


def test_sender_is_not_part_of_the_wire_form_nor_of_equality() -> None:
    sent = Envelope(Protocol.MCP, "application/json", b"{}", {"k": 1})
    received = Envelope.deserialize(sent.serialize(), sender=b"alice")
    assert received.sender == b"alice" and sent.sender is None
    assert received == sent and received.serialize() == sent.serialize()
    with pytest.raises(TypeError, match="sender must be bytes"):
        Envelope(Protocol.RAW, "text/plain", b"x", sender="alice")  # type: ignore[arg-type]

"""Protocol-tagged messages, so several protocols (A2A, MCP, SLIM, plain bytes) can share one channel.

Wire format: ``[header_len: 4 bytes, unsigned little-endian][header: UTF-8 JSON object][payload]``.

The header is ``{"p": <protocol>, "ct": <content type>, "md": <metadata object>}`` with ``"md"`` present only when
the envelope has metadata. These short keys are the ones the reference Skytale SDK writes, so envelopes are
readable by either implementation. Header keys other than these three are ignored (room for later additions).

Encryption is not this module's concern: an envelope is the plaintext that a channel encrypts end to end.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["Envelope", "Protocol"]

_LENGTH = struct.Struct("<I")
_PROTOCOL_KEY = "p"
_CONTENT_TYPE_KEY = "ct"
_METADATA_KEY = "md"


class Protocol(str, Enum):
    """The protocol an envelope's payload belongs to. The value is what travels in the header."""

    RAW = "raw"
    A2A = "a2a"
    MCP = "mcp"
    SLIM = "slim"


@dataclass(frozen=True)
class Envelope:
    """A payload tagged with its protocol and MIME type, plus optional JSON-serializable metadata.

    Construction normalises and checks the fields (``protocol`` may be given as its string value, ``payload`` as
    any bytes-like object) so that every envelope that exists can be serialized, and raises ``TypeError`` or
    ``ValueError`` otherwise.

    ``sender`` is set on received envelopes only: the identity of the member that sent it, as MLS authenticated it
    (metadata such as an A2A ``agent_id`` is whatever the sender chose to write). It is not part of the wire form
    nor of equality.
    """

    protocol: Protocol
    content_type: str
    payload: bytes
    metadata: dict[str, Any] | None = None
    sender: bytes | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Frozen dataclass: normalised values are stored with object.__setattr__.
        object.__setattr__(self, "protocol", Protocol(self.protocol))
        if not isinstance(self.content_type, str):
            raise TypeError(f"content_type must be str, got {type(self.content_type).__name__}")
        if isinstance(self.payload, str) or not isinstance(self.payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"payload must be bytes, got {type(self.payload).__name__}")
        object.__setattr__(self, "payload", bytes(self.payload))
        if self.metadata is not None:
            if not isinstance(self.metadata, Mapping):
                raise TypeError(f"metadata must be a dict or None, got {type(self.metadata).__name__}")
            if not all(isinstance(key, str) for key in self.metadata):
                raise TypeError("metadata keys must be str")
            object.__setattr__(self, "metadata", dict(self.metadata))
        if self.sender is not None and not isinstance(self.sender, bytes):
            raise TypeError(f"sender must be bytes or None, got {type(self.sender).__name__}")

    def serialize(self) -> bytes:
        """The wire form: ``[header_len:4 LE][json header][payload]``.

        Raises ``TypeError``/``ValueError`` if the metadata is not JSON-serializable (e.g. holds bytes or NaN).
        """
        header: dict[str, Any] = {_PROTOCOL_KEY: self.protocol.value, _CONTENT_TYPE_KEY: self.content_type}
        if self.metadata is not None:
            header[_METADATA_KEY] = self.metadata
        encoded = json.dumps(header, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        return _LENGTH.pack(len(encoded)) + encoded + self.payload

    @classmethod
    def deserialize(cls, data: bytes, *, sender: bytes | None = None) -> Envelope:
        """Parses the wire form; ``sender`` is who sent it, when known. Raises ``ValueError`` (and nothing else) for
        anything that is not an envelope: too short, a header length past the end, a header that is not UTF-8 JSON
        or not an object, an unknown protocol, or fields of the wrong type."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"envelope must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < _LENGTH.size:
            raise ValueError(f"envelope too short: {len(data)} bytes, the length prefix alone is {_LENGTH.size}")
        (header_len,) = _LENGTH.unpack_from(data)
        available = len(data) - _LENGTH.size
        if header_len > available:
            raise ValueError(f"envelope header length {header_len} exceeds the {available} bytes that follow")
        header = _parse_header(data[_LENGTH.size : _LENGTH.size + header_len])
        return cls(
            protocol=_protocol(header),
            content_type=_content_type(header),
            payload=data[_LENGTH.size + header_len :],
            metadata=_metadata(header),
            sender=sender,
        )


def _parse_header(raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode("utf-8"))
    # UnicodeDecodeError and JSONDecodeError are ValueErrors; a deeply nested document exhausts the recursion
    # limit instead, which is still just malformed input.
    except (ValueError, RecursionError) as error:
        raise ValueError(f"envelope header is not UTF-8 JSON: {error}") from None
    if not isinstance(header, dict):
        raise ValueError(f"envelope header must be a JSON object, got {type(header).__name__}")
    return header


def _protocol(header: dict[str, Any]) -> Protocol:
    value = header.get(_PROTOCOL_KEY)
    if not isinstance(value, str):
        raise ValueError(f"envelope header field {_PROTOCOL_KEY!r} must be a string, got {value!r}")
    try:
        return Protocol(value)
    except ValueError:
        known = ", ".join(p.value for p in Protocol)
        raise ValueError(f"unknown envelope protocol {value!r} (known: {known})") from None


def _content_type(header: dict[str, Any]) -> str:
    value = header.get(_CONTENT_TYPE_KEY)
    if not isinstance(value, str):
        raise ValueError(f"envelope header field {_CONTENT_TYPE_KEY!r} must be a string, got {value!r}")
    return value


def _metadata(header: dict[str, Any]) -> dict[str, Any] | None:
    value = header.get(_METADATA_KEY)
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"envelope header field {_METADATA_KEY!r} must be an object, got {type(value).__name__}")
    return value

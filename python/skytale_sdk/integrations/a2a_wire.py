"""The A2A wire format on a Skytale channel (docs/integrations.md, "Wire format" and "A2A"), shared by the
adapter (:mod:`skytale_sdk.integrations.a2a`) and the task exchange (:mod:`skytale_sdk.integrations.a2a_rpc`).

Every A2A envelope is ``Protocol.A2A`` with the JSON form of one ``a2a-sdk`` protobuf object
(``google.protobuf.json_format``): content type ``application/json`` is always an A2A ``Message``;
``application/a2a+json; type=<Name>`` is any other A2A object (requests, responses, stream events).
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

try:
    from a2a.types import Message
    from google.protobuf import json_format
    from google.protobuf.message import Message as ProtoMessage
except ImportError as _error:  # pragma: no cover - exercised by a subprocess test without a2a-sdk
    raise ImportError(
        "skytale_sdk.integrations.a2a needs the a2a-sdk package: pip install '.[a2a]' in the Skytale source tree"
    ) from _error

from .._stats import ReaderStats
from ..envelope import Envelope, Protocol

__all__ = [
    "A2A_PROTOCOL_VERSION",
    "DEFAULT_ORG",
    "EXTENSION_URI",
    "MESSAGE_CONTENT_TYPE",
    "PROTOCOL_BINDING",
    "WIRE_VERSION",
    "OBJECT_CONTENT_TYPE",
    "ReaderTally",
    "classify",
    "decode_object",
    "encode_message",
    "encode_object",
    "object_type",
    "sender_of",
]

#: The org of context channels unless an adapter is given another: the seed's literal ``org/a2a/{context_id}``,
#: so agents on other SDKs that follow the seed find the same channel for the same context.
DEFAULT_ORG = "org"
#: URI of the AgentCard extension that advertises this transport (``SkytaleA2AAdapter.agent_card_extension``).
EXTENSION_URI = "https://skytale.sh/extensions/a2a/mls-channel/v1"
#: ``AgentInterface.protocol_binding`` of an A2A endpoint reached over a Skytale channel.
PROTOCOL_BINDING = "SKYTALE"
#: Version of this wire format, advertised in the AgentCard extension.
WIRE_VERSION = "1"
#: A2A protocol version of the payloads (the ``a2a-sdk`` 1.x protobuf JSON form).
A2A_PROTOCOL_VERSION = "1.0"

#: Content type of an envelope holding one A2A ``Message``.
MESSAGE_CONTENT_TYPE = "application/json"
#: Media type of an envelope holding any other A2A object; the ``type`` parameter names the protobuf message.
OBJECT_CONTENT_TYPE = "application/a2a+json"

ProtoT = TypeVar("ProtoT", bound=ProtoMessage)

logger: logging.Logger = logging.getLogger("skytale_sdk.integrations.a2a")


class ReaderTally(ReaderStats):
    """The :class:`~skytale_sdk._stats.ReaderStats` of one A2A reader, each count also logged (logger
    ``skytale_sdk.integrations.a2a``). ``skipped``: messages meant for someone else (another protocol, A2A traffic
    of another kind, replies to other requests), logged at debug level. ``malformed``: messages that claim to be
    A2A but cannot be read, logged as warnings.
    """

    @property
    def skipped(self) -> int:
        return self.total_skipped()

    @property
    def malformed(self) -> int:
        return self.total_malformed()

    def skip(self, channel: str, protocol: str, reason: str) -> None:
        """Counts a message of ``protocol`` (wire value) that was not for this reader, and logs ``reason``."""
        self.count_skipped(protocol)
        logger.debug("%s: skipped a message: %s", channel, reason)

    def reject(self, channel: str, reason: str) -> None:
        self.count_malformed()
        logger.warning("%s: dropped a malformed A2A message: %s", channel, reason)


class TalliedReader:
    """The ``skipped`` and ``malformed`` counts of an A2A reader that keeps its :class:`ReaderTally` in
    ``_tally``."""

    _tally: ReaderTally

    @property
    def skipped(self) -> int:
        """Messages passed over because they were meant for someone else (another protocol, A2A traffic of
        another kind, replies to other requests); logged at debug level."""
        return self._tally.skipped

    @property
    def malformed(self) -> int:
        """Messages that claimed to be A2A but could not be read; logged as warnings."""
        return self._tally.malformed


def encode_message(message: Message, agent_id: str) -> Envelope:
    """The envelope of an A2A ``Message`` sent by ``agent_id``. Raises ``ValueError`` if the message cannot be
    written as JSON (e.g. a data part holding NaN)."""
    return Envelope(Protocol.A2A, MESSAGE_CONTENT_TYPE, _to_json(message), {"agent_id": agent_id})


def encode_object(obj: ProtoMessage, metadata: dict[str, Any]) -> Envelope:
    """The envelope of any other A2A object: content type ``application/a2a+json; type=<its protobuf name>``."""
    content_type = f"{OBJECT_CONTENT_TYPE}; type={obj.DESCRIPTOR.name}"
    return Envelope(Protocol.A2A, content_type, _to_json(obj), metadata)


def object_type(content_type: str) -> str | None:
    """The ``type`` parameter of an ``application/a2a+json`` content type; ``None`` for any other content type
    (``ValueError`` if it is ``application/a2a+json`` without a type)."""
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != OBJECT_CONTENT_TYPE:
        return None
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "type" and value.strip():
            return value.strip().strip('"')
    raise ValueError(f"content type {content_type!r} has no type parameter")


def decode_object(payload: bytes, message_type: type[ProtoT]) -> ProtoT:
    """Parses the JSON form of ``message_type``; ``ValueError`` names what is wrong. Unknown fields are
    ignored, as the a2a-sdk's own transports do, so newer senders stay readable."""
    try:
        return json_format.Parse(payload.decode("utf-8"), message_type(), ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"not a {message_type.DESCRIPTOR.name} in A2A JSON form: {error}") from None


def sender_of(envelope: Envelope) -> str:
    """The ``agent_id`` the sender put in the envelope's metadata (``ValueError`` if there is none)."""
    agent_id = (envelope.metadata or {}).get("agent_id")
    if not isinstance(agent_id, str):
        raise ValueError(f"envelope metadata has no agent_id string (metadata: {envelope.metadata!r})")
    return agent_id


def classify(envelope: Envelope) -> tuple[bool, str | None]:
    """``(is_a2a, object type)``: whether the envelope is A2A at all, and the ``type`` of an
    ``application/a2a+json`` one (``None`` for a ``Message``). ``ValueError`` for an A2A envelope whose content
    type is neither."""
    if envelope.protocol is not Protocol.A2A:
        return False, None
    if envelope.content_type.split(";")[0].strip().lower() == MESSAGE_CONTENT_TYPE:
        return True, None
    kind = object_type(envelope.content_type)
    if kind is None:
        raise ValueError(f"unknown A2A content type {envelope.content_type!r}")
    return True, kind


def _to_json(obj: ProtoMessage) -> bytes:
    try:
        return json_format.MessageToJson(obj, indent=None).encode("utf-8")
    except (ValueError, json_format.Error) as error:
        raise ValueError(f"cannot write the A2A {obj.DESCRIPTOR.name} as JSON: {error}") from None

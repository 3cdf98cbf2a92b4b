"""The bridge's translations (docs/integrations.md, "Cross-protocol bridge"), as pure functions of an envelope:
:func:`translate` turns a source envelope into the target protocol's envelope or raises :class:`Untranslatable`
saying why. No threads, no channels: :mod:`skytale_sdk.bridge` runs them in its routes.

A2A messages are handled in their JSON form (``json_format.MessageToDict``) and validated by ``a2a-sdk``; MCP
messages by the ``mcp`` package. Both are imported only when a translation needs them (:func:`require_extras`).
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

from ._received import RAW_CONTENT_TYPE
from .envelope import Envelope, Protocol

__all__ = [
    "A2A_KEY",
    "AGENT_ID_KEY",
    "BRIDGEABLE",
    "BRIDGED_FROM_KEY",
    "DESTINATION_KEY",
    "INTERNAL_ERROR",
    "MALFORMED",
    "MCP_KEY",
    "NO_MAPPING",
    "UNTRANSLATABLE_REASONS",
    "WRONG_PROTOCOL",
    "Hop",
    "Untranslatable",
    "bridged_from",
    "integral_numbers",
    "media_type",
    "require_extras",
    "slim_as_part",
    "translate",
]

# Envelope metadata keys the bridge writes. Every other key of a source envelope's metadata (e.g. A2A's
# "agent_id") is copied to the translated envelope unchanged.
BRIDGED_FROM_KEY = "bridged_from"
DESTINATION_KEY = "destination"
AGENT_ID_KEY = "agent_id"
A2A_KEY = "a2a"
MCP_KEY = "mcp"
_MANAGED_KEYS = frozenset({BRIDGED_FROM_KEY, DESTINATION_KEY, A2A_KEY, MCP_KEY})

JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
URL_CONTENT_TYPE = "text/uri-list"
A2A_OBJECT_MEDIA_TYPE = "application/a2a+json"
#: How a whole A2A Message travels as a SLIM payload (plain "application/json" on SLIM means any JSON).
SLIM_A2A_MESSAGE_CONTENT_TYPE = "application/a2a+json; type=Message"
#: The MCP notification an A2A text message becomes (MCP's logging notification: level, logger, data).
MCP_TEXT_METHOD = "notifications/message"

WRONG_PROTOCOL = "wrong_protocol"
MALFORMED = "malformed"
NO_MAPPING = "no_mapping"
INTERNAL_ERROR = "internal_error"
#: Why a message was not translated; the keys of ``RouteStats.untranslatable``.
UNTRANSLATABLE_REASONS = (WRONG_PROTOCOL, MALFORMED, NO_MAPPING, INTERNAL_ERROR)

_A2A_CONTENT_KINDS = ("text", "raw", "data", "url")
# The part kind a single-part A2A message becomes on SLIM, and the content type used when the part names none.
_DEFAULT_CONTENT_TYPES = {
    "text": TEXT_CONTENT_TYPE,
    "raw": RAW_CONTENT_TYPE,
    "data": JSON_CONTENT_TYPE,
    "url": URL_CONTENT_TYPE,
}
# The largest integer a JSON double (A2A data parts are protobuf Values) holds exactly.
_MAX_EXACT_INTEGER = 2**53


class Untranslatable(Exception):
    """A message the route cannot translate; ``reason`` is one of ``UNTRANSLATABLE_REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Hop:
    """Where a translated message goes: the route's ``source`` and ``target`` channels, and the ``agent_id`` of
    A2A messages the bridge creates when the source names none."""

    source: str
    target: str
    agent_id: str

    @property
    def context_id(self) -> str:
        """The A2A contextId of a new message on ``target``: its last name component (``org/a2a/{context_id}``)."""
        return self.target.rsplit("/", 1)[-1]


# Optional dependencies


def _a2a() -> tuple[Any, Any]:
    """``(a2a.types, google.protobuf.json_format)``, or an ImportError naming the extra."""
    try:
        from a2a import types as a2a_types
        from google.protobuf import json_format
    except ImportError as error:
        raise ImportError(
            "the bridge's A2A translations need the a2a-sdk package: pip install '.[a2a]' in the Skytale source tree "
            f"({error})"
        ) from error
    return a2a_types, json_format


def _jsonrpc_adapter() -> Any:
    """The ``mcp`` package's validator for one JSON-RPC message, or an ImportError naming the extra."""
    try:
        from mcp.types import jsonrpc_message_adapter
    except ImportError as error:
        raise ImportError(
            "the bridge's MCP translations need the mcp package: pip install '.[mcp]' in the Skytale source tree "
            f"({error})"
        ) from error
    return jsonrpc_message_adapter


def require_extras(source_protocol: Protocol, target_protocol: Protocol) -> None:
    """Imports what translating between the two protocols needs (nothing for the same protocol); an ImportError
    naming the extra (``[a2a]``, ``[mcp]``) if a package is missing."""
    if source_protocol is target_protocol:
        return
    if Protocol.A2A in (source_protocol, target_protocol):
        _a2a()
    if Protocol.MCP in (source_protocol, target_protocol):
        _jsonrpc_adapter()


# Content types and JSON


def media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``("type/subtype", {param: value})`` of a MIME content type, type and parameter names lowercased."""
    base, *params = content_type.split(";")
    parsed: dict[str, str] = {}
    for param in params:
        name, _, value = param.partition("=")
        parsed[name.strip().lower()] = value.strip().strip('"')
    return base.strip().lower(), parsed


def _is_json_media(media: str) -> bool:
    return media == JSON_CONTENT_TYPE or media.endswith("+json")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def integral_numbers(value: Any) -> Any:
    """``value`` with every integral float turned into an int. A2A data parts hold JSON numbers as doubles, so an
    id ``1`` comes back as ``1.0``, which JSON-RPC (and the ``mcp`` package) would not take as the same id."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_EXACT_INTEGER:
        return int(value)
    if isinstance(value, list):
        return [integral_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: integral_numbers(item) for key, item in value.items()}
    return value


# A2A messages, handled in their JSON form (json_format.MessageToDict) and validated by a2a-sdk


def _read_a2a_envelope(envelope: Envelope) -> dict[str, Any] | None:
    """The A2A Message an A2A envelope holds, in JSON form; ``None`` for an A2A object (``application/a2a+json;
    type=<T>``, checked by the caller)."""
    media = media_type(envelope.content_type)[0]
    if media == A2A_OBJECT_MEDIA_TYPE:
        return None
    if media != JSON_CONTENT_TYPE:
        expected = f"{JSON_CONTENT_TYPE} nor {A2A_OBJECT_MEDIA_TYPE}"
        raise Untranslatable(MALFORMED, f"A2A content type {envelope.content_type!r} is neither {expected}")
    return _read_a2a_message(envelope.payload)


def _read_a2a_message(payload: bytes) -> dict[str, Any]:
    a2a_types, json_format = _a2a()
    try:
        message = json_format.Parse(payload, a2a_types.Message())
    except (json_format.Error, ValueError, TypeError, RecursionError) as error:
        raise Untranslatable(MALFORMED, f"payload is not an A2A Message: {error}") from None
    return json_format.MessageToDict(message)


def _a2a_message_payload(message: dict[str, Any]) -> bytes:
    """The A2A wire form (``MessageToJson``) of a message given in JSON form; ``ValueError`` if it is not one."""
    a2a_types, json_format = _a2a()
    try:
        parsed = json_format.ParseDict(message, a2a_types.Message())
        return json_format.MessageToJson(parsed, indent=None).encode("utf-8")
    except (json_format.Error, TypeError, ValueError, OverflowError) as error:
        # E.g. a data number that is not a finite double: a protobuf Value cannot hold it.
        raise ValueError(f"not an A2A Message: {error}") from None


def _validate_a2a_object(content_type: str, payload: bytes) -> None:
    """Checks an ``application/a2a+json; type=<Name>`` payload against a2a-sdk's type ``Name``."""
    a2a_types, json_format = _a2a()
    type_name = media_type(content_type)[1].get("type", "")
    cls = getattr(a2a_types, type_name, None) if type_name.isidentifier() else None
    if not isinstance(cls, type) or not hasattr(cls, "DESCRIPTOR"):
        raise Untranslatable(MALFORMED, f"content type {content_type!r} names no A2A type")
    try:
        json_format.Parse(payload, cls())
    except (json_format.Error, ValueError, TypeError, RecursionError) as error:
        raise Untranslatable(MALFORMED, f"payload is not an A2A {type_name}: {error}") from None


def _is_a2a_object(content_type: str) -> bool:
    return media_type(content_type)[0] == A2A_OBJECT_MEDIA_TYPE


def _part_kind(part: dict[str, Any]) -> str | None:
    return next((kind for kind in _A2A_CONTENT_KINDS if kind in part), None)


def _new_a2a_message(part: dict[str, Any], hop: Hop) -> bytes:
    message = {"messageId": str(uuid.uuid4()), "contextId": hop.context_id, "role": "ROLE_AGENT", "parts": [part]}
    return _a2a_message_payload(message)


# Skeletons: what an A2A message keeps in the "a2a" metadata when its content travels in another protocol's payload


def _skeleton(message: dict[str, Any], carried: Sequence[int]) -> dict[str, Any]:
    """``message`` with the content of the parts at ``carried`` replaced by ``null``: everything the target
    payload does not hold, so the way back can rebuild the message exactly."""
    skeleton = copy.deepcopy(message)
    for index in carried:
        part = skeleton["parts"][index]
        part[_part_kind(part)] = None
    return skeleton


def _restore(skeleton: Any, fill: Callable[[list[str]], list[Any] | None]) -> bytes | None:
    """The A2A message a skeleton was cut from, as its wire form, or ``None`` if there is no usable skeleton.

    ``fill`` gets the kinds of the skeleton's empty contents (e.g. ``["text"]``) and returns their values from the
    source payload, or ``None`` if the payload does not fit them (the skeleton then does not belong to it)."""
    if not isinstance(skeleton, dict) or not isinstance(skeleton.get("parts"), list):
        return None
    message = copy.deepcopy(skeleton)
    holes = [
        (part, kind)
        for part in message["parts"]
        if isinstance(part, dict)
        for kind in _A2A_CONTENT_KINDS
        if kind in part and part[kind] is None
    ]
    values = fill([kind for _, kind in holes]) if holes else None
    if values is None or len(values) != len(holes):
        return None
    for (part, kind), value in zip(holes, values):
        part[kind] = value
    try:
        return _a2a_message_payload(message)
    except ValueError:
        return None


# SLIM payloads as A2A part contents and back


def _part_as_slim(part: dict[str, Any], kind: str) -> tuple[str, bytes]:
    """``(content_type, payload)`` of a single A2A part on SLIM."""
    media_type = part.get("mediaType") or _DEFAULT_CONTENT_TYPES[kind]
    if kind == "text":
        return media_type, part["text"].encode("utf-8")
    if kind == "raw":
        return media_type, base64.b64decode(part["raw"])
    if kind == "data":
        return media_type, _json_bytes(integral_numbers(part["data"]))
    # A URL's mediaType describes the resource it points to, not the payload; it stays in the skeleton.
    return URL_CONTENT_TYPE, part["url"].encode("utf-8")


def _slim_content(kind: str, payload: bytes) -> Any:
    """The content of an A2A part of ``kind`` (JSON form) holding a SLIM payload; ``ValueError`` if it cannot."""
    if kind == "raw":
        return base64.b64encode(payload).decode("ascii")
    text = payload.decode("utf-8")
    return json.loads(text, parse_constant=_reject_constant) if kind == "data" else text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def slim_as_part(content_type: str, payload: bytes) -> dict[str, Any]:
    """A SLIM payload as a new A2A part: text for text content types, data for JSON, url for a one-line
    ``text/uri-list``, raw otherwise (and whenever the bytes are not what the content type claims). The content
    type becomes the part's mediaType unless it is the kind's default."""
    media, params = media_type(content_type)
    charset = params.get("charset", "utf-8").lower()
    kind = "raw"
    if media == URL_CONTENT_TYPE:
        kind = "url"
    elif _is_json_media(media):
        kind = "data"
    elif (media.startswith("text/") or "charset" in params) and charset in ("utf-8", "utf8", "us-ascii"):
        kind = "text"
    try:
        content = _slim_content("text" if kind == "url" else kind, payload)
    except ValueError:
        kind, content = "raw", _slim_content("raw", payload)
    if kind == "url" and (len(content.split()) != 1 or content.startswith("#")):
        kind = "text"
    part: dict[str, Any] = {kind: content.strip() if kind == "url" else content}
    if content_type != _DEFAULT_CONTENT_TYPES[kind]:
        part["mediaType"] = content_type
    return part


# JSON-RPC (MCP)


def _read_jsonrpc(payload: bytes | Any, reason: str) -> Any:
    """The ``mcp`` package's model of one JSON-RPC message (bytes, or an already parsed JSON value)."""
    adapter = _jsonrpc_adapter()
    try:
        if isinstance(payload, bytes):
            return adapter.validate_json(payload)
        return adapter.validate_python(payload)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise Untranslatable(reason, f"not one JSON-RPC 2.0 message ({_first_problem(error)})") from None


def _first_problem(error: ValueError) -> str:
    """The first thing pydantic found wrong, e.g. ``JSONRPCRequest.id: Field required``."""
    problems: list[dict[str, Any]] = getattr(error, "errors", lambda: [])()
    if not problems:
        return str(error).splitlines()[0]
    location = ".".join(str(step) for step in problems[0].get("loc", ()))
    return f"{location}: {problems[0].get('msg')}" if location else str(problems[0].get("msg"))


def _jsonrpc_bytes(message: Any) -> bytes:
    """The MCP wire form: as the ``mcp`` package writes a JSONRPCMessage (``exclude_none``), except that an error
    response to an unknown request keeps ``"id": null``, which JSON-RPC requires and ``exclude_none`` drops."""
    data = _jsonrpc_adapter().dump_python(message, mode="json", by_alias=True, exclude_none=True)
    if hasattr(message, "error") and message.id is None:
        data["id"] = None
    return _json_bytes(data)


# Translations: each takes the source envelope and returns (content_type, payload, metadata to add)

Translated = tuple[str, bytes, dict[str, Any]]


def _pass_through(envelope: Envelope, hop: Hop) -> Translated:
    return envelope.content_type, envelope.payload, {}


def _a2a_to_slim(envelope: Envelope, hop: Hop) -> Translated:
    message = _read_a2a_envelope(envelope)
    if message is None:
        _validate_a2a_object(envelope.content_type, envelope.payload)
        return envelope.content_type, envelope.payload, {}
    parts = message.get("parts", [])
    kind = _part_kind(parts[0]) if len(parts) == 1 else None
    if kind is None:
        return SLIM_A2A_MESSAGE_CONTENT_TYPE, envelope.payload, {}
    content_type, payload = _part_as_slim(parts[0], kind)
    return content_type, payload, {A2A_KEY: _skeleton(message, [0])}


def _slim_to_a2a(envelope: Envelope, hop: Hop) -> Translated:
    if envelope.protocol is Protocol.SLIM and _is_a2a_object(envelope.content_type):
        _validate_a2a_object(envelope.content_type, envelope.payload)
        if media_type(envelope.content_type)[1].get("type") == "Message":
            return JSON_CONTENT_TYPE, envelope.payload, {}
        return envelope.content_type, envelope.payload, {}

    def fill(kinds: list[str]) -> list[Any] | None:
        if len(kinds) != 1:
            return None
        try:
            return [_slim_content(kinds[0], envelope.payload)]
        except ValueError:
            return None

    restored = _restore((envelope.metadata or {}).get(A2A_KEY), fill)
    if restored is not None:
        return JSON_CONTENT_TYPE, restored, {}
    part = slim_as_part(envelope.content_type, envelope.payload)
    try:
        return JSON_CONTENT_TYPE, _new_a2a_message(part, hop), {}
    except ValueError:  # JSON an A2A data part cannot hold (e.g. a number beyond a double): keep the bytes instead
        part = {"raw": _slim_content("raw", envelope.payload), "mediaType": envelope.content_type}
        return JSON_CONTENT_TYPE, _new_a2a_message(part, hop), {}


def _mcp_to_slim(envelope: Envelope, hop: Hop) -> Translated:
    message = _read_jsonrpc(envelope.payload, MALFORMED)
    summary = {key: getattr(message, key) for key in ("method", "id") if hasattr(message, key)}
    return JSON_CONTENT_TYPE, envelope.payload, {MCP_KEY: summary}


def _slim_to_mcp(envelope: Envelope, hop: Hop) -> Translated:
    return JSON_CONTENT_TYPE, _jsonrpc_bytes(_read_jsonrpc(envelope.payload, NO_MAPPING)), {}


def _a2a_to_mcp(envelope: Envelope, hop: Hop) -> Translated:
    message = _read_a2a_envelope(envelope)
    if message is None:
        raise Untranslatable(NO_MAPPING, f"A2A objects ({envelope.content_type}) have no MCP form")
    parts = message.get("parts", [])
    kinds = [_part_kind(part) for part in parts]
    if kinds == ["data"]:
        rpc = _read_jsonrpc(integral_numbers(parts[0]["data"]), NO_MAPPING)
        return JSON_CONTENT_TYPE, _jsonrpc_bytes(rpc), {A2A_KEY: _skeleton(message, [0])}
    if kinds and all(kind == "text" for kind in kinds):
        texts = [part["text"] for part in parts]
        params: dict[str, Any] = {"level": "info", "data": texts[0] if len(texts) == 1 else texts}
        sender = (envelope.metadata or {}).get(AGENT_ID_KEY)
        if isinstance(sender, str):
            params["logger"] = sender
        notification = {"jsonrpc": "2.0", "method": MCP_TEXT_METHOD, "params": params}
        rpc = _read_jsonrpc(notification, INTERNAL_ERROR)
        return JSON_CONTENT_TYPE, _jsonrpc_bytes(rpc), {A2A_KEY: _skeleton(message, range(len(parts)))}
    raise Untranslatable(
        NO_MAPPING, "only a message of one data part holding a JSON-RPC message, or of text parts, maps to MCP"
    )


def _mcp_to_a2a(envelope: Envelope, hop: Hop) -> Translated:
    rpc = json.loads(_jsonrpc_bytes(_read_jsonrpc(envelope.payload, MALFORMED)))

    def fill(kinds: list[str]) -> list[Any] | None:
        if kinds == ["data"]:
            return [rpc]
        data = rpc.get("params", {}).get("data") if rpc.get("method") == MCP_TEXT_METHOD else None
        texts = [data] if isinstance(data, str) else data
        if kinds and set(kinds) == {"text"} and isinstance(texts, list) and all(isinstance(t, str) for t in texts):
            return texts
        return None

    restored = _restore((envelope.metadata or {}).get(A2A_KEY), fill)
    if restored is not None:
        return JSON_CONTENT_TYPE, restored, {}
    return JSON_CONTENT_TYPE, _new_a2a_message({"data": rpc}, hop), {}


_TRANSLATIONS: dict[tuple[Protocol, Protocol], Callable[[Envelope, Hop], Translated]] = {
    (Protocol.A2A, Protocol.SLIM): _a2a_to_slim,
    (Protocol.SLIM, Protocol.A2A): _slim_to_a2a,
    (Protocol.MCP, Protocol.SLIM): _mcp_to_slim,
    (Protocol.SLIM, Protocol.MCP): _slim_to_mcp,
    (Protocol.A2A, Protocol.MCP): _a2a_to_mcp,
    (Protocol.MCP, Protocol.A2A): _mcp_to_a2a,
}
#: The protocols a route reads or writes (a SLIM route also reads RAW messages).
BRIDGEABLE = (Protocol.A2A, Protocol.MCP, Protocol.SLIM)


def _translated_metadata(
    envelope: Envelope, source_protocol: Protocol, target_protocol: Protocol, hop: Hop, added: dict[str, Any]
) -> dict[str, Any]:
    source = envelope.metadata or {}
    if source_protocol is target_protocol:
        metadata = dict(source)
    else:
        metadata = {key: value for key, value in source.items() if key not in _MANAGED_KEYS}
    if target_protocol is Protocol.SLIM:
        metadata[DESTINATION_KEY] = hop.target
    if target_protocol is Protocol.A2A and not isinstance(metadata.get(AGENT_ID_KEY), str):
        metadata[AGENT_ID_KEY] = hop.agent_id
    metadata.update(added)
    metadata[BRIDGED_FROM_KEY] = bridged_from(envelope) + [hop.source]
    return metadata


def bridged_from(envelope: Envelope) -> list[str]:
    """The channels an envelope was bridged from, oldest first (``[]`` if it was never bridged)."""
    path = (envelope.metadata or {}).get(BRIDGED_FROM_KEY, [])
    if not isinstance(path, list) or not all(isinstance(channel, str) for channel in path):
        raise Untranslatable(MALFORMED, f"metadata {BRIDGED_FROM_KEY!r} must be a list of channel names, got {path!r}")
    return path


def translate(envelope: Envelope, source_protocol: Protocol, target_protocol: Protocol, hop: Hop) -> Envelope:
    """``envelope`` read as ``source_protocol`` and written as ``target_protocol`` for ``hop``, with its metadata
    carried over; :class:`Untranslatable` saying why not."""
    accepted = (Protocol.SLIM, Protocol.RAW) if source_protocol is Protocol.SLIM else (source_protocol,)
    if envelope.protocol not in accepted:
        raise Untranslatable(
            WRONG_PROTOCOL, f"the route reads {source_protocol.value} messages, this one is {envelope.protocol.value}"
        )
    translation = _TRANSLATIONS.get((source_protocol, target_protocol), _pass_through)
    content_type, payload, added = translation(envelope, hop)
    metadata = _translated_metadata(envelope, source_protocol, target_protocol, hop, added)
    return Envelope(target_protocol, content_type, payload, metadata)

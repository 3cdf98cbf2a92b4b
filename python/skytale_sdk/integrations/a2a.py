"""A2A (Agent2Agent) over encrypted Skytale channels, on the real ``a2a-sdk`` package (extra ``[a2a]``).

Each A2A context is one channel, ``{org}/a2a/{context_id}``. :class:`SkytaleA2AAdapter` sends and receives A2A
``Message`` objects on it (the seed API); :func:`create_client` and :class:`SkytaleA2AServer`
(:mod:`skytale_sdk.integrations.a2a_rpc`) let an ``a2a-sdk`` client and an ``a2a-sdk`` request handler exchange
tasks over the same channel instead of HTTP. Wire format: docs/integrations.md.

Without ``a2a-sdk`` installed, importing this module raises ``ImportError`` saying
``pip install '.[a2a]'``.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Union, cast

# a2a_wire comes first: it raises the ImportError that names the extra when a2a-sdk is missing.
from .a2a_wire import (  # isort: skip
    A2A_PROTOCOL_VERSION,
    DEFAULT_ORG,
    EXTENSION_URI,
    MESSAGE_CONTENT_TYPE,
    PROTOCOL_BINDING,
    WIRE_VERSION,
    ReaderTally,
    TalliedReader,
    classify,
    decode_object,
    encode_message,
    sender_of,
)

from a2a.types import AgentExtension, AgentInterface, Message, Part, Role
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from .._closing import Closing
from ..envelope import Envelope
from ..errors import ChannelError
from ..manager import ChannelView, SkytaleChannelManager
from .a2a_rpc import SkytaleA2AServer, SkytaleClientTransport, create_client

__all__ = [
    "DEFAULT_ORG",
    "EXTENSION_URI",
    "PROTOCOL_BINDING",
    "PartLike",
    "ReceivedMessage",
    "SkytaleA2AAdapter",
    "SkytaleA2AServer",
    "SkytaleClientTransport",
    "create_client",
    "to_part",
    "to_parts",
]

#: A part as ``send_message`` takes it: an ``a2a.types.Part``, the seed's dict (``{"type": "text", "text": ...}``)
#: or the A2A JSON form (``{"text": ...}``).
PartLike = Union[Part, Mapping[str, Any]]

_ROLES = {"user": Role.ROLE_USER, "agent": Role.ROLE_AGENT}


class ReceivedMessage(NamedTuple):
    """An A2A message read from a context, with the ``agent_id`` its sender declared and ``sender``, the member
    identity MLS authenticated. Any member can write any ``agent_id``; check ``sender`` before trusting it."""

    agent_id: str
    message: Message
    sender: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        """The message's A2A JSON form (``MessageToDict``: camelCase keys, e.g. ``messageId``, ``parts``) plus
        ``"agent_id"``: what :meth:`SkytaleA2AAdapter.receive_messages` returns."""
        return {**json_format.MessageToDict(self.message), "agent_id": self.agent_id}


class SkytaleA2AAdapter(TalliedReader, Closing):
    """A2A messages on Skytale channels, one channel per A2A context.

    ``org`` is the first component of the context channels (``{org}/a2a/{context_id}``). It defaults to the
    seed's literal ``"org"`` rather than to the org of the API key on purpose: a context's channel name is what
    every participant must agree on, and participants admitted by invite hold keys of other orgs. Pass the org
    whose API key creates the contexts (``skytale dev`` uses ``myorg``).

    The adapter reads each context through its own :class:`~skytale_sdk.ChannelView`, opened by
    :meth:`create_context`, :meth:`join_context` or :meth:`attach_context`, so it never takes messages meant for
    ``manager.receive()`` or for other readers. Messages on the channel that are not A2A messages are skipped and
    counted in :attr:`skipped`; A2A messages that cannot be read are logged as warnings (logger
    ``skytale_sdk.integrations.a2a``) and counted in :attr:`malformed`.
    """

    def __init__(self, manager: SkytaleChannelManager, agent_id: str, *, org: str = DEFAULT_ORG) -> None:
        if not isinstance(agent_id, str) or not agent_id:
            raise ValueError(f"agent_id must be a non-empty str, got {agent_id!r}")
        if not isinstance(org, str) or not org or "/" in org:
            raise ValueError(f"org must be one channel name component (non-empty, no '/'), got {org!r}")
        self._manager = manager
        self._agent_id = agent_id
        self._org = org
        self._views: dict[str, ChannelView] = {}
        self._tally = ReaderTally()

    @property
    def manager(self) -> SkytaleChannelManager:
        return self._manager

    @property
    def agent_id(self) -> str:
        return self._agent_id

    @property
    def org(self) -> str:
        return self._org

    def channel_name(self, context_id: str) -> str:
        """The channel of an A2A context: ``{org}/a2a/{context_id}``."""
        if not isinstance(context_id, str) or not context_id or "/" in context_id:
            raise ValueError(f"context_id must be a non-empty str without '/', got {context_id!r}")
        return f"{self._org}/a2a/{context_id}"

    # Contexts

    def create_context(self, context_id: str) -> str:
        """Creates the context's channel (this agent is its only member) and starts reading it; returns the
        channel name, for ``manager.invite`` or ``manager.add_member``."""
        channel = self.channel_name(context_id)
        self._manager.create(channel)
        return self._attach(context_id, channel)

    def join_context(self, context_id: str, welcome: bytes) -> str:
        """Joins the context's channel with the MLS Welcome a member's ``add_member`` returned, and starts reading
        it; returns the channel name."""
        channel = self.channel_name(context_id)
        self._manager.join(channel, welcome)
        return self._attach(context_id, channel)

    def attach_context(self, context_id: str) -> str:
        """Starts reading a context whose channel the manager already has (joined with ``join_with_token``, or
        reopened after a restart); returns the channel name. Messages that arrived before are not read."""
        return self._attach(context_id, self.channel_name(context_id))

    def _attach(self, context_id: str, channel: str) -> str:
        if context_id not in self._views:
            self._views[context_id] = self._manager.view(channel)
        return channel

    # Messages

    def send_message(
        self,
        context_id: str,
        parts: Sequence[PartLike],
        *,
        role: str | int = "user",
        task_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        """Sends one A2A ``Message`` with ``parts`` to the context and returns it (its ``message_id`` is fresh).

        ``parts``: ``a2a.types.Part`` objects or dicts (see :func:`to_part`); ``role``: ``"user"`` or
        ``"agent"`` (or an ``a2a.types.Role``); ``metadata`` goes into ``Message.metadata``, where the adapter
        also sets ``"agent_id"``. Raises ``ValueError`` naming the bad part or argument before anything is sent;
        returns once the relay has stored the message.
        """
        channel = self.channel_name(context_id)
        message = Message(
            message_id=str(uuid.uuid4()),
            context_id=context_id,
            role=_role(role),
            parts=to_parts(parts),
        )
        if task_id is not None:
            message.task_id = task_id
        message.metadata.update({**_metadata(metadata), "agent_id": self._agent_id})
        self._manager.send_envelope(channel, encode_message(message, self._agent_id))
        return message

    def receive(self, context_id: str, timeout: float = 5.0) -> list[ReceivedMessage]:
        """The A2A messages that arrived on the context since the last call, oldest first, as
        ``a2a.types.Message`` objects with the ``agent_id`` their sender declared and the ``sender`` MLS
        authenticated (see :class:`ReceivedMessage`). Waits up to ``timeout`` seconds while there
        is none (other traffic on the channel does not end the wait) and returns ``[]`` if none came."""
        view = self._views.get(context_id)
        if view is None:
            raise ChannelError(
                f"channel error: A2A context {context_id!r} is not open in this adapter "
                "(create_context, join_context or attach_context first)"
            )
        deadline = time.monotonic() + timeout
        while True:
            received = [
                message
                for envelope in view.receive_envelopes(max(deadline - time.monotonic(), 0.0))
                if (message := self._read(view.channel_name, envelope)) is not None
            ]
            if received or time.monotonic() >= deadline:
                return received

    def receive_messages(self, context_id: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """As :meth:`receive`, each message as a dict: its A2A JSON form (``MessageToDict``, camelCase keys:
        ``messageId``, ``contextId``, ``role`` as ``"ROLE_USER"``/``"ROLE_AGENT"``, ``parts`` such as
        ``{"text": ...}`` or ``{"data": ...}``, ``metadata``) plus ``"agent_id"``, the sender's."""
        return [received.to_dict() for received in self.receive(context_id, timeout)]

    def _read(self, channel: str, envelope: Envelope) -> ReceivedMessage | None:
        try:
            is_a2a, object_type = classify(envelope)
            if not is_a2a:
                self._tally.skip(channel, envelope.protocol.value, f"protocol {envelope.protocol.value}, not A2A")
                return None
            if object_type is not None:
                self._tally.skip(channel, envelope.protocol.value, f"A2A {object_type}, not a Message")
                return None
            return ReceivedMessage(sender_of(envelope), decode_object(envelope.payload, Message), envelope.sender)
        except ValueError as error:
            self._tally.reject(channel, str(error))
            return None

    # AgentCard

    def agent_card_extension(self) -> AgentExtension:
        """The ``AgentExtension`` that tells A2A peers this agent is reachable over Skytale channels: put it in
        ``AgentCard.capabilities.extensions``. ``json_format.MessageToDict`` gives its dict form."""
        return AgentExtension(
            uri=EXTENSION_URI,
            description="A2A over end-to-end encrypted Skytale channels (MLS, RFC 9420)",
            required=False,
            params={
                "agent_id": self._agent_id,
                "channel_pattern": f"{self._org}/a2a/{{context_id}}",
                "protocol_binding": PROTOCOL_BINDING,
                "message_content_type": MESSAGE_CONTENT_TYPE,
                "envelope_protocol": "a2a",
                "wire_version": WIRE_VERSION,
                "a2a_protocol_version": A2A_PROTOCOL_VERSION,
            },
        )

    def agent_interface(self, context_id: str) -> AgentInterface:
        """The ``AgentInterface`` (for ``AgentCard.supported_interfaces``) of this agent's A2A endpoint on the
        context's channel; :func:`create_client` picks it."""
        return AgentInterface(
            url=f"skytale://{self.channel_name(context_id)}",
            protocol_binding=PROTOCOL_BINDING,
            protocol_version=A2A_PROTOCOL_VERSION,
        )

    def context_of_url(self, url: str) -> str:
        """The context id in an :meth:`agent_interface` URL (``ValueError`` if it is not one of this adapter's
        org)."""
        prefix = f"skytale://{self._org}/a2a/"
        context_id = url[len(prefix) :] if url.startswith(prefix) else ""
        if not context_id or "/" in context_id:
            raise ValueError(f"{url!r} is not a Skytale A2A endpoint URL of org {self._org!r} ({prefix}<context_id>)")
        return context_id

    # Lifecycle

    def close(self) -> None:
        """Closes the adapter's views (the channels stay open in the manager). Idempotent."""
        views, self._views = self._views, {}
        for view in views.values():
            view.close()


# Parts


def to_part(part: PartLike, index: int = 0) -> Part:
    """One ``a2a.types.Part`` from what ``send_message`` accepts; ``ValueError`` names part ``index`` and the
    problem.

    - an ``a2a.types.Part`` (copied);
    - the seed's dict form, with ``"type"``: ``{"type": "text", "text": str}``, ``{"type": "data", "data": <JSON
      value>}``, ``{"type": "file", "file": {"bytes": bytes | base64 str} | {"uri": str}}`` (the file may also
      hold ``"mimeType"`` and ``"name"``), ``{"type": "url", "url": str}``, ``{"type": "raw", "raw": bytes}``;
      each may add ``"metadata"`` (dict), ``"media_type"`` and ``"filename"``;
    - the A2A JSON form, without ``"type"``, as :meth:`SkytaleA2AAdapter.receive_messages` returns parts:
      ``{"text": ...}``, ``{"data": ...}``, ``{"raw": <base64>}`` or ``{"url": ...}``, optionally with
      ``"mediaType"``, ``"filename"``, ``"metadata"``.
    """
    where = f"part {index}"
    if isinstance(part, Part):
        result = Part()
        result.CopyFrom(part)
    elif isinstance(part, Mapping):
        json_form = _seed_part_json(part, where) if "type" in part else dict(part)
        try:
            result = json_format.ParseDict(json_form, Part())
        except (json_format.ParseError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
    else:
        raise ValueError(f"{where}: expected an a2a.types.Part or a dict, got {type(part).__name__}")
    if result.WhichOneof("content") is None:
        raise ValueError(f"{where}: has no content (one of text, data, raw or url)")
    return result


def to_parts(parts: Sequence[PartLike]) -> list[Part]:
    """Every part through :func:`to_part`; a message needs at least one."""
    if isinstance(parts, (str, bytes, Mapping, Part)) or not isinstance(parts, Sequence):
        raise ValueError(f"parts must be a list of parts, got {type(parts).__name__}")
    if not parts:
        raise ValueError("parts must not be empty: an A2A message needs at least one part")
    return [to_part(part, index) for index, part in enumerate(parts)]


_SEED_CONTENT_KEYS = {"text": "text", "data": "data", "url": "url", "raw": "raw", "file": "file"}
_SEED_COMMON_KEYS = {"type", "metadata", "media_type", "filename"}


def _seed_part_json(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The A2A JSON form of a part given in the seed's ``{"type": ...}`` dict form."""
    kind = part["type"]
    if kind not in _SEED_CONTENT_KEYS:
        known = ", ".join(repr(name) for name in _SEED_CONTENT_KEYS)
        raise ValueError(f"{where}: unknown part type {kind!r} (known: {known})")
    where = f"{where} ({kind})"
    unexpected = set(part) - _SEED_COMMON_KEYS - {kind}
    if unexpected:
        raise ValueError(f"{where}: unexpected keys {sorted(unexpected)}")
    if kind not in part:
        raise ValueError(f"{where}: missing {kind!r}")
    json_form: dict[str, Any] = {}
    if kind == "file":
        json_form.update(_file_json(part["file"], where))
    elif kind == "raw":
        json_form["raw"] = _base64(part["raw"], where)
    else:
        json_form[kind] = part[kind]
    for key, json_key in (("media_type", "mediaType"), ("filename", "filename"), ("metadata", "metadata")):
        if key in part:
            json_form[json_key] = part[key]
    return json_form


def _file_json(file: Any, where: str) -> dict[str, Any]:
    if not isinstance(file, Mapping):
        raise ValueError(f"{where}: 'file' must be a dict with 'bytes' or 'uri', got {type(file).__name__}")
    unexpected = set(file) - {"bytes", "uri", "mimeType", "name"}
    if unexpected:
        raise ValueError(f"{where}: unexpected keys in 'file': {sorted(unexpected)}")
    if ("bytes" in file) == ("uri" in file):
        raise ValueError(f"{where}: 'file' needs exactly one of 'bytes' and 'uri'")
    json_form = {"raw": _base64(file["bytes"], where)} if "bytes" in file else {"url": file["uri"]}
    if "mimeType" in file:
        json_form["mediaType"] = file["mimeType"]
    if "name" in file:
        json_form["filename"] = file["name"]
    return json_form


def _base64(content: Any, where: str) -> str:
    """Bytes as the base64 text the JSON form carries; text is taken as base64 already (and checked)."""
    if isinstance(content, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(content)).decode("ascii")
    if isinstance(content, str):
        try:
            base64.b64decode(content, validate=True)
        except ValueError:
            raise ValueError(f"{where}: bytes given as text must be base64") from None
        return content
    raise ValueError(f"{where}: bytes must be bytes or base64 text, got {type(content).__name__}")


def _role(role: str | int) -> Role:
    if isinstance(role, str) and role in _ROLES:
        return _ROLES[role]
    if isinstance(role, int) and not isinstance(role, bool) and role in _ROLES.values():
        return cast(Role, role)  # equal to one of the Role values (a2a-sdk's stubs type them as the class)
    raise ValueError(f"role must be 'user' or 'agent' (or an a2a.types.Role), got {role!r}")


def _metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(key, str) for key in metadata):
        raise ValueError("metadata must be a dict with str keys")
    try:
        json_format.ParseDict(dict(metadata), Struct())
    except (json_format.ParseError, TypeError, ValueError) as error:
        raise ValueError(f"metadata must hold JSON values only: {error}") from None
    return dict(metadata)

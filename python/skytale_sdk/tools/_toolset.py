"""`SkytaleTools`: the operations behind the tools of :mod:`._catalog`, over one :class:`SkytaleChannelManager`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Callable

from .._native import Message
from ..envelope import Envelope, Protocol
from ..errors import SkytaleError
from ..manager import SkytaleChannelManager
from ._arguments import checked_arguments
from ._catalog import TOOL_SPECS, ToolSpec
from ._errors import ToolError, as_tool_error

__all__ = ["SkytaleTools", "JSON_CONTENT_TYPE", "TEXT_CONTENT_TYPE"]

#: The content type a received plain message (``manager.send`` bytes, or a text ``send``) is reported with.
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
#: JSON messages travel as ``Envelope(Protocol.RAW, JSON_CONTENT_TYPE, <UTF-8 JSON>)``.
JSON_CONTENT_TYPE = "application/json"

Result = dict[str, Any]


class SkytaleTools:
    """The Skytale tools of one agent: its :class:`SkytaleChannelManager`, driven by tool calls.

    ``call(name, arguments)`` checks the arguments against the tool's input schema, runs the operation and returns
    its structured result (a JSON object matching the output schema); every failure is a :class:`ToolError`
    whose message tells the agent what to do. Calls block (``receive`` waits up to its timeout), so async
    adapters run them in a worker thread. Thread-safe, as the manager is.

    Receiving reads the manager's own inbox, the one ``manager.receive()`` reads: the tools act as the agent.
    """

    def __init__(self, manager: SkytaleChannelManager) -> None:
        if not isinstance(manager, SkytaleChannelManager):
            raise TypeError(f"manager must be a SkytaleChannelManager, got {type(manager).__name__}")
        self.manager = manager
        self._operations: dict[str, Callable[[dict[str, Any]], Result]] = {
            "create_channel": self._create_channel,
            "invite": self._invite,
            "join_with_token": self._join_with_token,
            "send": self._send,
            "receive": self._receive,
            "receive_latest": self._receive_latest,
            "list_channels": self._list_channels,
            "members": self._members,
            "leave": self._leave,
        }

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        """Every tool's name, description and schemas, in a stable order."""
        return TOOL_SPECS

    def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> Result:
        """Runs tool ``name``; raises :class:`ToolError` for an unknown tool, bad arguments or a failed call."""
        spec = _SPECS_BY_NAME.get(name)
        if spec is None:
            raise ToolError(name, f"unknown tool {name!r}; the Skytale tools are: {', '.join(_SPECS_BY_NAME)}")
        checked = checked_arguments(name, spec.input_schema, arguments)
        try:
            return self._operations[name](checked)
        except SkytaleError as error:
            raise as_tool_error(name, error) from error

    # The operations: checked arguments in, the output schema's object out.

    def _create_channel(self, arguments: dict[str, Any]) -> Result:
        channel = arguments["channel"]
        self.manager.create(channel)
        return {"channel": channel, "members": self._member_names(channel)}

    def _invite(self, arguments: dict[str, Any]) -> Result:
        channel, max_uses, ttl = arguments["channel"], arguments["max_uses"], arguments["ttl_seconds"]
        token = self.manager.invite(channel, max_uses, ttl)
        return {"channel": channel, "token": token, "max_uses": max_uses, "ttl_seconds": ttl}

    def _join_with_token(self, arguments: dict[str, Any]) -> Result:
        channel = arguments["channel"]
        self.manager.join_with_token(channel, arguments["token"], float(arguments["timeout_seconds"]))
        return {"channel": channel, "members": self._member_names(channel)}

    def _send(self, arguments: dict[str, Any]) -> Result:
        channel = arguments["channel"]
        if ("text" in arguments) == ("json" in arguments):
            raise ToolError("send", "send: give exactly one of 'text' (a string) or 'json' (any JSON value)")
        if "text" in arguments:
            try:
                payload, content_type = arguments["text"].encode("utf-8"), TEXT_CONTENT_TYPE
            except UnicodeEncodeError as error:
                raise ToolError("send", f"send: 'text' is not valid Unicode ({error})") from error
        else:
            try:
                encoded = json.dumps(arguments["json"], ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            except (TypeError, ValueError) as error:
                raise ToolError("send", f"send: 'json' is not a JSON value ({error})") from error
            content_type = JSON_CONTENT_TYPE
            payload = Envelope(Protocol.RAW, content_type, encoded.encode("utf-8")).serialize()
        self.manager.send(channel, payload)
        return {"channel": channel, "content_type": content_type, "bytes": len(payload)}

    def _receive(self, arguments: dict[str, Any]) -> Result:
        channel = arguments["channel"]
        messages = self.manager.receive_messages(channel, float(arguments["timeout_seconds"]))
        return {"channel": channel, "messages": [message_result(message) for message in messages]}

    def _receive_latest(self, arguments: dict[str, Any]) -> Result:
        channel = arguments["channel"]
        messages = self.manager.receive_messages(channel, float(arguments["timeout_seconds"]))
        latest = message_result(messages[-1]) if messages else None
        return {"channel": channel, "message": latest, "discarded": max(len(messages) - 1, 0)}

    def _list_channels(self, arguments: dict[str, Any]) -> Result:
        return {"channels": self.manager.list_channels()}

    def _members(self, arguments: dict[str, Any]) -> Result:
        channel = arguments["channel"]
        return {"channel": channel, "members": self._member_names(channel)}

    def _leave(self, arguments: dict[str, Any]) -> Result:
        channel = arguments["channel"]
        self.manager.leave(channel)
        return {"channel": channel, "left": True}

    def _member_names(self, channel: str) -> list[str]:
        return sorted(identity_text(member) for member in self.manager.members(channel))


_SPECS_BY_NAME = {spec.name: spec for spec in TOOL_SPECS}


def identity_text(identity: bytes) -> str:
    """An identity as the tools show it: UTF-8, with any other byte as ``\\xNN``."""
    return identity.decode("utf-8", "backslashreplace")


def message_result(message: Message) -> Result:
    """A received message as the tools return it (the output schema's message object): a JSON message (an
    envelope of a JSON content type whose payload parses) as ``json``, anything else as ``text``."""
    result: Result = {
        "sender": identity_text(message.sender),
        "seq": message.seq,
        "timestamp": message.timestamp,
    }
    try:
        envelope = Envelope.deserialize(message.payload)
    except ValueError:
        result["content_type"] = TEXT_CONTENT_TYPE
        result["text"] = message.payload.decode("utf-8", "replace")
        return result
    result["content_type"] = envelope.content_type
    if _is_json(envelope.content_type):
        try:
            result["json"] = json.loads(envelope.payload)
            return result
        except ValueError:
            pass
    result["text"] = envelope.payload.decode("utf-8", "replace")
    return result


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == JSON_CONTENT_TYPE or media_type.endswith("+json")

"""The Skytale tools as data: name, title, description, input and output JSON schemas. Every framework adapter
(MCP server, LangChain, OpenAI Agents) publishes exactly these; :mod:`._toolset` runs them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ToolSpec", "TOOL_SPECS", "RECEIVE_TIMEOUT_LIMIT", "JOIN_TIMEOUT_LIMIT"]

#: The longest a receive may wait, in seconds; a tool call should come back while the agent still cares.
RECEIVE_TIMEOUT_LIMIT = 60
#: The longest join_with_token may wait to be admitted, in seconds.
JOIN_TIMEOUT_LIMIT = 300
_MAX_INVITE_USES = 10_000
_MAX_INVITE_TTL = 30 * 24 * 3600


@dataclass(frozen=True)
class ToolSpec:
    """One tool. ``read_only``: it changes nothing (no message sent or taken, no membership changed);
    ``destructive``: what it does cannot be undone by this agent alone."""

    name: str
    title: str
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    read_only: bool
    destructive: bool = False


def _object(properties: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": dict(properties), "required": list(required), "additionalProperties": False}


_CHANNEL = {
    "type": "string",
    "minLength": 1,
    "description": (
        "The channel's name: org/namespace/service, three parts of 1 to 64 letters, digits, '.', '_' or '-' "
        "(e.g. myorg/research/findings; org is the API key's org)."
    ),
}
_MEMBERS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "The identities of the channel's members, this agent included.",
}


def _timeout(default: float, limit: int, what: str) -> dict[str, Any]:
    return {
        "type": "number",
        "minimum": 0,
        "maximum": limit,
        "default": default,
        "description": f"{what}, in seconds (0 to {limit}; default {default:g}).",
    }


_MESSAGE = {
    "type": "object",
    "properties": {
        "sender": {"type": "string", "description": "The sending member's identity, as the encryption proved it."},
        "seq": {"type": "integer", "description": "The message's position in the channel (the same for everyone)."},
        "timestamp": {
            "type": ["number", "null"],
            "description": "When the relay stored the message, in seconds since the Unix epoch.",
        },
        "content_type": {"type": "string", "description": "text/plain; charset=utf-8 for text, or the sent type."},
        "text": {"type": "string", "description": "The message, if it is text (not JSON)."},
        "json": {"description": "The message's JSON value, if it was sent as JSON."},
    },
    "required": ["sender", "seq", "timestamp", "content_type"],
}

TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="create_channel",
        title="Create an encrypted channel",
        description=(
            "Create a new end-to-end encrypted Skytale channel, with this agent as its only member. Others join "
            "with an invite token (the invite tool). A channel this agent is already in is left as it is. Fails "
            "if another agent's channel has the name."
        ),
        input_schema=_object({"channel": _CHANNEL}, ("channel",)),
        output_schema=_object({"channel": {"type": "string"}, "members": _MEMBERS}, ("channel", "members")),
        read_only=False,
    ),
    ToolSpec(
        name="invite",
        title="Invite agents to a channel",
        description=(
            "Create an invite token for a channel this agent is in. Give the token to the agents that should "
            "join; each calls join_with_token with it, and this agent admits them while it runs."
        ),
        input_schema=_object(
            {
                "channel": _CHANNEL,
                "max_uses": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": _MAX_INVITE_USES,
                    "default": 1,
                    "description": "How many agents may join with this token (default 1).",
                },
                "ttl_seconds": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": _MAX_INVITE_TTL,
                    "default": 3600,
                    "description": "How long the token stays valid, in seconds (default 3600).",
                },
            },
            ("channel",),
        ),
        output_schema=_object(
            {
                "channel": {"type": "string"},
                "token": {"type": "string", "description": "The invite token (skt_inv_...)."},
                "max_uses": {"type": "integer"},
                "ttl_seconds": {"type": "integer"},
            },
            ("channel", "token", "max_uses", "ttl_seconds"),
        ),
        read_only=False,
    ),
    ToolSpec(
        name="join_with_token",
        title="Join a channel with an invite",
        description=(
            "Join a channel with an invite token another member created (their invite tool). Waits until that "
            "member's agent admits this one, up to timeout_seconds."
        ),
        input_schema=_object(
            {
                "channel": _CHANNEL,
                "token": {"type": "string", "minLength": 1, "description": "The invite token (skt_inv_...)."},
                "timeout_seconds": _timeout(60, JOIN_TIMEOUT_LIMIT, "How long to wait to be admitted"),
            },
            ("channel", "token"),
        ),
        output_schema=_object({"channel": {"type": "string"}, "members": _MEMBERS}, ("channel", "members")),
        read_only=False,
    ),
    ToolSpec(
        name="send",
        title="Send a message",
        description=(
            "Send one end-to-end encrypted message to every other member of a channel: either text or a JSON "
            "value, exactly one of the two. Returns once the relay has stored it."
        ),
        input_schema=_object(
            {
                "channel": _CHANNEL,
                "text": {"type": "string", "description": "The message as text. Give this or json, not both."},
                "json": {"description": "The message as a JSON value (object, array, ...). Give this or text."},
            },
            ("channel",),
        ),
        output_schema=_object(
            {
                "channel": {"type": "string"},
                "content_type": {"type": "string", "description": "How the message was sent: text or JSON."},
                "bytes": {"type": "integer", "description": "The size of the message before encryption."},
            },
            ("channel", "content_type", "bytes"),
        ),
        read_only=False,
    ),
    ToolSpec(
        name="receive",
        title="Receive messages",
        description=(
            "Return every message that arrived on a channel since the last receive or receive_latest, oldest "
            "first, each with its sender, seq and timestamp. Waits up to timeout_seconds while there is none; "
            "an empty list means nothing came. This agent's own messages are not returned."
        ),
        input_schema=_object(
            {"channel": _CHANNEL, "timeout_seconds": _timeout(5, RECEIVE_TIMEOUT_LIMIT, "How long to wait")},
            ("channel",),
        ),
        output_schema=_object(
            {"channel": {"type": "string"}, "messages": {"type": "array", "items": _MESSAGE}},
            ("channel", "messages"),
        ),
        read_only=False,
    ),
    ToolSpec(
        name="receive_latest",
        title="Receive the latest message",
        description=(
            "Return only the newest message that arrived on a channel (with sender, seq and timestamp), "
            "discarding the older unread ones; null if none came within timeout_seconds."
        ),
        input_schema=_object(
            {"channel": _CHANNEL, "timeout_seconds": _timeout(5, RECEIVE_TIMEOUT_LIMIT, "How long to wait")},
            ("channel",),
        ),
        output_schema=_object(
            {
                "channel": {"type": "string"},
                "message": {"anyOf": [_MESSAGE, {"type": "null"}]},
                "discarded": {"type": "integer", "description": "How many older unread messages were dropped."},
            },
            ("channel", "message", "discarded"),
        ),
        read_only=False,
    ),
    ToolSpec(
        name="list_channels",
        title="List channels",
        description="List the channels this agent is a member of (created or joined, and not left).",
        input_schema=_object({}),
        output_schema=_object({"channels": {"type": "array", "items": {"type": "string"}}}, ("channels",)),
        read_only=True,
    ),
    ToolSpec(
        name="members",
        title="List a channel's members",
        description="List the identities of a channel's current members, this agent included.",
        input_schema=_object({"channel": _CHANNEL}, ("channel",)),
        output_schema=_object({"channel": {"type": "string"}, "members": _MEMBERS}, ("channel", "members")),
        read_only=True,
    ),
    ToolSpec(
        name="leave",
        title="Leave a channel",
        description=(
            "Leave a channel: the other members see this agent removed, and it can no longer send or receive "
            "there (unread messages are dropped). Rejoining needs a new invite."
        ),
        input_schema=_object({"channel": _CHANNEL}, ("channel",)),
        output_schema=_object({"channel": {"type": "string"}, "left": {"type": "boolean"}}, ("channel", "left")),
        read_only=False,
        destructive=True,
    ),
)

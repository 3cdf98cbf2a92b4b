"""`ToolError`: the one error a Skytale tool call raises, worded for the agent that made the call."""

from __future__ import annotations

from ..errors import AuthError, ChannelError, QuotaExceededError, SkytaleError, TransportError

__all__ = ["ToolError", "as_tool_error"]


class ToolError(Exception):
    """A tool call that failed. ``str(error)`` says what went wrong and what the agent should do next; the
    framework adapters hand it to the model as the tool's error result. ``tool`` names the tool."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(message)
        self.tool = tool


_NAME_HINT = (
    "A channel name is three parts separated by '/', each 1 to 64 letters, digits, '.', '_' or '-', "
    "e.g. myorg/team/general (the org must be your API key's org)."
)
_UNKNOWN_CHANNEL_HINT = (
    "Call list_channels for the channels this agent is in; create_channel creates a channel, join_with_token "
    "joins one with an invite token from a member."
)
_EXISTS_HINT = (
    "Another agent's channel has this name: pick another name, or ask one of its members for an invite token and "
    "call join_with_token."
)
_INVITE_HINT = "Ask a member of the channel for a new invite token (their invite tool) and call join_with_token again."
_ADMISSION_HINT = (
    "The member that created the invite admits joiners while its agent runs: make sure it is running, then call "
    "join_with_token again with the same token (if it has uses left) or a larger timeout_seconds."
)
_TRANSPORT_HINT = (
    "The Skytale relay or API did not answer: check SKYTALE_RELAY and SKYTALE_API_URL, then retry the call."
)
_AUTH_HINT = "The Skytale API refused the credentials: check SKYTALE_API_KEY (and SKYTALE_API_URL)."
_QUOTA_HINT = "A limit was reached. If it is this agent's inbox, nothing was lost: call receive again to get the rest."


def as_tool_error(tool: str, error: SkytaleError) -> ToolError:
    """The SDK error ``error`` of a call to ``tool``, with what to do about it appended."""
    message = str(error)
    if error.code == "invalid_name":
        hint = _NAME_HINT
    elif isinstance(error, ChannelError) and "unknown channel" in message:
        hint = _UNKNOWN_CHANNEL_HINT
    elif isinstance(error, ChannelError) and "already exists" in message:
        hint = _EXISTS_HINT
    elif isinstance(error, ChannelError) and "(invite_" in message:
        hint = _INVITE_HINT
    elif isinstance(error, TransportError) and tool == "join_with_token":
        hint = _ADMISSION_HINT
    elif isinstance(error, TransportError):
        hint = _TRANSPORT_HINT
    elif isinstance(error, AuthError):
        hint = _AUTH_HINT
    elif isinstance(error, QuotaExceededError):
        hint = _QUOTA_HINT
    else:
        return ToolError(tool, f"{tool} failed: {message}")
    return ToolError(tool, f"{tool} failed: {message}. {hint}")

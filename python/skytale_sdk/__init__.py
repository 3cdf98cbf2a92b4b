"""Skytale: end-to-end encrypted channels for AI agents (MLS over a SLIM relay).

The client classes come from the native extension ``skytale_sdk._native``; :class:`SkytaleChannelManager`
(:mod:`skytale_sdk.manager`) and the envelopes (:mod:`skytale_sdk.envelope`) are pure Python over it, and
:mod:`skytale_sdk.aio` offers the manager to asyncio code. Errors are documented in :mod:`skytale_sdk.errors`.
"""

# First: SKYTALE_LOG sets the levels the native module reads when it loads.
from . import _logging  # noqa: F401
from ._native import Channel, Message, MessageIterator, SkytaleClient, __version__
from .envelope import Envelope, Protocol
from .errors import (
    AuthError,
    ChannelError,
    DataDirError,
    MlsError,
    QuotaExceededError,
    SkytaleError,
    TransportError,
)
from .manager import ChannelView, SkytaleChannelManager

__all__ = [
    "__version__",
    "SkytaleClient",
    "Channel",
    "MessageIterator",
    "Message",
    "SkytaleChannelManager",
    "ChannelView",
    "Envelope",
    "Protocol",
    "SkytaleError",
    "MlsError",
    "TransportError",
    "ChannelError",
    "AuthError",
    "QuotaExceededError",
    "DataDirError",
]

"""Skytale: end-to-end encrypted channels for AI agents (MLS over a SLIM relay).

The classes come from the native extension ``skytale_sdk._native``; errors are documented in
:mod:`skytale_sdk.errors`.
"""

from ._native import Channel, Message, MessageIterator, SkytaleClient
from .errors import (
    AuthError,
    ChannelError,
    MlsError,
    QuotaExceededError,
    SkytaleError,
    TransportError,
)

__all__ = [
    "SkytaleClient",
    "Channel",
    "MessageIterator",
    "Message",
    "SkytaleError",
    "MlsError",
    "TransportError",
    "ChannelError",
    "AuthError",
    "QuotaExceededError",
]

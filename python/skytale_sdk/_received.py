"""How a received :class:`~skytale_sdk.Message` reads: as text, or as the envelope it carries. Package-internal:
the manager, its asyncio face, the bridge and the integrations all read messages this way."""

from __future__ import annotations

from ._native import Message
from .envelope import Envelope, Protocol

__all__ = ["RAW_CONTENT_TYPE", "as_envelope", "as_text"]

#: Content type of the ``Protocol.RAW`` envelopes that wrap messages which are not envelopes.
RAW_CONTENT_TYPE = "application/octet-stream"


def as_text(payload: bytes) -> str:
    """UTF-8 text. Bytes that are not UTF-8 become lone surrogates (``surrogateescape``) instead of being
    replaced, so ``text.encode("utf-8", "surrogateescape")`` gives back the exact payload."""
    return payload.decode("utf-8", "surrogateescape")


def as_envelope(message: Message) -> Envelope:
    """The envelope ``message`` carries (``Protocol.RAW`` if it is not one), with its authenticated sender."""
    try:
        return Envelope.deserialize(message.payload, sender=message.sender)
    except ValueError:
        return Envelope(Protocol.RAW, RAW_CONTENT_TYPE, message.payload, sender=message.sender)

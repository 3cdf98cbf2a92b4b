"""Exceptions raised by the SDK.

Every exception is a :class:`SkytaleError`, a subclass of :class:`RuntimeError`, so code written against the
reference SDK's ``except RuntimeError`` keeps working. The message starts with the subsystem's prefix and
``.code`` is a stable machine-readable reason:

- :class:`MlsError`: ``MLS engine error:`` (bad key package or Welcome, undecryptable message)
- :class:`TransportError`: ``transport error:`` (relay unreachable, stream failure)
- :class:`ChannelError`: ``invalid channel name:`` for names, ``channel error:`` for channel-state problems
  (unknown channel, already exists, removed, payload too large)
- :class:`AuthError`: ``auth error:`` (API key or token refused)
- :class:`QuotaExceededError`: ``quota exceeded:`` (an account limit was hit)
- :class:`DataDirError`: ``data_dir error:`` (the data_dir is held by another client, belongs to another identity,
  or cannot be read or written)
- :class:`SkytaleError` itself: ``runtime error:`` (internal)

The classes are defined by the native extension, which raises them; this module is their documented home.
"""

from ._native import (
    AuthError,
    ChannelError,
    DataDirError,
    MlsError,
    QuotaExceededError,
    SkytaleError,
    TransportError,
)

__all__ = [
    "SkytaleError",
    "MlsError",
    "TransportError",
    "ChannelError",
    "AuthError",
    "QuotaExceededError",
    "DataDirError",
]

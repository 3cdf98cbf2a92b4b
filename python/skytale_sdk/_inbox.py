"""`Inbox`: one consumer's unread messages on one channel, bounded. Package-internal (see :mod:`._feed`)."""

from __future__ import annotations

from collections import deque

from ._native import Message
from .errors import QuotaExceededError

__all__ = ["Inbox"]


class Inbox:
    """One consumer's unread messages on one channel, at most ``limit`` of them. Not thread-safe on its own: the
    owning ``ChannelFeed`` guards it with its condition."""

    def __init__(self, channel_name: str, limit: int) -> None:
        self._channel_name = channel_name
        self._limit = limit
        self._items: deque[Message] = deque()
        self._overflow: QuotaExceededError | None = None

    def put(self, message: Message) -> None:
        self._items.append(message)
        if len(self._items) >= self._limit and self._overflow is None:
            self._overflow = QuotaExceededError(
                f"quota exceeded: channel {self._channel_name}: {self._limit} messages were waiting unread "
                f"(buffer_limit={self._limit}); its listener paused until now, nothing was dropped"
            )

    def drain(self, limit: int | None = None) -> list[Message]:
        """Removes and returns the oldest ``limit`` messages (all of them if ``None``)."""
        count = len(self._items) if limit is None else min(limit, len(self._items))
        return [self._items.popleft() for _ in range(count)]

    def take_overflow(self) -> QuotaExceededError | None:
        overflow, self._overflow = self._overflow, None
        return overflow

    def holds_listener(self) -> bool:
        """Whether the listener must wait: the inbox is full, or its overflow is not yet reported (so the error
        comes right after the messages that filled it)."""
        return len(self._items) >= self._limit or self._overflow is not None

    def has_news(self) -> bool:
        return bool(self._items) or self._overflow is not None

    def __len__(self) -> int:
        return len(self._items)

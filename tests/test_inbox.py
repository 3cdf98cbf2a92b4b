"""``Inbox``, the bounded per-consumer buffer behind the manager and its views, on its own (no relay, no thread).

An inbox only keeps and hands back what it is given, so plain strings stand in for messages.
"""

from __future__ import annotations

import pytest

from skytale_sdk import QuotaExceededError
from skytale_sdk._inbox import Inbox


def test_messages_come_out_oldest_first_in_the_amounts_asked() -> None:
    inbox = Inbox("org/ns/chan", limit=10)
    for item in ("a", "b", "c"):
        inbox.put(item)
    assert len(inbox) == 3 and inbox.has_news()
    assert inbox.drain(2) == ["a", "b"]
    assert inbox.drain(5) == ["c"]
    assert inbox.drain() == [] and len(inbox) == 0 and not inbox.has_news()


def test_filling_up_holds_the_listener_until_the_overflow_is_taken_once() -> None:
    inbox = Inbox("org/ns/chan", limit=2)
    inbox.put("a")
    assert not inbox.holds_listener() and inbox.take_overflow() is None
    inbox.put("b")
    assert inbox.holds_listener()
    assert inbox.drain() == ["a", "b"]
    # Emptied, but the overflow is not reported yet: the listener stays held so the error comes right after.
    assert inbox.holds_listener() and inbox.has_news()
    overflow = inbox.take_overflow()
    assert isinstance(overflow, QuotaExceededError)
    assert str(overflow).startswith("quota exceeded: channel org/ns/chan: 2 messages were waiting unread")
    assert "buffer_limit=2" in str(overflow)
    assert inbox.take_overflow() is None
    assert not inbox.holds_listener() and not inbox.has_news()


@pytest.mark.parametrize("extra", [0, 3])
def test_one_overflow_per_filling_however_far_past_the_limit(extra: int) -> None:
    inbox = Inbox("org/ns/chan", limit=2)
    for index in range(2 + extra):
        inbox.put(index)
    assert len(inbox) == 2 + extra
    assert inbox.take_overflow() is not None and inbox.take_overflow() is None
    inbox.drain()
    inbox.put("again")
    inbox.put("full")
    assert inbox.take_overflow() is not None

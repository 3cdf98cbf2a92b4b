"""`ReaderStats`: what a protocol reader (the A2A, MCP and SLIM integrations) passed over instead of delivering.
Package-internal: each reader keeps one and answers its documented counters (``skipped``, ``malformed``,
``foreign``) from it; logging stays with the reader, under its own logger."""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["ReaderStats"]


class ReaderStats:
    """Counts of the messages one reader did not deliver, so that none goes unnoticed (docs/integrations.md):

    - skipped: meant for someone else (another protocol, or traffic of its protocol that is not for this reader),
      by the message's protocol wire value (``"raw"`` for plain ``send()`` bytes);
    - malformed: claimed the reader's protocol but could not be read;
    - foreign: the reader's protocol, from a member other than the peer the reader is bound to.

    Thread-safe; the counts only grow.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._skipped: Counter[str] = Counter()
        self._malformed = 0
        self._foreign = 0

    def count_skipped(self, protocol: str) -> None:
        with self._lock:
            self._skipped[protocol] += 1

    def count_malformed(self) -> None:
        with self._lock:
            self._malformed += 1

    def count_foreign(self) -> None:
        with self._lock:
            self._foreign += 1

    def skipped_by_protocol(self) -> dict[str, int]:
        """The skipped messages by protocol wire value, e.g. ``{"a2a": 1, "raw": 2}`` (``{}`` if none)."""
        with self._lock:
            return dict(self._skipped)

    def total_skipped(self) -> int:
        with self._lock:
            return sum(self._skipped.values())

    def total_malformed(self) -> int:
        return self._malformed

    def total_foreign(self) -> int:
        return self._foreign

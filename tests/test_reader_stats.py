"""``ReaderStats``, the one counter type behind the integrations' ``skipped`` / ``malformed`` / ``foreign``."""

from __future__ import annotations

import threading

from skytale_sdk._stats import ReaderStats


def test_counts_start_empty_and_only_grow() -> None:
    stats = ReaderStats()
    assert stats.skipped_by_protocol() == {}
    assert (stats.total_skipped(), stats.total_malformed(), stats.total_foreign()) == (0, 0, 0)
    for protocol in ("a2a", "raw", "a2a"):
        stats.count_skipped(protocol)
    stats.count_malformed()
    stats.count_foreign()
    stats.count_foreign()
    assert stats.skipped_by_protocol() == {"a2a": 2, "raw": 1}
    assert (stats.total_skipped(), stats.total_malformed(), stats.total_foreign()) == (3, 1, 2)


def test_the_breakdown_is_a_snapshot() -> None:
    stats = ReaderStats()
    stats.count_skipped("mcp")
    snapshot = stats.skipped_by_protocol()
    snapshot["mcp"] = 99
    stats.count_skipped("mcp")
    assert snapshot == {"mcp": 99} and stats.skipped_by_protocol() == {"mcp": 2}


def test_counting_from_many_threads_loses_nothing() -> None:
    stats = ReaderStats()

    def count() -> None:
        for _ in range(1000):
            stats.count_skipped("slim")
            stats.count_malformed()

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (stats.skipped_by_protocol(), stats.total_malformed()) == ({"slim": 8000}, 8000)

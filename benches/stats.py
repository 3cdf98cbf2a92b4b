"""Summaries of timing samples, shared by every Python section (and by the peer probe, so: stdlib only)."""

from __future__ import annotations


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile (0..1) of an already sorted, non-empty list."""
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def latency_summary(samples_ms: list[float]) -> dict[str, float]:
    """p50 / p99 / p99.9 / max of millisecond samples, with the sample count (a p99.9 of fewer than 1 000
    samples is close to the max; the count says how much to trust it)."""
    if not samples_ms:
        raise ValueError("no samples")
    ordered = sorted(samples_ms)
    return {
        "n": len(ordered),
        "p50_ms": percentile(ordered, 0.5),
        "p99_ms": percentile(ordered, 0.99),
        "p999_ms": percentile(ordered, 0.999),
        "max_ms": ordered[-1],
    }


def rate_summary(count: int, payload_bytes: int, elapsed_s: float) -> dict[str, float]:
    """Messages per second and payload megabytes (10^6 bytes) per second for `count` messages in `elapsed_s`."""
    return {
        "messages": count,
        "payload_bytes": payload_bytes,
        "elapsed_s": elapsed_s,
        "msgs_per_s": count / elapsed_s,
        "mb_per_s": count * payload_bytes / elapsed_s / 1e6,
    }

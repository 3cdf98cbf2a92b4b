"""Percentiles for the benchmark scripts."""

from __future__ import annotations


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile (0..1) of an already sorted list."""
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def summary(values: list[float]) -> str:
    """`p50 / p99 / max` of millisecond figures."""
    values = sorted(values)
    return f"p50 {percentile(values, 0.5):.3f} ms  p99 {percentile(values, 0.99):.3f} ms  max {values[-1]:.3f} ms"

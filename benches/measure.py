"""The timed loops, written once and run against any SDK: ours, and the peer's (`peer_probe.py` imports this in
the peer's virtualenv). Stdlib only. Every loop checks what it received, so a lost or extra message fails the
run instead of flattering a figure.

One-way latency is timed from just before `send()` until the receiving call returns the message, one message in
flight at a time (an idle channel); the receiver runs in the same process, so no clocks are compared.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Iterator, List, Sequence

Send = Callable[[bytes], Any]
Receive = Callable[[], Sequence[Any]]


class MeasurementError(RuntimeError):
    """The receiving side returned something other than what was sent."""


def _payload(size: int, index: int) -> bytes:
    """`size` bytes, distinct per index (so a stale or repeated message cannot pass as the right one)."""
    tag = f"{index:08d}".encode()
    return (tag * (size // len(tag) + 1))[:size]


def _as_bytes(item: Any) -> bytes:
    return item.encode("utf-8", "surrogateescape") if isinstance(item, str) else bytes(item)


def one_way_iterator(send: Send, incoming: Iterator[Any], size: int, samples: int, warmup: int) -> List[float]:
    """Milliseconds from `send(payload)` until `next(incoming)` yields it (a blocking message iterator)."""
    timings = []
    for index in range(warmup + samples):
        payload = _payload(size, index)
        start = time.perf_counter()
        send(payload)
        got = next(incoming)
        elapsed = (time.perf_counter() - start) * 1000
        if _as_bytes(got) != payload:
            raise MeasurementError(f"message {index}: the iterator yielded another payload ({len(_as_bytes(got))} B)")
        if index >= warmup:
            timings.append(elapsed)
    return timings


def one_way_receive(send: Send, receive: Receive, size: int, samples: int, warmup: int) -> List[float]:
    """Milliseconds from `send(payload)` until `receive()` (a manager's buffered receive) returns it."""
    timings = []
    for index in range(warmup + samples):
        payload = _payload(size, index)
        start = time.perf_counter()
        send(payload)
        got = receive()
        elapsed = (time.perf_counter() - start) * 1000
        if [_as_bytes(item) for item in got] != [payload]:
            raise MeasurementError(f"message {index}: receive() returned {len(got)} messages, expected this one")
        if index >= warmup:
            timings.append(elapsed)
    return timings


async def one_way_receive_async(
    send: Send, receive: Callable[[], Awaitable[Sequence[Any]]], size: int, samples: int, warmup: int
) -> List[float]:
    """As `one_way_receive`, awaiting an asyncio `receive()`. `send` is called directly (it blocks the loop for
    the send's duration, as the sync loops do), so only the receive path differs from theirs."""
    timings = []
    for index in range(warmup + samples):
        payload = _payload(size, index)
        start = time.perf_counter()
        send(payload)
        got = await receive()
        elapsed = (time.perf_counter() - start) * 1000
        if [_as_bytes(item) for item in got] != [payload]:
            raise MeasurementError(f"message {index}: receive() returned {len(got)} messages, expected this one")
        if index >= warmup:
            timings.append(elapsed)
    return timings


def burst(send: Send, receive: Receive, count: int, size: int, deadline_s: float = 120.0) -> float:
    """Seconds from the first of `count` back-to-back `send()`s until `receive()` (called after the last send,
    then again until everything is in) has returned all of them, in order."""
    payloads = [_payload(size, index) for index in range(count)]
    received: List[bytes] = []
    start = time.perf_counter()
    for payload in payloads:
        send(payload)
    while len(received) < count:
        if time.perf_counter() - start > deadline_s:
            raise MeasurementError(f"burst: {len(received)} of {count} messages after {deadline_s:.0f} s")
        received += [_as_bytes(item) for item in receive()]
    elapsed = time.perf_counter() - start
    if received != payloads:
        raise MeasurementError(f"burst: received {len(received)} messages, not the {count} sent in order")
    return elapsed


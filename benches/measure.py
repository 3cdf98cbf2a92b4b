"""The timed loops, written once and run against any SDK: ours, and the peer's (`peer_probe.py` imports this in
the peer's virtualenv). Stdlib only. Every loop checks what it received, so a lost or extra message fails the
run instead of flattering a figure.

One-way latency is timed from just before `send()` until the receiving call returns the message, one message in
flight at a time (an idle channel); the receiver runs in the same process, so no clocks are compared.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterator, Sequence
from typing import Any, Callable

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


def one_way_iterator(
    send: Send, incoming: Iterator[Any], size: int, samples: int, warmup: int, send_times: list[float] | None = None
) -> list[float]:
    """Milliseconds from `send(payload)` until `next(incoming)` yields it (a blocking message iterator). With
    `send_times`, also appends how long each `send()` itself took (for ours: until the relay acknowledged it as
    stored), the share of the one-way time the receiving side cannot start before."""
    timings = []
    for index in range(warmup + samples):
        payload = _payload(size, index)
        start = time.perf_counter()
        send(payload)
        sent = time.perf_counter()
        got = next(incoming)
        elapsed = (time.perf_counter() - start) * 1000
        if _as_bytes(got) != payload:
            raise MeasurementError(f"message {index}: the iterator yielded another payload ({len(_as_bytes(got))} B)")
        if index >= warmup:
            timings.append(elapsed)
            if send_times is not None:
                send_times.append((sent - start) * 1000)
    return timings


def one_way_receive(send: Send, receive: Receive, size: int, samples: int, warmup: int) -> list[float]:
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
) -> list[float]:
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


def burst(send: Send, receive: Receive, count: int, size: int) -> dict[str, float]:
    """`count` back-to-back `send()`s, then `receive()` (a manager's, with a timeout) until it has returned all
    of them or comes back empty (nothing arrived within its timeout: the rest was lost). Returns how many were
    delivered and the seconds from the first send to the last delivery; raises if what came is not the sent
    messages in order, with none missing in between."""
    payloads = [_payload(size, index) for index in range(count)]
    received: list[bytes] = []
    start = time.perf_counter()
    for payload in payloads:
        send(payload)
    last_delivery = start
    while len(received) < count:
        batch = [_as_bytes(item) for item in receive()]
        if not batch:
            break
        last_delivery = time.perf_counter()
        received += batch
    if received != payloads[: len(received)]:
        raise MeasurementError(f"burst: the {len(received)} messages received are not the first ones sent, in order")
    return {
        "sent": count,
        "delivered": len(received),
        "lost": count - len(received),
        "elapsed_s": last_delivery - start,
    }

"""The one place that maps section figures (JSON keys) to table rows, targets and ratios.

A row shows one or more figures of one section (e.g. p50 / p99 / p99.9), optionally a target (met or missed),
a ratio to a machine limit measured in the same run (`limits`), and a ratio ours / the peer's. Any figure that is
missing shows `n/a` with the reason (failed section, missing key, or the section's own `{"unavailable": why}`).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

Results = dict[str, dict[str, Any]]  # section name -> {"ok", "figures", "error", ...} as run.py records it


@dataclass(frozen=True)
class Ref:
    """A figure: `section` and a dotted `path` into its JSON. A path step `key=value` picks the element of a list
    whose `key` equals `value` (e.g. `steps.streams=1000.relay_bytes_per_stream`). `scale` converts the figure
    to the unit it is compared in (e.g. 1e-3 for microseconds read as milliseconds)."""

    section: str
    path: str
    scale: float = 1.0


@dataclass(frozen=True)
class Target:
    """`value[index] op bound`; the bound is a number or `factor` times another figure."""

    text: str
    op: str  # "<" or ">="
    bound: float | Ref
    factor: float = 1.0
    index: int = 0


@dataclass(frozen=True)
class Ratio:
    """value[0] / reference, printed as `0.42x <what>`."""

    what: str
    reference: Ref


@dataclass(frozen=True)
class Row:
    group: str
    label: str
    values: tuple[Ref, ...]
    unit: str
    targets: tuple[Target, ...] = ()
    vs_limit: Ratio | None = None
    vs_peer: Ref | None = None


OPS: dict[str, Callable[[float, float], bool]] = {"<": operator.lt, ">=": operator.ge}

VERIFY = Ref("limits", "ed25519_verify_per_s")
ECHO_RTT_MS = Ref("limits", "tonic_echo_rtt_p50_us", 1e-3)
AES_64K = Ref("limits", "aes128gcm_64kib_mb_per_s")
AES_100B = Ref("limits", "aes128gcm_100b_mb_per_s")
ECHO_RATE = Ref("limits", "tonic_echo_msgs_per_s")


def _latency_rows(group: str, section: str, api: str, label: str, peer: str | None) -> list[Row]:
    rows = []
    for size, size_label in (("100B", "100 B"), ("64KiB", "64 KiB")):
        targets: tuple[Target, ...] = ()
        if api == "manager_receive" and size == "100B":
            targets = (Target("p50 < 0.5 ms", "<", 0.5), Target("p99 < 2 ms", "<", 2.0, index=1))
        rows.append(
            Row(
                group,
                f"{label}, {size_label}: p50 / p99 / p99.9",
                tuple(Ref(section, f"{api}.{size}.{q}") for q in ("p50_ms", "p99_ms", "p999_ms")),
                "ms",
                targets,
                Ratio("tonic echo RTT p50", ECHO_RTT_MS),
                Ref("peer", f"{peer}.{size}.p50_ms") if peer else None,
            )
        )
        if api == "native_messages":
            rows.append(
                Row(
                    group,
                    f"  of which send() until acknowledged, {size_label}: p50 / p99",
                    tuple(Ref(section, f"{api}.{size}.send_acked.{q}") for q in ("p50_ms", "p99_ms")),
                    "ms",
                    vs_limit=Ratio("tonic echo RTT p50", ECHO_RTT_MS),
                )
            )
    return rows


def _group_rows() -> list[Row]:
    rows = []
    for size in ("2", "10", "100", "1000"):
        base = f"sizes.{size}."
        targets = (Target("add < 20 ms", "<", 20.0),) if size == "1000" else ()
        rows.append(
            Row(
                "Group scaling (Rust client, relay on loopback)",
                f"{size} members: add_member / remove_member / rotate_key p50",
                tuple(
                    Ref("group-scaling", base + k)
                    for k in ("add_member_p50_ms", "remove_member_p50_ms", "rotate_key_p50_ms")
                ),
                "ms",
                targets,
            )
        )
        rows.append(
            Row(
                "Group scaling (Rust client, relay on loopback)",
                f"{size} members: bare mls-rs add / remove / rotate p50",
                tuple(
                    Ref("group-scaling", base + k)
                    for k in ("mls_add_member_p50_ms", "mls_remove_member_p50_ms", "mls_rotate_key_p50_ms")
                ),
                "ms",
            )
        )
        rows.append(
            Row(
                "Group scaling (Rust client, relay on loopback)",
                f"{size} members: relay validates add / remove / rotate commit p50",
                tuple(
                    Ref("group-scaling", base + k)
                    for k in ("relay_add_member_p50_ms", "relay_remove_member_p50_ms", "relay_rotate_key_p50_ms")
                ),
                "ms",
            )
        )
        rows.append(
            Row(
                "Group scaling (Rust client, relay on loopback)",
                f"{size} members: add / remove / rotate commit, Welcome",
                tuple(
                    Ref("group-scaling", base + k)
                    for k in ("add_commit_bytes", "remove_commit_bytes", "rotate_commit_bytes", "welcome_bytes")
                ),
                "bytes",
            )
        )
    return rows


CLUSTER = "Cluster: SQLite 1 relay / JetStream R1 1 relay / JetStream R3 2 relays"
CLUSTER_SETUPS = ("sqlite", "jetstream_r1", "jetstream_r3")


def _cluster_rows() -> list[Row]:
    """One row per figure of the `cluster` section, its three setups side by side; the targets are R3's (index 2)."""

    def setups(key: str) -> tuple[Ref, ...]:
        return tuple(Ref("cluster", f"{setup}.{key}") for setup in CLUSTER_SETUPS)

    return [
        Row(
            CLUSTER,
            "routed messages (publisher -> log -> subscriber)",
            setups("routed_msgs_per_s"),
            "msgs/s",
            (Target("R3 >= 30 000 msg/s", ">=", 30_000.0, index=2),),
        ),
        Row(CLUSTER, "publishes acknowledged (stored) at peak", setups("publishes_acked_per_s"), "msgs/s"),
        Row(CLUSTER, "ack latency at peak p99", setups("peak_ack_latency_p99_ms"), "ms"),
        Row(CLUSTER, "ack latency at half of peak p50", setups("half_load_ack_latency_p50_ms"), "ms"),
        Row(
            CLUSTER,
            "ack latency at half of peak p99",
            setups("half_load_ack_latency_p99_ms"),
            "ms",
            (Target("R3 p99 < 10 ms (at half its own peak)", "<", 10.0, index=2),),
        ),
        Row(
            CLUSTER,
            "competing commits resolved (one ack, one stale_epoch)",
            setups("commit_rounds_resolved_per_s"),
            "rounds/s",
        ),
        Row(CLUSTER, "fan-out 1 -> 100: deliveries", setups("fanout_deliveries_per_s"), "msgs/s"),
        Row(CLUSTER, "relay CPU per routed message", setups("cpu_us_per_routed_msg.relays"), "us"),
        Row(CLUSTER, "NATS CPU per routed message", setups("cpu_us_per_routed_msg.nats")[1:], "us (R1 / R3)"),
        Row(
            CLUSTER, "acknowledged but undelivered at the end (expected 0)", setups("undelivered_messages"), "messages"
        ),
    ]


ROWS: list[Row] = [
    Row("Limits of this machine", "Ed25519 sign / verify", (Ref("limits", "ed25519_sign_per_s"), VERIFY), "/s"),
    Row("Limits of this machine", "AES-128-GCM seal, 100 B / 64 KiB", (AES_100B, AES_64K), "MB/s"),
    Row(
        "Limits of this machine",
        "tonic bidi echo RTT p50 / p99",
        (Ref("limits", "tonic_echo_rtt_p50_us"), Ref("limits", "tonic_echo_rtt_p99_us")),
        "us",
    ),
    Row("Limits of this machine", "tonic bidi echo, one stream pipelined", (ECHO_RATE,), "msgs/s"),
    *_latency_rows(
        "One-way latency (Python, skytale dev on loopback)",
        "latency",
        "native_messages",
        "native Channel.messages()",
        "native_messages",
    ),
    *_latency_rows(
        "One-way latency (Python, skytale dev on loopback)",
        "latency",
        "manager_receive",
        "manager receive()",
        "manager_receive",
    ),
    *_latency_rows(
        "One-way latency (Python, skytale dev on loopback)", "latency", "aio_receive", "aio receive()", None
    ),
    Row(
        "Throughput 1 -> 1",
        "Python send(), 100 B",
        (Ref("python-throughput", "send.100B.msgs_per_s"),),
        "msgs/s",
        (Target(">= 70% of Ed25519 verify/s", ">=", VERIFY, factor=0.7),),
        Ratio("Ed25519 verify/s", VERIFY),
    ),
    Row(
        "Throughput 1 -> 1",
        "Python send(), 64 KiB",
        (Ref("python-throughput", "send.64KiB.mb_per_s"),),
        "MB/s",
        vs_limit=Ratio("AES-128-GCM 64 KiB", AES_64K),
    ),
    Row(
        "Throughput 1 -> 1",
        "Python send_many(), 100 B",
        (Ref("python-throughput", "send_many.100B.msgs_per_s"),),
        "msgs/s",
        (Target(">= 70% of Ed25519 verify/s", ">=", VERIFY, factor=0.7),),
        Ratio("Ed25519 verify/s", VERIFY),
    ),
    Row(
        "Throughput 1 -> 1",
        "Python send_many(), 64 KiB",
        (Ref("python-throughput", "send_many.64KiB.mb_per_s"),),
        "MB/s",
        vs_limit=Ratio("AES-128-GCM 64 KiB", AES_64K),
    ),
    Row(
        "Throughput 1 -> 1",
        "Python manager burst of 1 000 x 100 B, until all received",
        (Ref("python-throughput", "manager_burst.all_delivered_ms"),),
        "ms",
        vs_peer=Ref("peer", "manager_burst.all_delivered_ms"),
    ),
    Row(
        "Throughput 1 -> 1",
        "Rust send(), 1 -> 1",
        (Ref("rust-throughput", "one_to_one.msgs_per_s"),),
        "msgs/s",
        vs_limit=Ratio("Ed25519 verify/s", VERIFY),
    ),
    Row(
        "Throughput 1 -> 1",
        "Rust send(), 1 -> 1",
        (Ref("rust-throughput", "one_to_one.mb_per_s"),),
        "MB/s",
        vs_limit=Ratio("AES-128-GCM 100 B", AES_100B),
    ),
    Row(
        "Throughput 1 -> 1",
        "Rust send_many() / recv_many(), 1 -> 1",
        (Ref("rust-throughput", "one_to_one_batched.msgs_per_s"),),
        "msgs/s",
        (Target(">= 70% of Ed25519 verify/s", ">=", VERIFY, factor=0.7),),
        Ratio("Ed25519 verify/s", VERIFY),
    ),
    Row(
        "Fan-out (Rust client, batched)",
        "1 -> 10",
        (Ref("rust-throughput", "fanout.10.deliveries_per_s"),),
        "deliveries/s",
        vs_limit=Ratio("Ed25519 verify/s", VERIFY),
    ),
    Row(
        "Fan-out (Rust client, batched)",
        "1 -> 100",
        (Ref("rust-throughput", "fanout.100.deliveries_per_s"),),
        "deliveries/s",
        vs_limit=Ratio("Ed25519 verify/s", VERIFY),
    ),
    Row(
        "Joins (Python manager, skytale dev)",
        "join_with_token, sequential: p50 / p99",
        (Ref("joins", "sequential.p50_ms"), Ref("joins", "sequential.p99_ms")),
        "ms",
        (Target("p50 < 50 ms", "<", 50.0),),
        Ratio("tonic echo RTT p50", ECHO_RTT_MS),
    ),
    Row(
        "Joins (Python manager, skytale dev)",
        "joiners at once, one invite: joiners / ms until all joined",
        (Ref("joins", "concurrent.joiners"), Ref("joins", "concurrent.all_joined_ms")),
        "",
    ),
    *_group_rows(),
    Row(
        "Relay",
        "routed messages (publisher -> log -> subscriber)",
        (Ref("relay-capacity", "routed_msgs_per_s"),),
        "msgs/s",
        (Target(">= 200 000 msg/s", ">=", 200_000.0),),
        Ratio("tonic echo pipelined", ECHO_RATE),
    ),
    Row("Relay", "publishes acknowledged (stored)", (Ref("relay-capacity", "publishes_acked_per_s"),), "msgs/s"),
    Row(
        "Relay",
        "ack latency under that load p50 / p99",
        (Ref("relay-capacity", "ack_latency_p50_ms"), Ref("relay-capacity", "ack_latency_p99_ms")),
        "ms",
    ),
    Row("Relay", "relay CPU per routed message", (Ref("relay-capacity", "relay_cpu_us_per_routed_msg"),), "us"),
    Row(
        "Relay",
        "acknowledged but undelivered at the end (expected 0)",
        (Ref("relay-capacity", "undelivered_messages"),),
        "messages",
    ),
    Row(
        "Relay",
        "relay / load generator CPU (100 = one core)",
        (Ref("relay-capacity", "relay_cpu_percent"), Ref("relay-capacity", "generator_cpu_percent")),
        "%",
    ),
    *[
        Row(
            "Relay",
            f"RSS per idle subscribed stream at {count:,}",
            (Ref("idle-streams", f"steps.streams={count}.relay_bytes_per_stream", 1e-3),),
            "KB",
            (Target("< 20 KB", "<", 20.0),),
        )
        for count in (1000, 10000)
    ],
    *[
        Row(
            "Relay",
            f"RSS per idle subscribed stream at {count:,}, 100 streams per HTTP/2 connection",
            (Ref("idle-streams-shared", f"steps.streams={count}.relay_bytes_per_stream", 1e-3),),
            "KB",
            (Target("< 20 KB", "<", 20.0),),
        )
        for count in (1000, 10000)
    ],
    *_cluster_rows(),
    Row(
        "The peer (skytale-sdk 0.5.2, mock mode: in-process, no relay)",
        "native messages() 100 B: p50 / p99 / p99.9",
        tuple(Ref("peer", f"native_messages.100B.{q}") for q in ("p50_ms", "p99_ms", "p999_ms")),
        "ms",
    ),
    Row(
        "The peer (skytale-sdk 0.5.2, mock mode: in-process, no relay)",
        "manager receive() 100 B: p50 / p99",
        (Ref("peer", "manager_receive.100B.p50_ms"), Ref("peer", "manager_receive.100B.p99_ms")),
        "ms",
    ),
    Row(
        "The peer (skytale-sdk 0.5.2, mock mode: in-process, no relay)",
        "manager burst of 1 000: delivered / lost",
        (Ref("peer", "manager_burst.delivered"), Ref("peer", "manager_burst.lost")),
        "messages",
    ),
]


@dataclass
class Cell:
    """A looked-up figure, or why there is none."""

    value: float | None = None
    missing: str = ""


def lookup(results: Results, ref: Ref) -> Cell:
    section = results.get(ref.section)
    if section is None:
        return Cell(missing=f"{ref.section} not run")
    if not section.get("ok"):
        return Cell(missing=f"{ref.section} failed")
    node: Any = section.get("figures", {})
    steps = ref.path.split(".")
    for depth, step in enumerate(steps):
        if isinstance(node, list) and "=" in step:
            key, _, wanted = step.partition("=")
            node = next((item for item in node if str(item.get(key)) == wanted), None)
        elif isinstance(node, dict):
            if "unavailable" in node:
                break
            node = node.get(step)
        else:
            node = None
        if node is None:  # name the first absent step, so the figures of one absent object share one reason
            return Cell(missing=f"no {'.'.join(steps[: depth + 1])} in {ref.section}")
    if isinstance(node, dict) and "unavailable" in node:
        return Cell(missing=str(node["unavailable"]))
    if not isinstance(node, (int, float)) or isinstance(node, bool):
        return Cell(missing=f"{ref.section}.{ref.path} is not a number")
    return Cell(value=float(node) * ref.scale)


def number(value: float) -> str:
    """Readable at a glance: thousands separators for big figures, three significant digits for small ones."""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _ratio(value: float | None, reference: Cell, what: str) -> str:
    if value is None:
        return ""
    if reference.value is None:
        return f"n/a ({reference.missing})"
    if reference.value == 0:
        return "n/a (reference is 0)"
    return f"{number(value / reference.value)}x {what}".strip()


def _vs_peer(value: float | None, peer: Cell) -> str:
    """`ours / peer` with the peer's own figure beside it, so a tiny or huge ratio reads at once."""
    ratio = _ratio(value, peer, "")
    return f"{ratio} (peer {number(peer.value)})" if value is not None and peer.value else ratio


def _target_status(results: Results, cells: Sequence[Cell], target: Target) -> str:
    value = cells[target.index].value if target.index < len(cells) else None
    if value is None:
        return f"{target.text}: n/a"
    if isinstance(target.bound, Ref):
        bound_cell = lookup(results, target.bound)
        if bound_cell.value is None:
            return f"{target.text}: n/a ({bound_cell.missing})"
        bound = bound_cell.value * target.factor
    else:
        bound = target.bound
    return f"{target.text}: {'met' if OPS[target.op](value, bound) else 'MISSED'}"


@dataclass
class Line:
    """One rendered row, also what the JSON file's `table` holds."""

    group: str
    figure: str
    values: list[float | None]
    value: str
    unit: str
    target: str = ""
    vs_limit: str = ""
    vs_peer: str = ""
    missing: list[str] = field(default_factory=list)


def render_rows(results: Results) -> list[Line]:
    """Every row whose figures come from a section that ran (or tried to)."""
    lines = []
    for row in ROWS:
        if not any(ref.section in results for ref in row.values):
            continue
        cells = [lookup(results, ref) for ref in row.values]
        missing = sorted({cell.missing for cell in cells if cell.value is None})
        shown = " / ".join(number(cell.value) if cell.value is not None else "n/a" for cell in cells)
        if missing:
            shown += f" ({'; '.join(missing)})"
        first = cells[0].value
        lines.append(
            Line(
                group=row.group,
                figure=row.label,
                values=[cell.value for cell in cells],
                value=shown,
                unit=row.unit,
                target="; ".join(_target_status(results, cells, target) for target in row.targets),
                vs_limit=_ratio(first, lookup(results, row.vs_limit.reference), row.vs_limit.what)
                if row.vs_limit
                else "",
                vs_peer=_vs_peer(first, lookup(results, row.vs_peer)) if row.vs_peer else "",
                missing=missing,
            )
        )
    return lines


def format_table(lines: list[Line]) -> str:
    """A Markdown table (readable in a terminal and pasteable into the README), one group heading row each."""
    header = ("Figure", "Value", "Unit", "Target", "vs limit", "ours / peer")
    body: list[tuple[str, ...]] = []
    group = None
    for line in lines:
        if line.group != group:
            group = line.group
            body.append((f"**{group}**", "", "", "", "", ""))
        body.append((line.figure, line.value, line.unit, line.target, line.vs_limit, line.vs_peer))
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]

    def fmt(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"

    return "\n".join([fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, body)])

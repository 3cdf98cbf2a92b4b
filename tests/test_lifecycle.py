"""Iterators, timeouts, interrupts, closing and reopening."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from channels import form_channel, inbox, take
from skytale_sdk import SkytaleChannelManager, SkytaleClient

CHANNEL = "acme/team/general"


def os_thread_count() -> int:
    """Threads of this process as the kernel sees them: Python threads and the client's native ones."""
    return len(os.listdir("/proc/self/task"))


def settled_thread_count(expected: int) -> int:
    """The thread count once it reaches ``expected`` or after a bounded wait: a thread that Python has joined
    may still be inside the kernel's exit path for a moment."""
    deadline = time.monotonic() + 10
    while os_thread_count() != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return os_thread_count()


def test_timeout_raises_timeout_error_on_an_idle_channel(make_client):
    channel = make_client("alice").create_channel(CHANNEL)
    with pytest.raises(TimeoutError):
        next(channel.messages(timeout=0.3))
    with pytest.raises(TimeoutError):
        next(channel.messages(with_meta=True, timeout=0))


def test_negative_timeout_is_a_value_error(make_client):
    channel = make_client("alice").create_channel(CHANNEL)
    with pytest.raises(ValueError):
        channel.messages(timeout=-1)


def test_iterator_still_delivers_after_a_timeout(make_client):
    alice_channel, bob_channel = form_channel(CHANNEL, [make_client("alice"), make_client("bob")])
    messages = bob_channel.messages(timeout=0.2)
    with pytest.raises(TimeoutError):
        next(messages)
    alice_channel.send(b"late")
    assert take(inbox(bob_channel), 1) == [b"late"]


def test_keyboard_interrupt_interrupts_a_blocking_iterator(make_client):
    channel = make_client("alice").create_channel(CHANNEL)
    # Python's own Ctrl-C handler, whatever this process inherited: a shell starts background commands with SIGINT
    # ignored, and then the signal below would never arrive.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    # Deliver SIGINT to this process once the main thread is blocked in next(); no message will ever arrive.
    interrupter = threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGINT))
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in channel.messages():
                pass
    finally:
        interrupter.cancel()
        signal.signal(signal.SIGINT, inherited)
    # The channel is unaffected.
    channel.send(b"after the interrupt")


def test_close_ends_iterators_and_leaves_no_thread_behind(relay, tmp_path: Path):
    threads_before = os_thread_count()
    client = SkytaleClient(relay.endpoint, str(tmp_path / "alice"), b"alice")
    channel = client.create_channel(CHANNEL)

    outcome = {}
    iterating = threading.Event()

    def consume():
        iterating.set()
        outcome["received"] = list(channel.messages())  # ends only via StopIteration

    consumer = threading.Thread(target=consume)
    consumer.start()
    iterating.wait()
    client.close()
    consumer.join(timeout=60)
    assert not consumer.is_alive()
    assert outcome["received"] == []

    # A new iterator on a closed client ends at once.
    assert list(channel.messages()) == []
    # close() returns after the client's runtime has stopped, so its threads are gone.
    assert settled_thread_count(threads_before) == threads_before


def test_closing_a_channel_ends_its_iterators(make_client):
    channel = make_client("alice").create_channel(CHANNEL)
    iterator = channel.messages()
    channel.close()
    with pytest.raises(StopIteration):
        next(iterator)


def test_client_is_a_context_manager(relay, tmp_path: Path):
    with SkytaleClient(relay.endpoint, str(tmp_path / "alice"), b"alice") as client:
        channel = client.create_channel(CHANNEL)
        assert client.identity == b"alice"
        assert client.max_payload > 0
    assert list(channel.messages()) == []


def test_a_new_client_on_the_same_data_dir_reopens_its_channels(relay, tmp_path: Path):
    names = ["acme/team/one", "acme/team/two"]
    with SkytaleClient(relay.endpoint, str(tmp_path / "alice"), b"alice") as first:
        for name in names:
            first.create_channel(name)
        assert sorted(first.channels()) == names
    with SkytaleClient(relay.endpoint, str(tmp_path / "alice"), b"alice") as second:
        assert sorted(second.channels()) == names
        reopened = second.open_channel(names[0])
        assert reopened.name == names[0]
        assert reopened.members() == [b"alice"]


def test_interpreter_exits_cleanly_with_a_client_left_open(relay, tmp_path: Path):
    # A daemon thread is still blocked in next() and nothing is closed when the interpreter shuts down.
    script = f"""
import threading
from skytale_sdk import SkytaleClient
client = SkytaleClient({relay.endpoint!r}, {str(tmp_path / "alice")!r}, b"alice")
channel = client.create_channel({CHANNEL!r})
threading.Thread(target=lambda: list(channel.messages()), daemon=True).start()
print("started", flush=True)
"""
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == "started\n"


def run_and_exit(script: str) -> None:
    """Runs ``script`` in a fresh interpreter, which exits with things left open; it must exit 0, not abort."""
    for _ in range(3):  # the abort this guards against was timing dependent
        finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
        assert finished.stdout == "done\n"


def test_interpreter_exits_cleanly_while_daemon_threads_send_and_receive(relay, tmp_path: Path):
    # Native calls return in daemon threads while the interpreter finalizes: they must not take the GIL back.
    run_and_exit(f"""
import threading, time
from skytale_sdk import SkytaleClient
alice = SkytaleClient({relay.endpoint!r}, {str(tmp_path / "alice")!r}, b"alice")
bob = SkytaleClient({relay.endpoint!r}, {str(tmp_path / "bob")!r}, b"bob")
channel = alice.create_channel({CHANNEL!r} + str(time.monotonic_ns()))
bob_channel = bob.join_channel(channel.name, channel.add_member(bob.generate_key_package()))
def send_forever():
    while True:
        channel.send(b"x" * 100)
threading.Thread(target=send_forever, daemon=True).start()
threading.Thread(target=lambda: list(bob_channel.messages()), daemon=True).start()
time.sleep(0.3)
print("done", flush=True)
""")


def test_interpreter_exits_cleanly_with_managers_left_open(relay, tmp_path: Path):
    run_and_exit(f"""
import time
from skytale_sdk import SkytaleChannelManager
name = {CHANNEL!r} + str(time.monotonic_ns())
alice = SkytaleChannelManager("alice", endpoint={relay.endpoint!r}, data_dir={str(tmp_path / "alice")!r})
bob = SkytaleChannelManager("bob", endpoint={relay.endpoint!r}, data_dir={str(tmp_path / "bob")!r})
alice.create(name)
bob.join(name, alice.add_member(name, bob.key_package()))
alice.send(name, "hi")
assert bob.receive(name, timeout=30) == ["hi"]
view = bob.view(name)
alice.send(name, "unread")
print("done", flush=True)
""")


def _vm_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def assert_cycles_release_everything(cycle: Callable[[int], None], what: str) -> None:
    """Runs ``cycle`` 200 times after a warm-up and requires fds, threads and RSS to stay flat. Before the fix a
    closed client kept 5 fds and ~285 KB, so 200 cycles would have grown the process by 1 000 fds and ~57 MB."""
    for index in range(20):  # warm-up: allocator pools, the relay's first connections
        cycle(index)
    fds, threads, rss = len(os.listdir("/proc/self/fd")), os_thread_count(), _vm_rss_bytes()
    for index in range(20, 220):
        cycle(index)
    assert len(os.listdir("/proc/self/fd")) <= fds + 3, f"closed {what} keep file descriptors open"
    assert settled_thread_count(threads) <= threads, f"closed {what} leave threads behind"
    grown = _vm_rss_bytes() - rss
    assert grown < 20 * 1024 * 1024, f"200 closed {what} grew the process by {grown / 1e6:.1f} MB"


def test_closed_clients_with_channels_release_descriptors_threads_and_memory(relay, tmp_path):
    """Each closed client used to keep its store, MLS client and groups alive (5 fds, ~285 KB): a channel's
    state and the client's context held each other."""

    def cycle(index: int) -> None:
        client = SkytaleClient(relay.endpoint, str(tmp_path / f"client{index}"), b"cycler")
        channel = client.create_channel(f"acme/cycle/c{index}")
        channel.send(b"one message")
        client.close()

    assert_cycles_release_everything(cycle, "clients")


def test_closed_managers_with_channels_release_descriptors_threads_and_memory(relay, tmp_path):
    """The same for managers, which also run a listener thread per channel."""

    def cycle(index: int) -> None:
        manager = SkytaleChannelManager(b"cycler", endpoint=relay.endpoint, data_dir=str(tmp_path / f"m{index}"))
        manager.create(f"acme/mcycle/m{index}")
        manager.send(f"acme/mcycle/m{index}", "one message")
        manager.close()

    assert_cycles_release_everything(cycle, "managers")

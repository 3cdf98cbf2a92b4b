"""Ctrl-C during each call that can block for long: it ends with KeyboardInterrupt at once, and the process exits
cleanly (no "lost sys.stderr" object dump). Without it, each call would wait 30 s (a send riding out an outage)
to 120 s (its timeout)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DevStack
from relay_process import RelayProcess

SCRIPT = Path(__file__).with_name("interruptible.py")
#: Far below what any of the calls would block for; the interrupt itself takes at most 50 ms once Python runs.
INTERRUPTED_WITHIN = 5.0
SETTLE = 0.5  # lets the call reach its wait before the signal


def interrupt(command: list[str], env: dict[str, str] | None = None, before_call=lambda: None) -> None:
    child = subprocess.Popen(
        [sys.executable, str(SCRIPT), *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
        before_call()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "blocking"
        time.sleep(SETTLE)
        child.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        stdout, stderr = child.communicate(timeout=60)
        waited = time.monotonic() - signalled
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert stdout.strip() == "interrupted", f"stdout: {stdout!r}\nstderr: {stderr}"
    assert child.returncode == 0, stderr
    assert waited < INTERRUPTED_WITHIN, f"the call went on for {waited:.1f} s after SIGINT"
    assert "object type name" not in stderr and "lost sys.stderr" not in stderr, stderr


@pytest.mark.parametrize("call", ["receive", "join_with_token"])
def test_ctrl_c_interrupts_a_call_waiting_on_the_stack(dev_env: DevStack, call: str) -> None:
    interrupt([call])


def test_ctrl_c_interrupts_messages(make_relay) -> None:
    interrupt(["messages", make_relay().endpoint])


def test_ctrl_c_interrupts_a_send_during_a_relay_outage(make_relay) -> None:
    relay: RelayProcess = make_relay()
    interrupt(["send", relay.endpoint], before_call=relay.kill)


def test_ctrl_c_interrupts_an_invite_the_api_does_not_answer(tmp_path: Path) -> None:
    stack = DevStack(tmp_path / "frozen")
    stack.start()
    try:
        interrupt(["invite"], env=os.environ | stack.env, before_call=stack.freeze)
    finally:
        stack.thaw()
        stack.stop()

"""The native client's events reach Python's ``logging`` under ``skytale_sdk``; ``SKYTALE_LOG`` is the shortcut."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from channels import wait_until
from skytale_sdk import SkytaleClient

LINK_LOGGER = "skytale_sdk.native.skytale_client.transport.link"
CONNECT_SCRIPT = """
import sys
import skytale_sdk
client = skytale_sdk.SkytaleClient(sys.argv[1], sys.argv[2], b"alice")
client.close()
"""


def native_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name.startswith("skytale_sdk.native.")]


def test_a_native_event_is_a_record_of_the_logger_named_after_its_module(relay, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="skytale_sdk")
    client = SkytaleClient(relay.endpoint, str(tmp_path / "alice"), b"alice")
    # close() returns once what the client's threads queued for Python has been logged.
    client.close()
    connected = [record for record in native_records(caplog) if "connected to the relay" in record.getMessage()]
    assert len(connected) == 1, [record.getMessage() for record in native_records(caplog)]
    record = connected[0]
    assert record.name == LINK_LOGGER
    assert record.levelno == logging.INFO
    # The event's fields follow its message.
    assert record.getMessage() == f"connected to the relay endpoint={relay.endpoint} link=1"
    assert record.pathname.endswith("link.rs") and record.lineno > 0


def test_events_below_the_configured_level_are_not_forwarded(relay, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="skytale_sdk")
    client = SkytaleClient(relay.endpoint, str(tmp_path / "alice"), b"alice")
    client.create_channel("acme/team/general").send(b"hello")
    client.close()
    assert native_records(caplog) == []


def test_a_lost_relay_is_a_warning(relay, make_client, caplog):
    caplog.set_level(logging.WARNING, logger="skytale_sdk")
    client = make_client("alice")
    relay.kill()
    wait_until(lambda: any("relay link lost" in record.getMessage() for record in native_records(caplog)))
    lost = next(record for record in native_records(caplog) if "relay link lost" in record.getMessage())
    assert lost.name == LINK_LOGGER and lost.levelno == logging.WARNING
    assert " reason=" in lost.getMessage()
    relay.start()
    client.close()


def test_a_logger_below_the_native_root_sets_its_own_level(relay, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="skytale_sdk")
    caplog.set_level(logging.INFO, logger=LINK_LOGGER)
    client = SkytaleClient(relay.endpoint, str(tmp_path / "alice"), b"alice")
    client.close()
    assert [record.name for record in native_records(caplog)] == [LINK_LOGGER]


def run_with_skytale_log(value: str | None, relay, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {key: val for key, val in os.environ.items() if key != "SKYTALE_LOG"}
    if value is not None:
        env["SKYTALE_LOG"] = value
    return subprocess.run(
        [sys.executable, "-c", CONNECT_SCRIPT, relay.endpoint, str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_skytale_log_prints_the_records_to_stderr(relay, tmp_path):
    result = run_with_skytale_log("debug", relay, tmp_path / "alice")
    assert result.returncode == 0, result.stderr
    assert f"INFO {LINK_LOGGER}: connected to the relay endpoint={relay.endpoint}" in result.stderr


def test_without_skytale_log_or_configuration_a_healthy_run_prints_nothing(relay, tmp_path):
    result = run_with_skytale_log(None, relay, tmp_path / "alice")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_skytale_log_that_is_not_a_level_is_named_in_a_warning(relay, tmp_path):
    result = run_with_skytale_log("loud", relay, tmp_path / "alice")
    assert result.returncode == 0, result.stderr
    assert "SKYTALE_LOG='loud' is not a level, so it is ignored: use one of trace, debug, info" in result.stderr

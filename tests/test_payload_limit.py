"""The relay's payload limit (``max_payload``) is on the encrypted message, against real relay processes: a send
of exactly ``max_payload`` is one ``ChannelError`` naming what fits, with no reconnect; what it names is sent and
delivered; a relay restarted with a smaller limit is never sent a frame over it. The relay's log shows each
stream it opened, and each stream it ended over a frame too large to read."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from channels import form_channel, inbox, take
from relay_process import RelayProcess
from skytale_sdk import ChannelError

CHANNEL = "acme/team/limit"
ADVICE = re.compile(r"send at most (\d+) bytes per message$")


def relay_log_count(relay: RelayProcess, event: str) -> int:
    """How often the relay process running now logged ``event`` ("stream opened", "stream failed")."""
    log = Path(relay.log_path).read_text()
    return log[log.rindex("relay listening") :].count(event)


def fitting(error: pytest.ExceptionInfo[ChannelError]) -> int:
    """The largest payload a size refusal names."""
    found = ADVICE.search(str(error.value))
    assert found, str(error.value)
    return int(found.group(1))


def test_a_send_of_exactly_max_payload_is_one_error_without_a_reconnect(relay, make_client) -> None:
    alice_client, bob_client = make_client("alice"), make_client("bob")
    alice, bob = form_channel(CHANNEL, [alice_client, bob_client])
    bob_inbox = inbox(bob)
    limit = alice_client.max_payload
    assert limit == 1 << 20
    opened = relay_log_count(relay, "stream opened")

    refused = (
        rf"^channel error: payload of {limit} bytes exceeds the relay limit of {limit} bytes once encrypted "
        r"\(an MLS message of \d+ bytes\); send at most \d+ bytes per message$"
    )
    with pytest.raises(ChannelError, match=refused) as error:
        alice.send(b"x" * limit)
    fits = fitting(error)
    assert fits < limit
    for too_large in (fits + 1, limit + 1):
        with pytest.raises(ChannelError, match=rf"^channel error: payload of {too_large} bytes exceeds") as error:
            alice.send(b"y" * too_large)
        assert fitting(error) == fits

    # What the refusal names fits, and the channel goes on; nothing refused reached bob.
    alice.send(b"z" * fits)
    alice.send(b"after")
    assert take(bob_inbox, 2) == [b"z" * fits, b"after"]
    assert relay_log_count(relay, "stream opened") == opened, "a client reconnected"
    assert relay_log_count(relay, "stream failed") == 0


def test_a_relay_restarted_with_a_smaller_limit_is_never_sent_a_frame_over_it(relay, make_client) -> None:
    alice_client, bob_client = make_client("alice"), make_client("bob")
    alice, bob = form_channel(CHANNEL, [alice_client, bob_client])
    bob_inbox = inbox(bob)
    failures: list[BaseException] = []

    def send_large() -> None:
        try:
            alice.send(b"x" * 600_000)
        except BaseException as error:  # noqa: BLE001 - checked below
            failures.append(error)

    relay.stop()
    # Checked against the 1 MiB limit of the stream that just ended, then waiting for the next one.
    sender = threading.Thread(target=send_large)
    sender.start()
    time.sleep(0.5)  # long enough for the send to be waiting (its error below says so if it was not)
    relay.max_payload = 4096
    relay.start()  # same port and data directory, a smaller limit
    sender.join()

    [error] = failures
    assert isinstance(error, ChannelError), repr(error)
    assert re.fullmatch(
        r"channel error: payload of 600000 bytes is too large once encrypted: an MLS message of \d+ bytes is over "
        r"the relay's limit of 4096 bytes, so it was not sent; send at most \d+ bytes per message",
        str(error),
    ), str(error)
    assert alice_client.max_payload == 4096
    alice.send(b"after the restart")
    assert take(bob_inbox, 1) == [b"after the restart"]
    # Each client reconnected once, and the restarted relay never had to end a stream over a frame.
    assert relay_log_count(relay, "stream opened") == 2
    assert relay_log_count(relay, "stream failed") == 0

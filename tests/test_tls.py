"""``skytale dev --tls``: the relay and the API over https, the SDK trusting the printed ``SKYTALE_CA_FILE``, and
the error a client trusting no CA, or another CA, gets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DEV_EXPORTS, DevStack
from skytale_sdk import SkytaleChannelManager, TransportError

# Only there so that a lost message fails a test instead of hanging it; never reached when things work.
PATIENCE = 60.0


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """One ``skytale dev --tls`` for the module; tests share it, so each uses its own channel names."""
    stack = DevStack(tmp_path_factory.mktemp("skytale-dev-tls"), tls=True)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CA of another ``skytale dev --tls`` (stopped again at once): it did not issue ``tls_stack``'s
    certificate."""
    other = DevStack(tmp_path_factory.mktemp("skytale-dev-tls-other"), tls=True)
    other.start()
    other.stop()
    return Path(other.env["SKYTALE_CA_FILE"])


@pytest.fixture
def tls_env(tls_stack: DevStack, monkeypatch: pytest.MonkeyPatch) -> DevStack:
    """The four printed variables in the environment; managers' default data_dirs in this test's home."""
    for name, value in tls_stack.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SKYTALE_DATA_DIR", raising=False)
    return tls_stack


def test_dev_tls_prints_https_urls_then_the_ca_file(tls_stack: DevStack) -> None:
    # The three lines scripts already read come first, in their order; the CA after them.
    assert tls_stack.exports == [*DEV_EXPORTS, "SKYTALE_CA_FILE"]
    assert tls_stack.env["SKYTALE_RELAY"].startswith("https://127.0.0.1:")
    assert tls_stack.env["SKYTALE_API_URL"].startswith("https://127.0.0.1:")
    ca_file = Path(tls_stack.env["SKYTALE_CA_FILE"])
    assert ca_file == tls_stack.directory / "stack" / "ca.pem"
    assert ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_managers_talk_over_https_trusting_the_printed_ca(tls_env: DevStack, channel_name: str) -> None:
    with SkytaleChannelManager("alice") as alice, SkytaleChannelManager("bob") as bob:
        alice.create(channel_name)
        bob.join_with_token(channel_name, alice.invite(channel_name))
        alice.send(channel_name, "over https")
        assert bob.receive(channel_name, timeout=PATIENCE) == ["over https"]
        bob.send(channel_name, "and back")
        assert alice.receive(channel_name, timeout=PATIENCE) == ["and back"]


@pytest.mark.parametrize("trusted", ["no CA", "another CA"])
def test_an_untrusted_certificate_raises_transport_error_naming_the_problem(
    tls_env: DevStack, other_ca: Path, monkeypatch: pytest.MonkeyPatch, trusted: str
) -> None:
    if trusted == "no CA":
        monkeypatch.delenv("SKYTALE_CA_FILE")
    else:
        monkeypatch.setenv("SKYTALE_CA_FILE", str(other_ca))
    with pytest.raises(TransportError) as raised:
        SkytaleChannelManager("carol")
    message = str(raised.value)
    assert message.startswith("transport error:")
    assert "invalid peer certificate: UnknownIssuer" in message
    # And what to do about it, rather than asking whether the server runs.
    assert "SKYTALE_CA_FILE" in message
    assert "is it running" not in message

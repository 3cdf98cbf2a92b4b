"""Section `peer`: the published reference SDK, `skytale-sdk==0.5.2` from PyPI, in its own virtualenv
(`target/peer-venv`, created on first use and reused), measured in its mock mode by `peer_probe.py` in a
subprocess running that venv's Python. Prints the probe's JSON object; fails, saying why, if the venv or PyPI
cannot be had.

Usage: .venv/bin/python benches/peer.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from output import emit, progress

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / "target" / "peer-venv"
PEER_PYTHON = PEER_VENV / "bin" / "python"
PEER_REQUIREMENT = "skytale-sdk==0.5.2"
PEER_VERSION_CHECK = "import importlib.metadata as m; print(m.version('skytale-sdk'))"
INSTALL_TIMEOUT_S = 300
PROBE_TIMEOUT_S = 300


class PeerUnavailable(RuntimeError):
    """The peer could not be installed or run."""


def run(command: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as error:
        raise PeerUnavailable(f"{' '.join(command[:3])} ... did not finish in {timeout:.0f} s") from error


def _last_line(text: str) -> str:
    """The line that says what went wrong (the driver shows a section's last stderr line as its reason)."""
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "no output")


def installed_version() -> str:
    if not PEER_PYTHON.exists():
        return ""
    return run([str(PEER_PYTHON), "-c", PEER_VERSION_CHECK], 60).stdout.strip()


def ensure_peer() -> str:
    """Creates the venv and installs the peer unless it is already there; returns the installed version."""
    version = installed_version()
    if version == PEER_REQUIREMENT.split("==")[1]:
        return version
    if not PEER_PYTHON.exists():
        progress(f"creating {PEER_VENV}")
        made = run([sys.executable, "-m", "venv", str(PEER_VENV)], 120)
        if made.returncode != 0:
            raise PeerUnavailable(f"python -m venv failed: {_last_line(made.stderr)}")
    progress(f"pip install {PEER_REQUIREMENT} (PyPI)")
    installed = run(
        [str(PEER_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check", PEER_REQUIREMENT],
        INSTALL_TIMEOUT_S,
    )
    if installed.returncode != 0:
        raise PeerUnavailable(f"pip install {PEER_REQUIREMENT} failed: {_last_line(installed.stderr)}")
    return installed_version()


def probe(quick: bool) -> dict[str, Any]:
    """Runs `peer_probe.py` with the peer's Python, away from this checkout's environment and data."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKYTALE_")}
    env.pop("PYTHONPATH", None)
    command = [str(PEER_PYTHON), str(Path(__file__).with_name("peer_probe.py"))] + (["--quick"] if quick else [])
    with tempfile.TemporaryDirectory(prefix="skytale-peer-") as home:
        env["HOME"] = home  # the peer's default data_dir lives under ~/.skytale
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=None, text=True, env=env, cwd=home, timeout=PROBE_TIMEOUT_S
        )
    if done.returncode != 0:
        raise PeerUnavailable(f"peer_probe.py exited with {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run")
    args = parser.parse_args()
    try:
        version = ensure_peer()
        figures = probe(args.quick)
    except PeerUnavailable as error:
        sys.exit(f"peer unavailable: {error}")
    emit({"package": f"skytale-sdk {version}", "mode": "mock (in-process, no relay)", **figures})


if __name__ == "__main__":
    main()

"""What a newcomer does: every Python sample of the README, in README order, and every example, each run twice in
a row against one ``skytale dev``, every run in a fresh process. The second run must work as the first did: the
agents' data_dirs (under this test's home directory, through ``HOME``) survive between runs, as they do on a
newcomer's machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import readme
from conftest import DevStack

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
RUN_TIMEOUT = 180


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The newcomer's home (and temp) directory, where the agents' default data_dirs stay from run to run and from
    the README to the examples (the same identities appear in both)."""
    return tmp_path_factory.mktemp("machine")


def run_twice(what: str, command: list[str], tmp_path: Path) -> None:
    env = os.environ | {"HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    for attempt in ("first", "second"):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=tmp_path)
        assert result.returncode == 0, f"{what}, {attempt} run:\n{result.stdout}\n{result.stderr}"
        assert result.stdout.strip(), f"{what}, {attempt} run printed nothing:\n{result.stderr}"


def test_every_readme_sample_runs_twice_in_readme_order(dev_env: DevStack, machine: Path) -> None:
    samples = [sample for sample in readme.samples() if sample.runnable]
    assert len(samples) >= 7, f"found only {len(samples)} runnable Python samples in README.md"
    for sample in samples:
        run_twice(f"the README sample at line {sample.line}", [sys.executable, "-c", sample.code], machine)


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_every_example_runs_twice(dev_env: DevStack, machine: Path, example: Path) -> None:
    run_twice(f"examples/{example.name}", [sys.executable, str(example)], machine)

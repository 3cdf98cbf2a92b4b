"""The wheels alone: a fresh virtualenv with only the two wheel files scripts/setup.sh built (scripts/wheels.sh),
installed with no package index and no Rust toolchain on its PATH, runs ``skytale dev`` and the full example."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import DevStack
from relay_process import REPO_ROOT

WHEEL_DIR = REPO_ROOT / "target" / "wheels-setup"
FULL_EXAMPLE = REPO_ROOT / "examples" / "full_example.py"
# Where the system's own programs live; a Rust toolchain (rustup's ~/.cargo/bin) is not among them.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def test_the_wheels_alone_run_skytale_dev_and_the_full_example(tmp_path: Path) -> None:
    wheels = sorted(WHEEL_DIR.glob("*.whl"))
    assert sorted(wheel.name.split("-")[0] for wheel in wheels) == ["skytale_cli", "skytale_sdk"], (
        f"scripts/setup.sh builds both wheels into {WHEEL_DIR}; found {[wheel.name for wheel in wheels]}"
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # --no-index: nothing comes from PyPI, so the wheel files are all there is.
    install = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", *map(str, wheels)]
    subprocess.run(install, check=True, timeout=300)

    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": f"{venv / 'bin'}:{SYSTEM_PATH}", "HOME": str(home), "TMPDIR": str(tmp_path), "LANG": "C.UTF-8"}
    for tool in ("cargo", "rustc", "maturin"):
        assert shutil.which(tool, path=env["PATH"]) is None, f"{tool} is on the test's PATH"
    skytale = shutil.which("skytale", path=env["PATH"])
    assert skytale == str(venv / "bin" / "skytale"), "pip put the skytale command on the virtualenv's PATH"

    stack = DevStack(tmp_path / "dev", binary=Path(skytale), env=env)
    stack.start()
    try:
        # Run from elsewhere than the source tree, so only the installed package can be imported.
        example = tmp_path / "full_example.py"
        shutil.copy(FULL_EXAMPLE, example)
        run = subprocess.run(
            [str(venv / "bin" / "python"), str(example)],
            cwd=tmp_path,
            env={**env, **stack.env},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stack.stop()
    assert run.returncode == 0, run.stderr
    assert "Bob received: Hello from Alice!" in run.stdout
    assert "Bob received: Another message!" in run.stdout
    imported_from = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import skytale_sdk; print(skytale_sdk.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert imported_from.startswith(str(venv)), imported_from

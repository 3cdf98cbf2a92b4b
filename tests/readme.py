"""The README's Python samples, for the test that runs them and for the type checkers (scripts/lint.sh).

``python tests/readme.py DIR`` writes each sample to ``DIR/readme_line_<N>.py`` (N: the line its fence is on),
replacing what DIR held, so that mypy and pyright check them as the README shows them.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

README = Path(__file__).resolve().parent.parent / "README.md"
#: Placed on the line before a sample's fence, with the reason, for a sample the tests cannot run.
NOT_RUN = "<!-- not run by tests/test_readme.py:"


class Sample(NamedTuple):
    line: int
    code: str
    runnable: bool


def samples() -> list[Sample]:
    """Every Python sample of the README, in order."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"^```python\n(.*?)^```$", text, re.S | re.M):
        line = text.count("\n", 0, match.start()) + 1
        previous_line = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        found.append(Sample(line, match.group(1), runnable=not previous_line.startswith(NOT_RUN)))
    return found


def write(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for sample in samples():
        (directory / f"readme_line_{sample.line}.py").write_text(sample.code, encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]))

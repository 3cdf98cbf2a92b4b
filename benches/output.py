"""How a section script talks to the driver: figures as one JSON object on stdout, progress on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any


def progress(message: str) -> None:
    """A progress line for the person watching (the driver prefixes it with the section name)."""
    print(message, file=sys.stderr, flush=True)


def emit(figures: dict[str, Any]) -> None:
    """The section's result: exactly one JSON object on stdout."""
    json.dump(figures, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()

"""The installed package: public names, error hierarchy, typing markers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import skytale_sdk


def test_public_names_import():
    from skytale_sdk import (  # noqa: F401
        AuthError,
        Channel,
        ChannelError,
        DataDirError,
        MessageIterator,
        MlsError,
        QuotaExceededError,
        SkytaleClient,
        SkytaleError,
        TransportError,
    )


def test_the_version_is_the_distributions():
    from importlib.metadata import version

    assert skytale_sdk.__version__ == version("skytale-sdk")


def test_every_error_is_a_skytale_runtime_error_with_a_code():
    from skytale_sdk import errors

    assert issubclass(errors.SkytaleError, RuntimeError)
    for name in errors.__all__:
        error_class = getattr(errors, name)
        assert issubclass(error_class, errors.SkytaleError)
        assert isinstance(error_class.code, str) and error_class.code
    assert errors.SkytaleError is skytale_sdk.SkytaleError


def test_typing_markers_are_installed():
    package_dir = Path(skytale_sdk.__file__).parent
    assert (package_dir / "py.typed").is_file()
    assert (package_dir / "_native.pyi").is_file()


def test_the_agent_tools_need_no_extra():
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in ("mcp", "langchain_core", "agents", "pydantic"))
    code = f"import sys; {blocked}; from skytale_sdk.tools import TOOL_SPECS, SkytaleTools, ToolError"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

"""Logging: the SDK's loggers, and ``SKYTALE_LOG``.

Everything the SDK logs goes to loggers under ``skytale_sdk``; the native client's events to those under
``skytale_sdk.native``, named after their Rust module (``skytale_sdk.native.skytale_client.transport.link``), at
``TRACE`` (5, registered here), ``DEBUG``, ``INFO``, ``WARNING`` or ``ERROR``. Configure them as any logger.

``SKYTALE_LOG=debug`` (or trace, info, warning, error, off) is the shortcut for a script that does not configure
logging: it sets the level of ``skytale_sdk`` and, unless a handler is configured already, prints its records to
stderr. Read when ``skytale_sdk`` is imported; this module runs before the native one loads, which reads the
levels it finds.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

TRACE = 5
"""The level of the native client's ``trace`` events, below ``DEBUG``."""

_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 1,
}


def _configure_from_environment() -> None:
    if logging.getLevelName(TRACE) != "TRACE":
        logging.addLevelName(TRACE, "TRACE")
    setting = os.environ.get("SKYTALE_LOG", "").strip()
    if not setting:
        return
    level = _LEVELS.get(setting.lower())
    if level is None:
        warnings.warn(
            f"SKYTALE_LOG={setting!r} is not a level, so it is ignored: use one of {', '.join(_LEVELS)}",
            stacklevel=3,
        )
        return
    logger = logging.getLogger("skytale_sdk")
    logger.setLevel(level)
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


_configure_from_environment()

"""Checks a tool call's arguments against the tool's input schema, so every framework gets the same checks and
the same messages, whether or not it validated them itself.

The schemas of :mod:`._catalog` use a small part of JSON Schema, and this is all of it: an object with
``properties`` (each of ``type`` string, integer, number or boolean, or no ``type`` for any JSON value; with
``minimum``, ``maximum``, ``minLength`` and ``default``), ``required`` and ``additionalProperties: false``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._errors import ToolError

__all__ = ["checked_arguments"]

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def checked_arguments(tool: str, schema: Mapping[str, Any], arguments: object) -> dict[str, Any]:
    """``arguments`` with the schema's defaults filled in; raises :class:`ToolError` naming the first argument
    that is missing, unknown or of the wrong type or range."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise ToolError(tool, f"{tool}: the arguments must be a JSON object, got {type(arguments).__name__}")
    properties: Mapping[str, Mapping[str, Any]] = schema["properties"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        expected = ", ".join(properties) or "none"
        raise ToolError(tool, f"{tool}: unknown argument {unknown[0]!r}; the arguments are: {expected}")
    checked: dict[str, Any] = {}
    for name, rules in properties.items():
        if name in arguments:
            checked[name] = _checked_value(tool, name, rules, arguments[name])
        elif name in schema.get("required", ()):
            raise ToolError(tool, f"{tool}: missing argument {name!r} ({rules['description']})")
        elif "default" in rules:
            checked[name] = rules["default"]
    return checked


def _checked_value(tool: str, name: str, rules: Mapping[str, Any], value: object) -> object:
    kind = rules.get("type")
    if kind is None:
        return value
    # bool is an int in Python, but true is not a number in JSON.
    if isinstance(value, bool) and kind != "boolean" or not isinstance(value, _TYPES[kind]):
        raise ToolError(tool, f"{tool}: argument {name!r} must be {_a(kind)}, got {_json_type(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError(tool, f"{tool}: argument {name!r} must be a finite number, got {value}")
    if "minimum" in rules and value < rules["minimum"]:
        raise ToolError(tool, f"{tool}: argument {name!r} must be at least {rules['minimum']}, got {value}")
    if "maximum" in rules and value > rules["maximum"]:
        raise ToolError(tool, f"{tool}: argument {name!r} must be at most {rules['maximum']}, got {value}")
    if "minLength" in rules and len(value) < rules["minLength"]:  # type: ignore[arg-type]
        raise ToolError(tool, f"{tool}: argument {name!r} must not be empty")
    return value


def _a(kind: str) -> str:
    return "an integer" if kind == "integer" else f"a {kind}"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__

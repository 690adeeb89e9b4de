"""Shared validation of the project's TOML configs: goal presets (``KeyChecker``: dotted keys, typed
reads, ranges, choices) and the train / eval configs (``load_section``: one ``[section]`` against a
key -> types spec, then ``check_ranges``). One place decides what "unknown key", "wrong type" and
"out of range" mean, and every message names the file, the key and the value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gdo_opt.errors import GdoError

try:  # Python >= 3.11; on 3.10 the `tomli` backport (pyproject: tomli; python_version < "3.11")
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """TOML text -> dict; a syntax error names ``source``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise GdoError(f"{source}: not valid TOML: {error}") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file -> dict; a missing file or a syntax error names the file."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise GdoError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise GdoError(f"{path}: is a folder, not a config file") from None
    except UnicodeDecodeError as error:
        raise GdoError(f"{path}: not UTF-8 text (byte {error.start}); TOML files must be UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise GdoError(f"{path}: invalid TOML: {error}") from None


# ----------------------------------------------------------------------------------------------
# Presets: dotted keys, typed reads with defaults


class KeyChecker:
    """Typed reads of a parsed TOML document; every failure names the source, the dotted key and the value."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, value: Any, why: str) -> GdoError:
        return GdoError(f"{self.source}: key {key} = {show(value)}: {why}")

    def check_keys(self, table: Any, prefix: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise self.fail(prefix, table, "expected a table")
        for key in sorted(table):
            if key not in allowed:
                dotted = f"{prefix}.{key}" if prefix else key
                raise self.fail(dotted, table[key], f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return table

    def num(self, table, prefix, key, default, lo=None, hi=None, integer=False, optional=False):
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in table:
            return default
        value = table[key]
        if optional and value == "none":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(dotted, value, "expected an integer" if integer else "expected a number")
        if integer and not isinstance(value, int):
            raise self.fail(dotted, value, "expected an integer")
        if not math.isfinite(value):
            raise self.fail(dotted, value, "must be finite")
        if lo is not None and value < lo:
            raise self.fail(dotted, value, f"must be >= {lo}")
        if hi is not None and value > hi:
            raise self.fail(dotted, value, f"must be <= {hi}")
        return int(value) if integer else float(value)

    def boolean(self, table, prefix, key, default):
        if key not in table:
            return default
        if not isinstance(table[key], bool):
            raise self.fail(f"{prefix}.{key}", table[key], "expected true or false")
        return table[key]

    def choice(self, table, prefix, key, default, choices):
        if key not in table:
            return default
        value = table[key]
        if value not in choices:
            raise self.fail(f"{prefix}.{key}", value, f"expected one of {', '.join(choices)}")
        return value

    def string(self, table, prefix, key, default):
        if key not in table:
            return default
        if not isinstance(table[key], str):
            raise self.fail(f"{prefix}.{key}" if prefix else key, table[key], "expected a string")
        return table[key]

    def strings(self, table, prefix, key, default, choices=None):
        if key not in table:
            return default
        value = table[key]
        dotted = f"{prefix}.{key}"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(dotted, value, "expected a list of strings")
        if choices is not None:
            for v in value:
                if v not in choices:
                    raise self.fail(dotted, value, f"{v!r} is not one of {', '.join(choices)}")
        if len(set(value)) != len(value):
            raise self.fail(dotted, value, "duplicate entries")
        return tuple(value)


def show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)



# ----------------------------------------------------------------------------------------------
# train.toml / eval.toml: one [section] checked against a spec


def _type_name(types: tuple[type, ...]) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "table"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def load_section(
    path: str | Path, section: str, spec: dict[str, tuple[type, ...]], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Read ``[section]`` of a TOML file, rejecting unknown keys, wrong types and missing required keys
    (file + key in the message)."""
    path = Path(path)
    data = read_toml(path)
    extra_sections = sorted(set(data) - {section})
    if extra_sections:
        raise GdoError(f"{path}: unknown section or key '{extra_sections[0]}' (expected only [{section}])")
    if section not in data or not isinstance(data[section], dict):
        raise GdoError(f"{path}: missing [{section}] table")
    values = data[section]
    for key, value in values.items():
        if key not in spec:
            raise GdoError(f"{path}: [{section}] unknown key '{key}' (known: {', '.join(sorted(spec))})")
        types = spec[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok and float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            values[key] = value
            ok = True
        if not ok:
            raise GdoError(f"{path}: [{section}] key '{key}' must be {_type_name(types)}, "
                           f"got {type(value).__name__} {value!r}")
    for key in required:
        if not values.get(key):
            raise GdoError(f"{path}: [{section}] missing required key '{key}'")
    return values


def str_list(path: Path, section: str, key: str, value: Any) -> list[str]:
    """A string or an array of strings -> a list of strings."""
    items = [value] if isinstance(value, str) else value
    if not all(isinstance(item, str) for item in items):
        raise GdoError(f"{path}: [{section}] key '{key}' must be a string or an array of strings")
    return list(items)


def str_map(path: Path, section: str, env: dict) -> dict[str, str]:
    """A table of strings or numbers -> str -> str (environment variables, model args)."""
    out = {}
    for key, value in env.items():
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise GdoError(f"{path}: [{section}.env] key '{key}' must be a string or number")
        out[str(key)] = str(value)
    return out




def check_ranges(path: Path, section: str, cfg: Any, at_least_1: tuple[str, ...] = (),
                 at_least_0: tuple[str, ...] = ()) -> None:
    """Integer settings that must be >= 1 (counts) or >= 0 (0 = off)."""
    for key in at_least_1:
        if getattr(cfg, key) < 1:
            raise GdoError(f"{path}: [{section}] key '{key}' must be >= 1")
    for key in at_least_0:
        if getattr(cfg, key) < 0:
            raise GdoError(f"{path}: [{section}] key '{key}' must be >= 0")

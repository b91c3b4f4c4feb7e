"""Experiment configs (YAML or TOML): sections become dataclasses; unknown keys, wrong types and out-of-range
values are errors that name the file and the key."""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from typing import Any

from clipcomp.errors import ClipcompError


def read_config(path: str) -> dict:
    from clipcomp.io import check_input_file

    check_input_file(path, "config file")
    try:
        if path.lower().endswith(".toml"):
            with open(path, "rb") as f:
                data = tomllib.load(f)
        elif path.lower().endswith((".yaml", ".yml")):
            import yaml

            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        else:
            raise ClipcompError(f"{path}: config must be .yaml, .yml or .toml")
    except UnicodeDecodeError as exc:
        raise ClipcompError(f"{path}: not UTF-8 text (byte {exc.start}); expected a YAML or TOML config") from None
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ClipcompError(f"{path}: not valid {'TOML' if path.endswith('.toml') else 'YAML'} ({exc})") from None
    except Exception as exc:  # yaml.YAMLError without importing yaml at module level
        if type(exc).__module__.startswith("yaml"):
            raise ClipcompError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        raise
    if not isinstance(data, dict):
        raise ClipcompError(f"{path}: the config must be a mapping of sections")
    return data


def _type_ok(value: Any, annotation: Any) -> bool:
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing) | {"list": list, "dict": dict})  # noqa: S307 - our own hints
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (str, bool):
        return isinstance(value, annotation)
    if origin is list:
        (inner,) = typing.get_args(annotation) or (Any,)
        return isinstance(value, list) and all(inner is Any or _type_ok(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return True


def build(cls, data: dict | None, where: str, path: str):
    """Instantiate dataclass `cls` from a mapping, checking keys, types and the class's own validate()."""
    data = data or {}
    if not isinstance(data, dict):
        raise ClipcompError(f"{path}: section '{where}' must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(fields)})"
            raise ClipcompError(f"{path}: unknown key '{where}.{key}'{hint}")
        if not _type_ok(value, hints[key]):
            raise ClipcompError(f"{path}: '{where}.{key}' = {value!r} has the wrong type (expected {hints[key]})")
    obj = cls(**data)
    if hasattr(obj, "validate"):
        try:
            obj.validate(where)
        except ClipcompError as exc:
            raise ClipcompError(f"{path}: {exc}") from None
    return obj


def check_sections(data: dict, allowed: tuple[str, ...], path: str) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=2)
            hint = f" (did you mean {', '.join(close)}?)" if close else f" (sections: {', '.join(allowed)})"
            raise ClipcompError(f"{path}: unknown section '{key}'{hint}")

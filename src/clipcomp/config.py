"""Typed experiment configs: one loader and one override syntax for the command line and Python.

Config objects are pydantic dataclasses (or models) in the module that uses them (`TrainConfig`, `SweepConfig`,
`QuickstartConfig`, `SlipformConfig`, `SuitesConfig`, the synthetic world's sections). They validate types on
construction (strictly: a string is not an int), so ``TrainConfig(steps=20)`` in a notebook is checked the same
way as a YAML file, and fields that depend on others (the warm-up) are settled in the object itself.

Files are YAML or TOML. Overrides are ``KEY.SUB=VALUE`` strings, the value read as YAML (``train.steps=20``,
``sweep.seeds=[0,1]``, ``train.loss_options.margin=0.2``); `clipcomp train CONFIG train.lr=1e-4` and
``load_config(path, overrides=["train.lr=1e-4"])`` accept the same. Every error is one line naming the file (or
"command line") and the key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import tomllib
from typing import Any

from clipcomp.errors import ClipcompError

__all__ = ["apply_overrides", "build", "check_sections", "load_config", "parse_overrides", "read_config", "typed"]


def typed(cls=None, /):
    """Class decorator: a pydantic dataclass with strict types, no unknown keys and no NaN/inf numbers (still a
    dataclass, so `dataclasses.asdict` and attribute assignment work as before)."""
    from pydantic import ConfigDict
    from pydantic.dataclasses import dataclass

    wrap = dataclass(config=ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True,
                                       allow_inf_nan=False))
    return wrap if cls is None else wrap(cls)


def read_config(path: str) -> dict:
    """A YAML/TOML file as a mapping (one-line errors for a missing, non-UTF-8 or malformed file)."""
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


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def parse_overrides(items: list[str] | tuple[str, ...] | dict | None) -> dict:
    """``["a.b=1", "a.c=[x, y]"]`` → ``{"a": {"b": 1, "c": ["x", "y"]}}`` (values read as YAML scalars/lists).
    A mapping is taken as already parsed (dotted keys still split)."""
    import yaml

    out: dict = {}
    pairs = items.items() if isinstance(items, dict) else []
    if not isinstance(items, dict):
        parsed = []
        for item in items or ():
            key, sep, text = str(item).partition("=")
            if not sep or not key.strip() or any(not p for p in key.strip().split(".")):
                raise ClipcompError(f"override {item!r}: expected KEY.SUB=VALUE (e.g. train.steps=20)")
            try:
                value = yaml.safe_load(text) if text.strip() else ""
            except yaml.YAMLError:
                value = text
            if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
                value = float(value)  # YAML 1.1 reads "1e-4" as a string; on a command line it means a number
            parsed.append((key.strip(), value))
        pairs = parsed
    for key, value in pairs:
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ClipcompError(f"override {key!r}: {p!r} is set to a value and a section at once")
        node[parts[-1]] = value
    return out


def apply_overrides(raw: dict, overrides) -> dict:
    """A deep copy of `raw` with the overrides merged in (mappings merge, anything else replaces)."""

    def merge(dst: dict, src: dict) -> dict:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = copy.deepcopy(v)
        return dst

    return merge(copy.deepcopy(raw or {}), parse_overrides(overrides))


def _field_names(cls) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return list(getattr(cls, "model_fields", {}))


def validation_error_line(exc, cls, where: str, path: str) -> str:
    """A pydantic ValidationError as one line: file, dotted key, what is wrong."""
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    key = ".".join([where, *loc]) if where else ".".join(loc)
    kind = err.get("type", "")
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        known = _field_names(cls)
        close = difflib.get_close_matches(str(loc[-1]) if loc else "", known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(known)})"
        return f"{path}: unknown key '{key}'{hint}"
    if kind == "missing" or kind == "missing_argument":
        return f"{path}: '{key}' is required"
    value = err.get("input")
    return f"{path}: '{key}' = {value!r} has the wrong type or value ({err.get('msg', kind)})"


def build(cls, data: dict | None, where: str, path: str):
    """An instance of config class `cls` from a mapping: keys, types and the class's own validate() checked,
    every problem one line naming `path` and ``where.key``."""
    from pydantic import ValidationError

    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ClipcompError(f"{path}: section '{where}' must be a mapping")
    unknown = [k for k in data if k not in _field_names(cls)]
    if unknown:
        known = _field_names(cls)
        close = difflib.get_close_matches(str(unknown[0]), known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(known)})"
        raise ClipcompError(f"{path}: unknown key '{where + '.' if where else ''}{unknown[0]}'{hint}")
    try:
        obj = cls(**data)
    except ValidationError as exc:
        raise ClipcompError(validation_error_line(exc, cls, where, path)) from None
    except ClipcompError as exc:  # raised by a __post_init__
        raise ClipcompError(f"{path}: {exc}") from None
    if hasattr(obj, "validate") and callable(obj.validate):
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


def load_config(source: str | dict | None, cls=None, section: str | None = None, overrides=(),
                sections: tuple[str, ...] | None = None, cls_fields: set[str] | None = None) -> Any:
    """Read a config file (or take a mapping), apply overrides, and build `cls` from it — or from its `section`
    (an override may name the section, ``train.steps=20``, or, with a section given, just ``steps=20``; without
    `cls`, `cls_fields` says which bare keys belong to the section). Without `cls`, returns the merged mapping
    (after checking `sections`)."""
    where_file = source if isinstance(source, str) else "command line"
    raw = read_config(source) if isinstance(source, str) else copy.deepcopy(source or {})
    ov = parse_overrides(overrides)
    if section is not None:
        names = set(_field_names(cls)) if cls is not None else set(cls_fields or ())
        lifted = {k: v for k, v in ov.items() if k != section and k in names}
        ov = {k: v for k, v in ov.items() if k not in lifted}
        if lifted:
            ov.setdefault(section, {}).update(lifted)
    raw = apply_overrides(raw, ov)
    if sections is not None:
        check_sections(raw, sections, where_file)
    if cls is None:
        return raw
    data = raw.get(section) if section is not None else raw
    return build(cls, data, section or "", where_file)

"""Compositionality suites and the uniform table: one row per model, one column per suite/subset, beside
zero-shot, retrieval and linear-probe columns (the trade-off columns compositionality papers report).

Suites come from the one registry (clipcomp.tasks.registry: a new suite is a dataset module and one entry
there). ``eval_suite`` runs one suite for one model and writes `items.parquet` + `summary.json`;
``run_suites(config, out)`` runs every (model, suite) of a YAML/TOML config
and writes ``OUT/table.csv`` and ``OUT/table.md``::

    models:
      - {name: random, model: clipcomp-tiny}
      - {name: slipform, model: clipcomp-tiny, pretrained: runs/slipform/final.pt}
    suites:
      - {suite: sugarcrepe, path: ../shared/data/sugarcrepe, images: ../shared/data/coco_mini/val2017}
      - {suite: coco-order, path: ../shared/data/coco_mini/annotations/captions_val2017.json}
      - {suite: winoground, path: winoground/examples.jsonl}
      - {suite: linear-probe, path: ../shared/data/coco_mini/annotations/instances_val2017.json}
    settings: {batch_size: 64, device: auto}
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict

from clipcomp.errors import ClipcompError
from clipcomp.models import ModelSpec
from clipcomp.tasks.registry import SUITES, Suite, get_suite, register_suite  # noqa: F401 - re-exported
from clipcomp.tasks.run import run_suite


def eval_suite(suite: str, path: str, out: str, images: str | None = None, spec: ModelSpec | None = None,
               options: dict | None = None, force: bool = False, progress: bool = True) -> dict:
    """Run one registered suite on one model (clipcomp.tasks.run.run_suite); returns the summary."""
    return run_suite(suite, path, out, images, spec, options, force, progress)


def summary_columns(suite: str, out: str, label: str | None = None) -> dict[str, float]:
    """The table columns of one finished (model, suite) run, from its details/metrics.json."""
    from clipcomp.io import read_json

    return get_suite(suite).table_columns(read_json(os.path.join(out, "details", "metrics.json")), label)


class ModelEntry(BaseModel):
    """One model row of a suites table."""

    model_config = ConfigDict(strict=True, extra="forbid")
    model: str
    name: str | None = None
    pretrained: str | None = None
    seed: int = 0

    @property
    def label(self) -> str:
        return str(self.name or self.model)


class SuiteEntry(BaseModel):
    """One suite column group: the registered suite, its data, and its own options (any other keys)."""

    model_config = ConfigDict(strict=True, extra="allow")
    suite: str
    path: str
    images: str | None = None
    name: str | None = None

    @property
    def options(self) -> dict:
        return dict(self.model_extra or {})

    @property
    def label(self) -> str:
        return str(self.name or self.suite)


class SuitesSettings(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    batch_size: int = 64
    device: str = "auto"
    skip_bad: bool = False  # every suite records and skips unreadable images (a suite's own `skip_bad:` wins)


class SuitesConfig(BaseModel):
    """Every model × every suite → one table (`run_suites`)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    models: list[ModelEntry]
    suites: list[SuiteEntry]
    settings: SuitesSettings = SuitesSettings()


def load_suites_config(source: str | dict, overrides=()) -> SuitesConfig:
    """A SuitesConfig from a YAML/TOML file (paths relative to the file resolve against its folder) or a mapping,
    with ``KEY.SUB=VALUE`` overrides (e.g. ``settings.batch_size=32``); every suite name checked up front."""
    from pydantic import ValidationError

    from clipcomp.config import apply_overrides, read_config, validation_error_line
    from clipcomp.tasks.registry import get_suite

    where = source if isinstance(source, str) else "command line"
    raw = apply_overrides(read_config(source) if isinstance(source, str) else dict(source), overrides)
    models, suites = raw.get("models"), raw.get("suites")
    if not isinstance(models, list) or not models or not isinstance(suites, list) or not suites:
        raise ClipcompError(f"{where}: needs `models:` and `suites:` lists (see `clipcomp eval suites --help`)")
    if any(not isinstance(m, dict) or "model" not in m for m in models):
        raise ClipcompError(f"{where}: each model needs `model:` (and optionally name, pretrained)")
    if any(not isinstance(x, dict) or "suite" not in x or "path" not in x for x in suites):
        raise ClipcompError(f"{where}: each suite needs `suite:` and `path:`")
    base = os.path.dirname(os.path.abspath(source)) if isinstance(source, str) else os.getcwd()
    raw["models"] = [{**m, "pretrained": _path(m.get("pretrained"), base)} for m in models]
    raw["suites"] = [{**x, "path": _path(x["path"], base), "images": _path(x.get("images"), base)} for x in suites]
    try:
        cfg = SuitesConfig(**raw)
    except ValidationError as exc:
        raise ClipcompError(validation_error_line(exc, SuitesConfig, "", where)) from None
    for x in cfg.suites:
        try:
            get_suite(x.suite)
        except ClipcompError as exc:
            raise ClipcompError(f"{where}: {exc}") from None
    return cfg


def run_suites(config: SuitesConfig | str | dict, out: str, force: bool = False, progress: bool = True,
               overrides=(), skip_bad: bool = False) -> str:
    """Every (model, suite) of a config (object, mapping or file); returns the path of OUT/table.csv (a Markdown
    copy beside it)."""
    import pyarrow as pa

    from clipcomp.analysis.gather import write_table
    from clipcomp.io import check_output_path

    check_output_path(out)
    cfg = config if isinstance(config, SuitesConfig) and not overrides else load_suites_config(
        config.model_dump() if isinstance(config, SuitesConfig) else config, overrides)
    if skip_bad:
        cfg.settings.skip_bad = True
    rows = []
    for m in cfg.models:
        spec = ModelSpec(model=m.model, pretrained=m.pretrained, device=cfg.settings.device,
                         batch_size=cfg.settings.batch_size, seed=m.seed)
        row: dict = {"model": m.label}
        for s in cfg.suites:
            run_dir = os.path.join(out, _safe(m.label), _safe(s.label))
            eval_suite(s.suite, s.path, run_dir, s.images, spec, {"skip_bad": cfg.settings.skip_bad, **s.options},
                       force, progress)
            row.update(summary_columns(s.suite, run_dir, s.label))
        rows.append(row)
    names = list(dict.fromkeys(k for r in rows for k in r))
    table = pa.table({k: [r.get(k) for r in rows] for k in names})
    os.makedirs(out, exist_ok=True)
    path = write_table(table, os.path.join(out, "table.csv"))
    write_table(table, os.path.join(out, "table.md"))
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name)


def _path(p, base: str):
    if p is None:
        return None
    p = str(p)
    return p if os.path.isabs(p) or os.path.exists(p) or "://" in p or not os.path.exists(os.path.join(base, p)) \
        else os.path.join(base, p)

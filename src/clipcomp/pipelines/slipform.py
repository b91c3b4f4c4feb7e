"""Slipform: ConcretePlant negatives + the Cement loss + fine-tuning, evaluated before and after on the suites.

The recipe as one call (``run_slipform(config)``; ``clipcomp slipform CONFIG -o OUT``), each step an existing
library function:

1. ``prepare``: read the training pairs (COCO captions JSON or any image–caption manifest), generate
   ConcretePlant negatives of every type, adds included (`negatives.generate_negatives`, --rank concreteness),
   and write ``OUT/train.parquet``: every pair, with its K most concrete negatives (`negatives_per_caption`,
   default 1 as NegCLIP) and a mask; a caption without a negative stays in the contrastive term (its placeholder
   is masked out of the softmax), as NegCLIP keeps every caption.
2. ``train``: `train.finetune` with loss `cement` (fields hard_negatives/concreteness) from any loadable model.
3. ``evaluate``: `suites.run_suites` on the starting model and on the fine-tuned one → ``OUT/table.md``.

Config (YAML/TOML): ``data`` (+ ``images``), ``model``, ``pretrained``, ``train`` (TrainConfig keys: steps,
batch_size, lr, …, loss_options), ``negatives`` (NegativeOptions keys: types, stats, candidates, …) and
``suites`` (as in `clipcomp eval suites`). See examples/slipform.yaml.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from clipcomp.errors import ClipcompError
from clipcomp.io import write_parquet

DEFAULT_TYPES = ("replace-obj", "replace-att", "replace-rel", "swap-obj", "swap-att", "add-obj", "add-att")


def _pairs(data: str, images: str | None) -> tuple[list[str], list[str]]:
    """(image paths, captions) of a COCO captions JSON or a manifest with image/caption columns."""
    from clipcomp.datasets import open_dataset

    ds = open_dataset(data, "pairs", images)
    return list(ds.paths), list(ds.captions)


def concreteness_value(row: dict, scale: str) -> float | None:
    """The 0–1 concreteness Cement reads: (rating − 1) / 4 of the changed word on the raw scale (the default),
    its within-part-of-speech percentile with scale="pos-percentile"."""
    if scale == "pos-percentile":
        return row.get("concreteness_norm")
    raw = row.get("concreteness_original")
    return None if raw is None else (raw - 1.0) / 4.0


def read_negatives(path: str, caps: list[str]) -> dict[int, list[dict]]:
    """A negatives table's rows by caption row, refusing one made for other training data (a row whose caption
    is not the training caption at that position)."""
    from clipcomp.io import check_input_file

    check_input_file(path, "negatives table")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - a bad file is a one-line error
        raise ClipcompError(f"{path}: not a readable negatives Parquet file ({exc})") from None
    missing = {"row", "caption", "negative", "type"} - set(table.column_names)
    if missing:
        raise ClipcompError(f"{path}: not a negatives table (missing columns {', '.join(sorted(missing))})")
    by_row: dict[int, list[dict]] = {}
    for r in table.to_pylist():
        i = r["row"]
        if i is None or not 0 <= i < len(caps) or (r["caption"] or "").strip() != caps[i].strip():
            where = f"row {i} is past the {len(caps):,} training pairs" if i is None or not 0 <= i < len(caps) \
                else f"row {i} is a negative of {r['caption'][:60]!r}, the training caption there is {caps[i][:60]!r}"
            raise ClipcompError(f"{path}: its rows do not match the training data ({where})")
        by_row.setdefault(i, []).append(r)
    return by_row


def prepare(data: str, out: str, images: str | None = None, negatives: dict | None = None,
            force: bool = False, k: int = 1, negatives_from: str | None = None) -> dict:
    """Write OUT/train.parquet: **every** pair, with up to `k` ConcretePlant negatives (the most concrete changed
    spans first) in list columns `hard_negatives`, `concreteness`, `negative_types` and `negative_mask` (1 = a
    negative, 0 = a placeholder: the caption itself, left out of the softmax by the loss). NegCLIP keeps every
    caption in the contrastive term and adds negatives as extra columns; so does Slipform. `negatives_from`: an
    existing negatives.parquet of these captions instead of generating them (checked row by row)."""
    from clipcomp.negatives import generate_negatives

    if k < 1:
        raise ClipcompError(f"negatives_per_caption must be ≥ 1 (got {k})")
    paths, caps = _pairs(data, images)
    if not caps:
        raise ClipcompError(f"{data}: no image–caption pairs")
    os.makedirs(out, exist_ok=True)
    src = os.path.join(out, "captions.parquet")
    same = os.path.exists(src) and pq.read_table(src).column("caption").to_pylist() == caps
    if not same:  # rewritten only when it changes, so a rerun reuses the finished negatives
        write_parquet(pa.table({"caption": caps}), src)
    opts = _negative_options(negatives or {}, force)
    if negatives_from is not None:
        by_row = read_negatives(negatives_from, caps)
        by_type: dict[str, int] = {}
        for rows in by_row.values():
            for r in rows:
                by_type[r["type"]] = by_type.get(r["type"], 0) + 1
    else:
        neg_dir = os.path.join(out, "negatives")
        by_type = generate_negatives([src], neg_dir, opts).by_type
        by_row = read_negatives(os.path.join(neg_dir, "negatives.parquet"), caps)
    cols: dict[str, list] = {"hard_negatives": [], "concreteness": [], "negative_types": [], "negative_mask": []}
    for i, cap in enumerate(caps):
        values = [concreteness_value(r, opts.scale) for r in by_row.get(i, [])]
        order = sorted(range(len(values)), key=lambda j: -(values[j] if values[j] is not None else -1.0))[:k]
        mine = [by_row[i][j] for j in order]  # the K most concrete changed spans (on the run's scale)
        pad = k - len(mine)
        cols["hard_negatives"].append([r["negative"] for r in mine] + [cap] * pad)
        cols["concreteness"].append([values[j] for j in order] + [None] * pad)
        cols["negative_types"].append([r["type"] for r in mine] + [""] * pad)
        cols["negative_mask"].append([1.0] * len(mine) + [0.0] * pad)
    table = pa.table({"image": paths, "caption": caps, "hard_negatives": cols["hard_negatives"],
                      "concreteness": pa.array(cols["concreteness"], pa.list_(pa.float64())),
                      "negative_types": cols["negative_types"],
                      "negative_mask": pa.array(cols["negative_mask"], pa.list_(pa.float64()))})
    path = os.path.join(out, "train.parquet")
    write_parquet(table, path)
    n_with = sum(1 for i in range(len(caps)) if by_row.get(i))
    return {"train": path, "n_pairs": len(caps), "n_with_negative": n_with, "n_without": len(caps) - n_with,
            "negatives_per_caption": k, "negatives": by_type}


class SlipformConfig(BaseModel):
    """The Slipform recipe's settings: data, the starting model, and the train / negatives / suites sections."""

    model_config = ConfigDict(strict=True, extra="forbid")
    data: str
    images: str | None = None
    model: str | None = None  # default: train.model, else clipcomp-tiny
    pretrained: str | None = None
    train: dict = {}
    negatives: dict = {}
    negatives_per_caption: int = 1  # K negatives per caption (NegCLIP: 1; clipcomp's option)
    negatives_from: str | None = None  # an existing negatives.parquet of the same captions (else generated)
    suites: list[dict] | None = None
    settings: dict = {}

    @property
    def architecture(self) -> str:
        return self.model or self.train.get("model") or "clipcomp-tiny"

    def train_config(self, out: str):
        """The TrainConfig of the fine-tuning step (Cement on OUT/data/train.parquet unless train.loss says else)."""
        from clipcomp.config import build
        from clipcomp.train.trainer import TrainConfig

        tr = dict(self.train)
        tr.update({"data": os.path.join(out, "data", "train.parquet"), "out": os.path.join(out, "train"),
                   "loss": tr.get("loss", "cement"), "model": self.architecture,
                   "pretrained": self.pretrained if self.pretrained is not None else tr.get("pretrained"),
                   "image_column": "image", "caption_column": "caption",
                   "fields": {"hard_negatives": "hard_negatives", "concreteness": "concreteness",
                              "negative_mask": "negative_mask"}})
        return build(TrainConfig, tr, "train", "slipform config")

    def suites_config(self, train_out: str, start_pretrained: str | None):
        """The before/after suites table: the starting model and the fine-tuned one on every suite."""
        from clipcomp.pipelines.suites import load_suites_config

        start = {"name": "start", "model": self.architecture}
        if start_pretrained:
            start["pretrained"] = start_pretrained
        tuned = {"name": "slipform", "model": self.architecture, "pretrained": os.path.join(train_out, "final.pt")}
        return load_suites_config({"models": [start, tuned], "suites": list(self.suites or []),
                                   "settings": dict(self.settings)})


def load_slipform_config(source: str | dict, overrides=()) -> SlipformConfig:
    """A SlipformConfig from YAML/TOML (relative paths resolve against the file's folder) or a mapping, with
    ``KEY.SUB=VALUE`` overrides; the train, negatives and suites sections are checked in full before any work."""
    from pydantic import ValidationError

    from clipcomp.config import apply_overrides, read_config, validation_error_line

    where = source if isinstance(source, str) else "command line"
    raw = apply_overrides(read_config(source) if isinstance(source, str) else dict(source), overrides)
    if "data" not in raw:
        raise ClipcompError(f"{where}: needs `data:` (a COCO captions JSON or an image–caption manifest)")
    base = os.path.dirname(os.path.abspath(source)) if isinstance(source, str) else os.getcwd()

    def here(p):
        return None if p is None else (p if os.path.isabs(str(p)) or os.path.exists(str(p))
                                       else os.path.join(base, str(p)))

    raw["data"], raw["images"] = here(raw["data"]), here(raw.get("images"))
    if raw.get("pretrained") is not None:
        raw["pretrained"] = here(raw["pretrained"])
    if raw.get("suites"):
        if not isinstance(raw["suites"], list) or any(not isinstance(x, dict) or "path" not in x
                                                       for x in raw["suites"]):
            raise ClipcompError(f"{where}: each suite needs `suite:` and `path:`")
        raw["suites"] = [{**x, "path": here(x["path"]), "images": here(x.get("images"))} for x in raw["suites"]]
    try:
        cfg = SlipformConfig(**raw)
    except ValidationError as exc:
        raise ClipcompError(validation_error_line(exc, SlipformConfig, "", where)) from None
    try:  # every section checked now, so no mistake surfaces after fine-tuning
        cfg.train_config("OUT")
        _negative_options(cfg.negatives, False)
        if cfg.suites:
            cfg.suites_config("OUT/train", cfg.pretrained)
    except ClipcompError as exc:
        msg = str(exc)
        raise ClipcompError(msg if msg.startswith(where) else f"{where}: {msg.removeprefix('slipform config: ')}") \
            from None
    return cfg


def _negative_options(negatives: dict, force: bool):
    import dataclasses

    from clipcomp.negatives import NegativeOptions

    opts = {"types": DEFAULT_TYPES, "rank": "concreteness", **(negatives or {})}
    opts["types"] = tuple(opts["types"])
    known = {f.name for f in dataclasses.fields(NegativeOptions)} - {"force"}
    unknown = [k for k in opts if k not in known]
    if unknown:
        raise ClipcompError(f"unknown key 'negatives.{unknown[0]}' (known: {', '.join(sorted(known))})")
    neg = NegativeOptions(**opts, force=force)
    neg.validate()
    return neg


def run_slipform(config: SlipformConfig | str | dict, out: str, force: bool = False, progress: bool = True,
                 overrides=()) -> dict:
    """prepare → fine-tune with Cement → suites before/after; returns paths and counts. `config` is a
    SlipformConfig, a mapping or a YAML/TOML path (validated in full before any work starts)."""
    from clipcomp.io import check_output_path, prepare_output
    from clipcomp.pipelines.suites import run_suites
    from clipcomp.train.finetune import finetune

    check_output_path(out)
    cfg = config if isinstance(config, SlipformConfig) and not overrides else load_slipform_config(
        config.model_dump() if isinstance(config, SlipformConfig) else config, overrides)
    inputs = [cfg.data, cfg.images, cfg.pretrained, *(config if isinstance(config, str) else "",),
              *[p for x in cfg.suites or [] for p in (x.get("path"), x.get("images"))]]
    prepare_output(out, "slipform", cfg.model_dump(), force=force, inputs=[p for p in inputs if p])
    tcfg = cfg.train_config(out)
    prep = prepare(cfg.data, os.path.join(out, "data"), cfg.images, cfg.negatives, force, cfg.negatives_per_caption,
                   cfg.negatives_from)
    res = finetune(tcfg, [], progress=progress, force=force)
    table = None
    if cfg.suites:
        table = run_suites(cfg.suites_config(tcfg.out, tcfg.pretrained), os.path.join(out, "suites"), force,
                           progress)
    return {**prep, "weights": os.path.join(tcfg.out, "final.pt"), "train_summary": res["train"], "table": table}

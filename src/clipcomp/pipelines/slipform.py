"""Slipform: ConcretePlant negatives + the Cement loss + fine-tuning, evaluated before and after on the suites.

The recipe as one call (``run_slipform(config)``; ``clipcomp slipform CONFIG -o OUT``), each step an existing
library function:

1. ``prepare``: read the training pairs (COCO captions JSON or any image–caption manifest), generate one
   ConcretePlant negative per caption (`negatives.generate_negatives`, --rank concreteness), and write
   ``OUT/train.parquet`` (image, caption, hard_negative, concreteness = the changed span's normalized
   concreteness). Captions with nothing perturbable are left out of training and counted.
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

from clipcomp.errors import ClipcompError

DEFAULT_TYPES = ("replace-obj", "replace-att", "replace-rel", "swap-obj", "swap-att")


def _pairs(data: str, images: str | None) -> tuple[list[str], list[str]]:
    """(image paths, captions) of a COCO captions JSON or a manifest with image/caption columns."""
    from clipcomp.datasets.image_text import load_coco_pairs, load_pairs_manifest

    ds = load_coco_pairs(data, images) if data.lower().endswith(".json") else load_pairs_manifest(data, images)
    return list(ds.paths), list(ds.captions)


def prepare(data: str, out: str, images: str | None = None, negatives: dict | None = None,
            force: bool = False) -> dict:
    """Write OUT/train.parquet: every pair with its ConcretePlant negative and that span's concreteness."""
    from clipcomp.negatives import NegativeOptions, generate_negatives

    paths, caps = _pairs(data, images)
    if not caps:
        raise ClipcompError(f"{data}: no image–caption pairs")
    os.makedirs(out, exist_ok=True)
    src = os.path.join(out, "captions.parquet")
    same = os.path.exists(src) and pq.read_table(src).column("caption").to_pylist() == caps
    if not same:  # rewritten only when it changes, so a rerun reuses the finished negatives
        pq.write_table(pa.table({"caption": caps}), src)
    opts = {"types": DEFAULT_TYPES, "rank": "concreteness", **(negatives or {})}
    opts["types"] = tuple(opts["types"])
    neg_dir = os.path.join(out, "negatives")
    res = generate_negatives([src], neg_dir, NegativeOptions(**opts, force=force))
    neg = pq.read_table(os.path.join(neg_dir, "negatives.parquet"),
                        columns=["row", "negative", "concreteness_norm", "type"]).to_pylist()
    first: dict[int, dict] = {}
    for r in neg:
        first.setdefault(r["row"], r)
    rows = sorted(first)
    table = pa.table({"image": [paths[i] for i in rows], "caption": [caps[i] for i in rows],
                      "hard_negative": [first[i]["negative"] for i in rows],
                      "concreteness": pa.array([first[i]["concreteness_norm"] for i in rows], pa.float64()),
                      "negative_type": [first[i]["type"] for i in rows]})
    path = os.path.join(out, "train.parquet")
    pq.write_table(table, path)
    return {"train": path, "n_pairs": len(caps), "n_with_negative": len(rows),
            "n_without": len(caps) - len(rows), "negatives": res.by_type}


def run_slipform(config: str, out: str, force: bool = False, progress: bool = True) -> dict:
    """prepare → fine-tune with Cement → suites before/after; returns paths and counts."""
    import yaml

    from clipcomp.config import build, read_config
    from clipcomp.io import check_output_path
    from clipcomp.pipelines.suites import run_suites
    from clipcomp.train.finetune import finetune
    from clipcomp.train.trainer import TrainConfig

    check_output_path(out)
    raw = read_config(config)
    if not isinstance(raw, dict):
        raise ClipcompError(f"{config}: expected a mapping (data, model, train, negatives, suites)")
    base = os.path.dirname(os.path.abspath(config))

    def here(p):
        return None if p is None else (p if os.path.isabs(str(p)) or os.path.exists(str(p))
                                       else os.path.join(base, str(p)))

    if "data" not in raw:
        raise ClipcompError(f"{config}: needs `data:` (a COCO captions JSON or an image–caption manifest)")
    prep = prepare(here(raw["data"]), os.path.join(out, "data"), here(raw.get("images")), raw.get("negatives"),
                   force)
    tr = dict(raw.get("train") or {})
    tr.update({"data": prep["train"], "out": os.path.join(out, "train"), "loss": tr.get("loss", "cement"),
               "model": raw.get("model", tr.get("model", "clipcomp-tiny")),
               "pretrained": here(raw.get("pretrained", tr.get("pretrained"))),
               "image_column": "image", "caption_column": "caption",
               "fields": {"hard_negatives": "hard_negative", "concreteness": "concreteness"}})
    cfg = build(TrainConfig, tr, "train", config)
    res = finetune(cfg, [], progress=progress, force=force)
    suites = raw.get("suites")
    table = None
    if suites:
        start = {"name": "start", "model": cfg.model}
        if cfg.pretrained:
            start["pretrained"] = cfg.pretrained
        tuned = {"name": "slipform", "model": cfg.model, "pretrained": os.path.join(cfg.out, "final.pt")}
        suites_cfg = os.path.join(out, "suites.yaml")
        with open(suites_cfg, "w", encoding="utf-8") as f:
            yaml.safe_dump({"models": [start, tuned],
                            "suites": [{**s, "path": here(s["path"]), "images": here(s.get("images"))}
                                       for s in suites],
                            "settings": raw.get("settings", {})}, f)
        table = run_suites(suites_cfg, os.path.join(out, "suites"), force, progress)
    return {**prep, "weights": os.path.join(cfg.out, "final.pt"), "train_summary": res["train"], "table": table}

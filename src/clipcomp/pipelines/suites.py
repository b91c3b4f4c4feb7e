"""Compositionality suites and the uniform table: one row per model, one column per suite/subset, beside
zero-shot, retrieval and linear-probe columns (the trade-off columns compositionality papers report).

``SUITES`` maps a suite name to (loader, task): a new suite is a loader module in `datasets/`, a task (or the
shared caption-selection task) and one entry here. ``eval_suite`` runs one suite for one model and writes
`items.parquet` + `summary.json`; ``run_suites(config, out)`` runs every (model, suite) of a YAML/TOML config
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
from collections.abc import Callable
from dataclasses import dataclass

from clipcomp.errors import ClipcompError
from clipcomp.tasks.run import ModelSpec, _run


@dataclass(frozen=True)
class Suite:
    name: str
    load: Callable  # (path, images, out, options) -> dataset
    run: Callable  # (embedder, dataset, options) -> TaskResult
    needs_images: bool = True
    doc: str = ""


def _selection(emb, ds, opts):
    from clipcomp.tasks import selection

    return selection.evaluate(emb, ds, skip_bad=opts.get("skip_bad", False))


def _load_sugarcrepe(path, images, out, opts):
    from clipcomp.datasets.selection import load_sugarcrepe

    return load_sugarcrepe([path], images)


def _load_sugarcrepe_pp(path, images, out, opts):
    from clipcomp.datasets.sugarcrepe_pp import load_sugarcrepe_pp

    return load_sugarcrepe_pp([path], images)


def _run_sugarcrepe_pp(emb, ds, opts):
    from clipcomp.tasks import sugarcrepe_pp

    return sugarcrepe_pp.evaluate(emb, ds, skip_bad=opts.get("skip_bad", False))


def _load_vg(kind):
    def load(path, images, out, opts):
        from clipcomp.datasets.aro import load_vg

        return load_vg(path, images, os.path.join(out, "crops"), kind)

    return load


def _load_coco_order(path, images, out, opts):
    from clipcomp.datasets.aro import coco_order
    from clipcomp.datasets.coco import default_image_root

    return coco_order(path, images or default_image_root(path), int(opts.get("per_image", 1)),
                      int(opts.get("seed", 0)))


def _load_flickr_order(path, images, out, opts):
    from clipcomp.datasets.aro import flickr_order

    return flickr_order(path, images, int(opts.get("per_image", 1)), int(opts.get("seed", 0)))


def _load_valse(path, images, out, opts):
    from clipcomp.datasets.valse import load_valse

    return load_valse([path], images)


def _load_winoground(path, images, out, opts):
    from clipcomp.datasets.winoground import load_winoground

    return load_winoground(path, images)


def _run_winoground(emb, ds, opts):
    from clipcomp.tasks import winoground

    return winoground.evaluate(emb, ds, skip_bad=opts.get("skip_bad", False))


def _load_zeroshot(path, images, out, opts):
    from clipcomp.datasets.classification import load_image_folder, load_manifest

    return load_image_folder(path, opts.get("classnames")) if os.path.isdir(path) else \
        load_manifest(path, opts.get("classnames"), images)


def _run_zeroshot(emb, ds, opts):
    from clipcomp.tasks import zeroshot

    return zeroshot.evaluate(emb, ds, zeroshot.load_templates(opts.get("templates", "openai")),
                             skip_bad=opts.get("skip_bad", False))


def _load_retrieval(path, images, out, opts):
    from clipcomp.datasets.coco import load_coco_captions

    return load_coco_captions(path, images)


def _run_retrieval(emb, ds, opts):
    from clipcomp.tasks import retrieval

    return retrieval.evaluate(emb, ds, skip_bad=opts.get("skip_bad", False))


def _load_probe(path, images, out, opts):
    from clipcomp.tasks import linear_probe

    if path.endswith(".json"):
        return linear_probe.coco_multilabel(path, images)
    return linear_probe.from_classification(_load_zeroshot(path, images, out, opts))


def _run_probe(emb, ds, opts):
    from clipcomp.tasks import linear_probe

    return linear_probe.evaluate(emb, ds, seed=int(opts.get("seed", 0)), skip_bad=opts.get("skip_bad", False))


SUITES: dict[str, Suite] = {s.name: s for s in [
    Suite("sugarcrepe", _load_sugarcrepe, _selection, doc="SugarCrepe JSON files (one per subset)"),
    Suite("sugarcrepe++", _load_sugarcrepe_pp, _run_sugarcrepe_pp, doc="SugarCrepe++ JSON: ITT and TOT"),
    Suite("aro-vg-relation", _load_vg("relation"), _selection, doc="ARO visual_genome_relation.json"),
    Suite("aro-vg-attribution", _load_vg("attribution"), _selection, doc="ARO visual_genome_attribution.json"),
    Suite("coco-order", _load_coco_order, _selection, needs_images=False,
          doc="ARO COCO-Order, built from a COCO captions JSON"),
    Suite("flickr-order", _load_flickr_order, _selection, doc="ARO Flickr-Order, built from Flickr captions"),
    Suite("valse", _load_valse, _selection, doc="VALSE piece JSON files"),
    Suite("winoground", _load_winoground, _run_winoground, needs_images=False,
          doc="Winoground examples.jsonl (+ images/): text, image, group scores"),
    Suite("zeroshot", _load_zeroshot, _run_zeroshot, needs_images=False, doc="zero-shot classification"),
    Suite("retrieval", _load_retrieval, _run_retrieval, needs_images=False, doc="COCO-style retrieval"),
    Suite("linear-probe", _load_probe, _run_probe, needs_images=False,
          doc="logistic-regression probe (COCO instances JSON: multi-label mAP; folder/manifest: accuracy)"),
]}


def eval_suite(suite: str, path: str, out: str, images: str | None = None, spec: ModelSpec | None = None,
               options: dict | None = None, force: bool = False, progress: bool = True) -> dict:
    """Run one suite on one model; writes OUT/items.parquet + summary.json and returns the summary."""
    from clipcomp.io import check_output_path

    if suite not in SUITES:
        raise ClipcompError(f"unknown suite {suite!r} (expected one of {', '.join(SUITES)})")
    check_output_path(out)
    s = SUITES[suite]
    if not os.path.exists(path):
        raise ClipcompError(f"{path}: {suite} data not found")
    if s.needs_images and images is None:
        raise ClipcompError(f"suite {suite} needs images: give `images: DIR` (its image folder)")
    opts = dict(options or {})
    os.makedirs(out, exist_ok=True)
    ds = s.load(path, images, out, opts)
    settings = {"suite": suite, "data": os.path.abspath(path), "images": images, "options": opts}
    return _run(f"suite {suite}", lambda emb: s.run(emb, ds, opts), spec or ModelSpec(), out, settings, force,
                progress)


def summary_columns(suite: str, out: str) -> dict[str, float]:
    """The table columns of one finished (model, suite) run, from its details/metrics.json."""
    import json

    with open(os.path.join(out, "details", "metrics.json"), encoding="utf-8") as f:
        m = json.load(f)
    cols: dict[str, float] = {}
    if suite == "winoground":
        for k in ("text", "image", "group"):
            cols[f"winoground/{k}"] = m[f"{k}_score"]
    elif suite == "sugarcrepe++":
        cols["sugarcrepe++/itt"], cols["sugarcrepe++/tot"] = m["itt_acc"], m["tot_acc"]
        for sub, v in m.get("per_subset", {}).items():
            cols[f"sugarcrepe++/{sub}/itt"], cols[f"sugarcrepe++/{sub}/tot"] = v["itt"], v["tot"]
    elif suite == "zeroshot":
        cols["zeroshot/acc1"] = m.get("acc1")
    elif suite == "retrieval":
        for k in ("image_retrieval_recall@5", "text_retrieval_recall@5"):
            if k in m:
                cols[f"retrieval/{k}"] = m[k]
    elif suite == "linear-probe":
        key = "map" if "map" in m else "acc1"
        cols[f"linear-probe/{key}"] = m[key]
    else:
        cols[suite] = m.get("acc")
        per = m.get("per_subset_acc", {})
        if suite in ("aro-vg-relation", "aro-vg-attribution"):
            cols[f"{suite}/macro"] = sum(per.values()) / len(per) if per else float("nan")
        elif len(per) > 1 or suite in ("sugarcrepe", "valse"):
            for sub, v in per.items():
                cols[f"{suite}/{sub}"] = v
    return cols


def run_suites(config: str, out: str, force: bool = False, progress: bool = True) -> str:
    """Every (model, suite) of a config; returns the path of OUT/table.csv (a Markdown copy beside it)."""
    import pyarrow as pa

    from clipcomp.config import read_config
    from clipcomp.analysis.gather import write_table
    from clipcomp.io import check_output_path

    check_output_path(out)
    raw = read_config(config)
    if not isinstance(raw, dict):
        raise ClipcompError(f"{config}: expected a mapping with `models:` and `suites:`")
    models, suites = raw.get("models"), raw.get("suites")
    if not isinstance(models, list) or not models or not isinstance(suites, list) or not suites:
        raise ClipcompError(f"{config}: needs `models:` and `suites:` lists (see `clipcomp eval suites --help`)")
    settings = raw.get("settings") or {}
    base = os.path.dirname(os.path.abspath(config))
    rows = []
    for m in models:
        if not isinstance(m, dict) or "model" not in m:
            raise ClipcompError(f"{config}: each model needs `model:` (and optionally name, pretrained)")
        name = str(m.get("name") or m["model"])
        spec = ModelSpec(model=m["model"], pretrained=_path(m.get("pretrained"), base),
                         device=settings.get("device", "auto"), batch_size=int(settings.get("batch_size", 64)),
                         seed=int(m.get("seed", 0)))
        row: dict = {"model": name}
        for s in suites:
            if not isinstance(s, dict) or "suite" not in s or "path" not in s:
                raise ClipcompError(f"{config}: each suite needs `suite:` and `path:`")
            opts = {k: v for k, v in s.items() if k not in ("suite", "path", "images", "name")}
            label = str(s.get("name") or s["suite"])
            run_dir = os.path.join(out, _safe(name), _safe(label))
            eval_suite(s["suite"], _path(s["path"], base), run_dir, _path(s.get("images"), base), spec, opts,
                       force, progress)
            cols = summary_columns(s["suite"], run_dir)
            if label != s["suite"]:
                cols = {label + k[len(s["suite"]):]: v for k, v in cols.items()}
            row.update(cols)
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

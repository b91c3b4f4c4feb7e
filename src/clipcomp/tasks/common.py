"""Shared pieces of the tasks: reading manifests, resolving image paths, writing per-item results + summary."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from clipcomp.datasets.common import IMAGE_EXTENSIONS, require_columns, resolve
from clipcomp.io import read_json, read_table

__all__ = ["IMAGE_EXTENSIONS", "TaskResult", "read_json", "read_table", "require_columns", "resolve",
           "write_result"]



@dataclass
class TaskResult:
    """Per-item results (one row per item) and the summary metrics of one evaluation."""

    task: str
    dataset: str
    items: pa.Table
    metrics: dict
    skipped: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)




def _scalar(v) -> bool:
    return v is None or isinstance(v, (int, float, str, bool))


# CLIP_benchmark's dataset names for the subsets of suites it also runs (one summary row per subset there).
SUBSET_DATASET = {"sugarcrepe": "sugar_crepe"}


def _file_safe(name: str) -> str:
    """A subset name as part of a file name (VG relations have spaces; nothing may leave the folder)."""
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in str(name))


def write_result(result: TaskResult, out_dir: str, model_info: dict) -> dict:
    """Write `items.parquet` and `summary.json` (+ one `summary_<subset>.json` per subset); return the summary.

    Every summary file is a CLIP_benchmark result: `dataset`, `model`, `pretrained` (a string), `task` and a flat
    `metrics` mapping of numbers, so `clip_benchmark build` and `clipcomp eval gather` read a run folder as it
    is. Nested metrics (per class, per subset, by number of objects) and the skipped-item list go to
    `details/metrics.json` and `details/skipped.json`, which neither tool mistakes for a result.
    """
    from clipcomp.io import atomic_output, atomic_write_json, package_version

    os.makedirs(os.path.join(out_dir, "details"), exist_ok=True)
    with atomic_output(os.path.join(out_dir, "items.parquet")) as tmp:
        pq.write_table(result.items, tmp)
    flat = {k: v for k, v in result.metrics.items() if _scalar(v)}
    pretrained = model_info.get("pretrained")
    if pretrained is None:
        pretrained = f"random-init(seed={model_info.get('seed', 0)})"
    base = {
        "model": model_info.get("model"),
        "pretrained": str(pretrained),
        "task": result.task,
        "n_skipped": len(result.skipped),
        "model_identity": model_info.get("identity"),
        "device": model_info.get("device"),
        "precision": model_info.get("precision"),
        "clipcomp_version": package_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **{k: v for k, v in result.extra.items() if _scalar(v)},
    }
    summary = {"dataset": result.dataset, **base, "metrics": flat, "n_items": result.items.num_rows}
    atomic_write_json(os.path.join(out_dir, "details", "metrics.json"), result.metrics)
    atomic_write_json(os.path.join(out_dir, "details", "skipped.json"), result.skipped)
    per_subset = result.metrics.get("per_subset_metrics") or {
        k: {"acc": v} for k, v in (result.metrics.get("per_subset_acc") or {}).items()}
    if len(per_subset) > 1 or (per_subset and "/" not in result.dataset):
        root = result.dataset.split("/")[0]
        name = SUBSET_DATASET.get(root, result.dataset)  # one prefix per suite (aro/vg_relation/…, valse/…)
        subset_col = result.items.column("subset").to_pylist() if "subset" in result.items.column_names else []
        for subset, values in per_subset.items():
            atomic_write_json(os.path.join(out_dir, f"summary_{_file_safe(subset)}.json"),
                              {"dataset": f"{name}/{subset}", **base, "metrics": values,
                               "n_items": sum(1 for s in subset_col if s == subset)})
    atomic_write_json(os.path.join(out_dir, "summary.json"), summary)
    return summary

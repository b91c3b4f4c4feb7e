"""Shared pieces of the tasks: reading manifests, resolving image paths, writing per-item results + summary."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from clipcomp.errors import ClipcompError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class TaskResult:
    """Per-item results (one row per item) and the summary metrics of one evaluation."""

    task: str
    dataset: str
    items: pa.Table
    metrics: dict
    skipped: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def read_table(path: str) -> pa.Table:
    """A manifest as an Arrow table: Parquet, CSV, TSV or JSON Lines, chosen by extension."""
    if not os.path.exists(path):
        raise ClipcompError(f"{path}: file not found")
    low = path.lower()
    try:
        if low.endswith((".parquet", ".pq")):
            return pq.read_table(path)
        if low.endswith(".csv"):
            return pacsv.read_csv(path)
        if low.endswith(".tsv"):
            return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter="\t"))
        if low.endswith((".jsonl", ".ndjson")):
            import pyarrow.json as pajson

            return pajson.read_json(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ClipcompError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from None
    raise ClipcompError(f"{path}: unknown manifest type (expected .parquet, .csv, .tsv or .jsonl)")


def read_json(path: str):
    """A whole JSON file, with one-line errors for a missing file or invalid JSON."""
    if not os.path.exists(path):
        raise ClipcompError(f"{path}: file not found")
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except ValueError as exc:
            raise ClipcompError(f"{path}: not valid JSON ({exc})") from None


def require_columns(table: pa.Table, columns: list[str], path: str, what: str = "") -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ClipcompError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}"
                            f"{' ' + what if what else ''} (columns: {', '.join(table.column_names)})")


def resolve(path: str, root: str | None) -> str:
    return path if os.path.isabs(path) or root is None else os.path.join(root, path)


def write_result(result: TaskResult, out_dir: str, model_info: dict) -> dict:
    """Write `items.parquet` and `summary.json` (CLIP_benchmark fields + provenance); return the summary."""
    from clipcomp import __version__

    os.makedirs(out_dir, exist_ok=True)
    pq.write_table(result.items, os.path.join(out_dir, "items.parquet"))
    summary = {
        "dataset": result.dataset,
        "model": model_info.get("model"),
        "pretrained": model_info.get("pretrained"),
        "task": result.task,
        "metrics": result.metrics,
        "n_items": result.items.num_rows,
        "skipped": result.skipped,
        "model_identity": model_info.get("identity"),
        "device": model_info.get("device"),
        "precision": model_info.get("precision"),
        "clipcomp_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **result.extra,
    }
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, default=float)
        f.write("\n")
    return summary

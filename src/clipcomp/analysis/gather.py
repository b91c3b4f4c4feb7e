"""Merge evaluation summaries (clipcomp's or CLIP_benchmark's JSON results) into one table: one row per result
file, metrics as columns — what `clip_benchmark build` does, with Parquet/Markdown outputs and clean columns."""

from __future__ import annotations

import glob
import json
import os

import pyarrow as pa

from clipcomp.errors import ClipcompError

KEY_COLUMNS = ("model", "pretrained", "dataset", "task")


def result_files(paths: list[str]) -> list[str]:
    """Every `*.json` result in the given run folders (not recursive, like clip_benchmark) or files."""
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(glob.glob(os.path.join(p, "*.json")))
            if not found:
                raise ClipcompError(f"{p}: no *.json results in this folder")
            files.extend(found)
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise ClipcompError(f"{p}: not found")
    return files


def gather_runs(paths: list[str]) -> pa.Table:
    """One row per result: model, pretrained, dataset, task, every scalar metric, then the other scalar fields."""
    rows = []
    for f in result_files(paths):
        try:
            with open(f, encoding="utf-8") as fh:
                data = json.load(fh)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ClipcompError(f"{f}: not a JSON result ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
            raise ClipcompError(f"{f}: not an evaluation result (no 'metrics' mapping)")
        row = {k: data.get(k) for k in KEY_COLUMNS}
        row["pretrained"] = "" if row["pretrained"] is None else str(row["pretrained"])
        for k, v in data["metrics"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[k] = float(v)
        for k, v in data.items():
            if k not in row and k != "metrics" and (v is None or isinstance(v, (str, int, float, bool))):
                row[k] = v
        row["file"] = f
        rows.append(row)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    return pa.table({c: [r.get(c) for r in rows] for c in columns})


def write_table(table: pa.Table, out: str) -> str:
    """By extension: .csv, .parquet or .md (a Markdown table of the key columns and the metrics)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    low = out.lower()
    if os.path.isdir(out):
        raise ClipcompError(f"{out}: is a directory; give a file name ending in .csv, .parquet or .md")
    if low.endswith(".csv"):
        pacsv.write_csv(table, out)
    elif low.endswith((".parquet", ".pq")):
        pq.write_table(table, out)
    elif low.endswith(".md"):
        cols = [c for c in table.column_names if c not in ("file", "created", "model_identity", "clipcomp_version")]
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        for r in table.to_pylist():
            lines.append("| " + " | ".join(_cell(r[c]) for c in cols) + " |")
        with open(out, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    else:
        raise ClipcompError(f"{out}: unknown table type (expected .csv, .parquet or .md)")
    return out


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:.4f}"
    return str(v)

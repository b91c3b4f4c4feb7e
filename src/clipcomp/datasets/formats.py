"""Which format a data path is in, decided once (`clipcomp.datasets.open_dataset` loads it for a purpose).

Every command that takes "a dataset" (training pairs, a classification set, caption-selection items) asks
`detect_format` instead of looking at suffixes itself, so a path means the same thing everywhere:

- ``synthetic``: a lab dataset directory (manifest.parquet + meta.json, see clipcomp.synth.dataset)
- ``arrays``: images.npy + manifest.parquet (memory-mapped generated images, see clipcomp.datasets.arrays)
- ``webdataset``: .tar shards — a file, a brace pattern, a glob, a folder of .tar files or a remote URL
- ``coco``: a COCO-style JSON (``images`` + ``annotations``)
- ``json``: any other JSON file (e.g. one SugarCrepe subset)
- ``manifest``: a table (.csv, .tsv, .parquet, .jsonl)
- ``folder``: any other directory (class sub-folders of images, or a folder of suite JSON files)
"""

from __future__ import annotations

import glob
import os

from clipcomp.errors import ClipcompError

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson")
# formats a training data source may be given in (`--data-format`); "auto" asks detect_format
TRAIN_FORMATS = ("auto", "synthetic", "arrays", "coco", "manifest", "webdataset")


def _looks_like_coco(path: str) -> bool:
    """COCO files start with info/licenses and then `images`; a look at the first 64 KiB decides."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return b'"images"' in head or b'"annotations"' in head


def detect_format(path: str, what: str = "data") -> str:
    """The format of `path` (see the module docstring); a missing path is one line naming it."""
    low = path.lower()
    if "://" in path or "{" in path or low.endswith(".tar") or "::" in path:
        return "webdataset"
    if any(ch in path for ch in "*?[") and low.rstrip("]*?").endswith((".tar", "*")):
        return "webdataset"
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "manifest.parquet")) and os.path.exists(os.path.join(path, "meta.json")):
            return "synthetic"
        if os.path.isfile(os.path.join(path, "images.npy")) and \
                os.path.isfile(os.path.join(path, "manifest.parquet")):
            return "arrays"
        if glob.glob(os.path.join(path, "*.tar")):
            return "webdataset"
        return "folder"
    if not os.path.exists(path):
        raise ClipcompError(f"{path}: {what} not found")
    if low.endswith(".json"):
        return "coco" if _looks_like_coco(path) else "json"
    if low.endswith(TABLE_SUFFIXES):
        return "manifest"
    return "unknown"


def train_format(path: str) -> str:
    """detect_format for a training source: one of TRAIN_FORMATS[1:] (any JSON file is read as COCO captions)."""
    fmt = detect_format(path, "training data")
    if fmt == "json":
        return "coco"
    if fmt == "folder":
        raise ClipcompError(f"{path}: a directory that is neither a synthetic dataset (manifest.parquet + meta.json) "
                            "nor a folder of .tar shards; name the format with --data-format")
    if fmt == "unknown":
        raise ClipcompError(f"{path}: cannot tell the data format from the name; use --data-format "
                            f"({', '.join(TRAIN_FORMATS[1:])})")
    return fmt

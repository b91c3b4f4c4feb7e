"""Image classification datasets: a folder with one sub-folder per class, or a `path,label` manifest; or
in-memory images (`arrays`) such as generated test sets."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from clipcomp.datasets.common import IMAGE_EXTENSIONS, require_columns, resolve
from clipcomp.errors import ClipcompError
from clipcomp.io import read_table


@dataclass
class ClassificationData:
    name: str
    paths: list[str]
    labels: np.ndarray  # class index per image
    classnames: list[str]
    extra: pa.Table | None = None  # further manifest columns, carried into the per-item results
    arrays: np.ndarray | None = None  # in-memory uint8 images (N×H×W×3) instead of files at `paths`


def _read_classnames(path: str) -> dict[str, str] | list[str]:
    """JSON {folder: name} / list, `folder<TAB>name` lines, or plain names one per line."""
    if not os.path.exists(path):
        raise ClipcompError(f"{path}: class names file not found")
    from clipcomp.io import read_json, read_text

    if path.lower().endswith(".json"):
        obj = read_json(path, "class names JSON")
        if not isinstance(obj, (dict, list)):
            raise ClipcompError(f"{path}: expected a JSON object {{folder: name}} or a list of names")
        return obj
    text = read_text(path, "class names file")
    lines = [ln.rstrip("\n") for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if lines and all("\t" in ln for ln in lines):
        return {a.strip(): b.strip() for a, b in (ln.split("\t", 1) for ln in lines)}
    return [ln.strip() for ln in lines]


def load_image_folder(root: str, classnames_file: str | None = None) -> ClassificationData:
    if not os.path.isdir(root):
        raise ClipcompError(f"{root}: image folder not found")
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if not folders:
        raise ClipcompError(f"{root}: no class sub-folders (expected ROOT/<class>/<image>)")
    names = [f.replace("_", " ") for f in folders]
    if classnames_file:
        given = _read_classnames(classnames_file)
        if isinstance(given, dict):
            missing = [f for f in folders if f not in given]
            if missing:
                raise ClipcompError(f"{classnames_file}: no class name for folder(s) {', '.join(missing[:10])}")
            names = [given[f] for f in folders]
        else:
            unknown = sorted(set(given) - set(folders) - set(names))
            absent = [f for f, n in zip(folders, names, strict=True) if f not in given and n not in given]
            if unknown or absent:
                raise ClipcompError(
                    f"{classnames_file}: class names do not match the folders of {root}"
                    + (f"; no folder for {', '.join(unknown[:10])}" if unknown else "")
                    + (f"; no name for folder {', '.join(absent[:10])}" if absent else "")
                    + " (use 'folder<TAB>name' lines to map them)")
    paths, labels = [], []
    for ci, folder in enumerate(folders):
        for dirpath, _, files in os.walk(os.path.join(root, folder)):
            for fn in sorted(files):
                if fn.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(dirpath, fn))
                    labels.append(ci)
    if not paths:
        raise ClipcompError(f"{root}: no images in the class folders")
    return ClassificationData(os.path.basename(os.path.normpath(root)), paths, np.array(labels), names)


def load_manifest(path: str, classnames_file: str | None = None, image_root: str | None = None,
                  path_column: str = "path", label_column: str = "label") -> ClassificationData:
    table = read_table(path)
    require_columns(table, [path_column, label_column], path, "for zero-shot classification")
    root = image_root or os.path.dirname(os.path.abspath(path))
    paths = [resolve(str(p), root) for p in table.column(path_column).to_pylist()]
    raw = table.column(label_column).to_pylist()
    if any(v is None for v in raw):
        row = raw.index(None)
        raise ClipcompError(f"{path}: row {row + 1}: empty {label_column!r}")
    if classnames_file:
        given = _read_classnames(classnames_file)
        classnames = list(given.values()) if isinstance(given, dict) else list(given)
    else:
        classnames = sorted({str(v) for v in raw}) if not all(isinstance(v, int) for v in raw) else None
        if classnames is None:
            raise ClipcompError(f"{path}: integer labels need --classnames FILE")
    index = {c: i for i, c in enumerate(classnames)}
    labels = []
    for row, v in enumerate(raw, start=1):
        if isinstance(v, int) and not isinstance(v, bool):
            if not 0 <= v < len(classnames):
                raise ClipcompError(f"{path}: row {row}: label {v} out of range (0..{len(classnames) - 1})")
            labels.append(v)
        elif str(v) in index:
            labels.append(index[str(v)])
        else:
            raise ClipcompError(f"{path}: row {row}: label {v!r} is not among the class names")
    extra = table.drop_columns([c for c in (path_column, label_column) if c in table.column_names])
    name = os.path.splitext(os.path.basename(path))[0]
    return ClassificationData(name, paths, np.array(labels), classnames, extra if extra.num_columns else None)


def open_suite(path: str, images: str | None, options: dict, cache: str) -> ClassificationData:
    """Class folders or a path,label manifest (option classnames: a class-name file)."""
    if os.path.isdir(path):
        return load_image_folder(path, options.get("classnames"))
    return load_manifest(path, options.get("classnames"), images)

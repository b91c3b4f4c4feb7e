"""Dataset loaders: one module per on-disk format (COCO, manifests, WebDataset shards, classification folders,
and each suite's official files). `open_dataset` decides the format once (`formats.detect_format`) and loads a
path for a purpose."""

from __future__ import annotations

import os

from clipcomp.datasets.formats import TRAIN_FORMATS, detect_format, train_format
from clipcomp.errors import ClipcompError

__all__ = ["PURPOSES", "TRAIN_FORMATS", "detect_format", "open_dataset", "train_format"]

PURPOSES = ("pairs", "classification", "selection")


def open_dataset(path: str, purpose: str, images: str | None = None, **options):
    """Load `path` for a purpose, in whatever format it is:

    - ``pairs`` → ImageTextData (COCO captions JSON or manifest; options image_column, caption_column)
    - ``classification`` → ClassificationData (class folders or a path,label manifest; option classnames)
    - ``selection`` → SelectionData (a manifest, or SugarCrepe JSON files/folders, which need `images`)
    """
    if purpose not in PURPOSES:
        raise ClipcompError(f"unknown dataset purpose {purpose!r} (expected one of {', '.join(PURPOSES)})")
    paths = [path] if isinstance(path, str) else list(path)
    if not paths:
        raise ClipcompError(f"{purpose}: needs at least one input path")
    fmt = detect_format(paths[0]) if len(paths) == 1 else "json"
    if purpose == "pairs":
        from clipcomp.datasets.image_text import load_coco_pairs, load_pairs_manifest

        if fmt in ("coco", "json"):
            return load_coco_pairs(paths[0], images)
        return load_pairs_manifest(paths[0], images, options.get("image_column"), options.get("caption_column"))
    if purpose == "classification":
        from clipcomp.datasets.classification import load_image_folder, load_manifest

        if os.path.isdir(paths[0]):
            return load_image_folder(paths[0], options.get("classnames"))
        return load_manifest(paths[0], options.get("classnames"), images)
    from clipcomp.datasets.selection import load_selection_manifest, load_sugarcrepe

    if fmt == "manifest":
        return load_selection_manifest(paths[0], images)
    if images is None:
        raise ClipcompError("SugarCrepe input needs --images DIR (the COCO val2017 images)")
    return load_sugarcrepe(paths, images)

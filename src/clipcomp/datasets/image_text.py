"""Image–caption pairs for training, map-style: a COCO captions JSON + image folder, or a manifest table
(CSV/TSV/Parquet/JSONL) with an image-path column and a caption column (open_clip's `--csv-img-key` /
`--csv-caption-key` convention, names as options). Extra columns travel as per-item fields for the loss.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from clipcomp.errors import ClipcompError
from clipcomp.io import read_json, read_table

IMAGE_COLUMNS = ("filepath", "image", "image_path", "path", "file_name", "filename", "img")
CAPTION_COLUMNS = ("title", "caption", "text", "TEXT", "captions", "positive")


@dataclass
class ImageTextData:
    """One training item per (image, caption); `fields` holds further per-item values by name."""

    name: str
    paths: list[str]
    captions: list[str]
    fields: dict[str, list] = field(default_factory=dict)
    source: str = ""

    def __len__(self) -> int:
        return len(self.paths)


def _resolve(path: str, root: str | None) -> str:
    return path if os.path.isabs(path) or root is None else os.path.join(root, path)


def load_coco_pairs(path: str, image_root: str | None = None) -> ImageTextData:
    """COCO captions JSON → one item per caption (as NegCLIP and open_clip fine-tune on COCO)."""
    from clipcomp.datasets.coco import default_image_root

    obj = read_json(path, "COCO captions JSON")
    if not isinstance(obj, dict) or "images" not in obj or "annotations" not in obj:
        raise ClipcompError(f"{path}: expected a COCO captions JSON with 'images' and 'annotations'")
    root = image_root or default_image_root(path)
    if root is None:
        raise ClipcompError(f"{path}: pass --images DIR (the folder holding its images)")
    files = {}
    for i, im in enumerate(obj["images"]):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise ClipcompError(f"{path}: images[{i}] lacks 'id' or 'file_name'")
        files[im["id"]] = _resolve(im["file_name"], root)
    paths, caps, ids = [], [], []
    for i, a in enumerate(obj["annotations"]):
        if not isinstance(a, dict) or "caption" not in a or "image_id" not in a:
            raise ClipcompError(f"{path}: annotations[{i}] lacks 'caption' or 'image_id' (an instances file?)")
        if a["image_id"] not in files:
            raise ClipcompError(f"{path}: annotations[{i}] refers to unknown image_id {a['image_id']}")
        paths.append(files[a["image_id"]])
        caps.append(str(a["caption"]).strip())
        ids.append(a["image_id"])
    if not caps:
        raise ClipcompError(f"{path}: no captions (empty 'annotations')")
    return ImageTextData(os.path.splitext(os.path.basename(path))[0], paths, caps, {"image_id": ids}, path)


def load_pairs_manifest(path: str, image_root: str | None = None, image_column: str | None = None,
                        caption_column: str | None = None) -> ImageTextData:
    """A table with an image-path column and a caption column (detected from common names when not given)."""
    table = read_table(path)
    names = table.column_names

    def pick(given, candidates, what, option):
        if given is not None:
            if given not in names:
                raise ClipcompError(f"{path}: no column {given!r} for the {what} (columns: {', '.join(names)})")
            return given
        found = next((c for c in candidates if c in names), None)
        if found is None:
            raise ClipcompError(f"{path}: no {what} column; name it with {option} (columns: {', '.join(names)})")
        return found

    img_col = pick(image_column, IMAGE_COLUMNS, "image path", "--image-column")
    cap_col = pick(caption_column, CAPTION_COLUMNS, "caption", "--caption-column")
    if table.num_rows == 0:
        raise ClipcompError(f"{path}: no rows")
    root = image_root or os.path.dirname(os.path.abspath(path))
    raw_paths = table.column(img_col).to_pylist()
    caps = table.column(cap_col).to_pylist()
    for row, (p, c) in enumerate(zip(raw_paths, caps, strict=True), start=1):
        if p is None or c is None:
            raise ClipcompError(f"{path}: row {row}: empty {img_col if p is None else cap_col!r}")
    fields = {c: table.column(c).to_pylist() for c in names if c not in (img_col, cap_col)}
    return ImageTextData(os.path.splitext(os.path.basename(path))[0], [_resolve(str(p), root) for p in raw_paths],
                         [str(c) for c in caps], fields, path)

"""COCO captions JSON for retrieval (images + their captions) and the COCO folder layout."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from clipcomp.datasets.common import resolve
from clipcomp.errors import ClipcompError
from clipcomp.io import read_json


def default_image_root(json_path: str) -> str | None:
    """COCO layout: annotations/captions_val2017.json → ../val2017/ (when that folder exists)."""
    base = os.path.basename(json_path)
    if base.startswith("captions_") and base.endswith(".json"):
        split = base[len("captions_"):-len(".json")]
        cand = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(json_path))), split)
        if os.path.isdir(cand):
            return cand
    return None


@dataclass
class CaptionData:
    name: str
    image_ids: list[int]
    paths: list[str]
    captions: list[str]
    caption_image: np.ndarray  # index into images, per caption


def load_coco_captions(path: str, image_root: str | None = None) -> CaptionData:
    obj = read_json(path)
    if not isinstance(obj, dict) or "images" not in obj or "annotations" not in obj:
        raise ClipcompError(f"{path}: expected COCO captions JSON with 'images' and 'annotations'")
    root = image_root or default_image_root(path)
    if root is None:
        raise ClipcompError(f"{path}: pass --images DIR (the folder holding the images)")
    images = obj["images"]
    index = {}
    paths, ids = [], []
    for i, im in enumerate(images):
        if "id" not in im or "file_name" not in im:
            raise ClipcompError(f"{path}: images[{i}] lacks 'id' or 'file_name'")
        index[im["id"]] = len(ids)
        ids.append(im["id"])
        paths.append(resolve(im["file_name"], root))
    caps, owner = [], []
    for i, a in enumerate(obj["annotations"]):
        if "caption" not in a or "image_id" not in a:
            raise ClipcompError(f"{path}: annotations[{i}] lacks 'caption' or 'image_id' (an instances file?)")
        if a["image_id"] not in index:
            raise ClipcompError(f"{path}: annotations[{i}] refers to unknown image_id {a['image_id']}")
        caps.append(a["caption"].strip())
        owner.append(index[a["image_id"]])
    return CaptionData(os.path.splitext(os.path.basename(path))[0], ids, paths, caps, np.array(owner))


def open_suite(path: str, images: str | None, options: dict, cache: str) -> CaptionData:
    """COCO-style captions JSON for retrieval (images default to the COCO layout next to the JSON)."""
    return load_coco_captions(path, images)

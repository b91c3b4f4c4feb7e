"""SugarCrepe++ (Dumpala et al. 2024) in its official files: one JSON per subset (replace_att, replace_obj,
replace_rel, swap_att, swap_obj), items {filename, caption, caption2, negative_caption} — two captions that
mean the same in different words and one that changes the meaning — as a dict keyed by id or a list."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from clipcomp.datasets.common import resolve
from clipcomp.datasets.selection import json_files
from clipcomp.errors import ClipcompError
from clipcomp.io import read_json


@dataclass
class SugarCrepePPData:
    name: str
    ids: list[str] = field(default_factory=list)
    subsets: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    caption: list[str] = field(default_factory=list)
    caption2: list[str] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)


def load_sugarcrepe_pp(files: list[str], image_root: str) -> SugarCrepePPData:
    data = SugarCrepePPData("sugarcrepe++")
    for path in json_files(files):
        obj = read_json(path)
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else None
        if items is None:
            raise ClipcompError(f"{path}: expected SugarCrepe++ JSON (items with filename, caption, caption2, "
                                "negative_caption)")
        subset = os.path.splitext(os.path.basename(path))[0]
        for key, it in items:
            missing = [k for k in ("filename", "caption", "caption2", "negative_caption")
                       if not isinstance(it, dict) or k not in it]
            if missing:
                raise ClipcompError(f"{path}: item {key!r} lacks {', '.join(missing)} (SugarCrepe++ format)")
            data.ids.append(f"{subset}/{key}")
            data.subsets.append(subset)
            data.paths.append(resolve(it["filename"], image_root))
            data.caption.append(it["caption"])
            data.caption2.append(it["caption2"])
            data.negative.append(it["negative_caption"])
    if not data.ids:
        raise ClipcompError(f"{', '.join(files)}: no SugarCrepe++ items found (expected JSON files of {{filename, "
                            "caption, caption2, negative_caption}} items)")
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> SugarCrepePPData:
    return load_sugarcrepe_pp([path], images)

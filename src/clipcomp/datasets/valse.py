"""VALSE (Parcalabescu et al. 2022) in its official files: one JSON per piece (existence, plurals, counting,
relations, actions, coreference, …), each {id: {dataset, image_file, caption, foil | foils, …}}. The image
must prefer the caption over its foil(s); the subset is the piece (the file's name)."""

from __future__ import annotations

import os

from clipcomp.datasets.common import resolve
from clipcomp.datasets.selection import SelectionData, json_files
from clipcomp.errors import ClipcompError
from clipcomp.io import read_json


def load_valse(files: list[str], image_root: str) -> SelectionData:
    data = SelectionData("valse", [], [], [], [], [])
    for path in json_files(files):
        obj = read_json(path)
        if not isinstance(obj, dict):
            raise ClipcompError(f"{path}: expected VALSE JSON {{id: {{image_file, caption, foil(s), ...}}}}")
        piece = os.path.splitext(os.path.basename(path))[0]
        for key, it in obj.items():
            foils = it.get("foils") if isinstance(it, dict) else None
            if isinstance(it, dict) and foils is None and "foil" in it:
                foils = [it["foil"]]
            if not isinstance(it, dict) or "image_file" not in it or "caption" not in it or not foils:
                raise ClipcompError(f"{path}: item {key!r} lacks image_file, caption or foils (VALSE format)")
            data.ids.append(f"{piece}/{key}")
            data.subsets.append(piece)
            data.paths.append(resolve(str(it["image_file"]), image_root))
            data.positives.append(it["caption"])
            data.negatives.append([str(f) for f in foils])
    if not data.ids:
        raise ClipcompError(f"{', '.join(files)}: no VALSE items found (expected piece JSON files)")
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    return load_valse([path], images)

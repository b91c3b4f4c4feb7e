"""VALSE (Parcalabescu et al. 2022) in its official files: one JSON per piece (existence, plurals, counting,
relations, actions, coreference, …), each {id: {dataset, image_file, caption, foil, mturk, …}}, scored as the
official evaluation does (Heidelberg-NLP/VALSE, lxmert_valse_eval.py l. 30-95, the template of its CLIP runs):

- only valid items: `mturk.caption >= 2` (l. 33; README "valid set": at least two of three annotators chose the
  caption, not the foil). Items without an `mturk` record (the FOIL-it conversion of read_foil_dataset.py) are
  kept — the official loop cannot score them; `valid_only=False` keeps every item;
- the pairwise accuracy acc_r: the caption scores strictly above its foil (l. 87);
- reported per piece (l. 91-95); the suite's headline over several pieces is the mean of the piece accuracies
  (the paper's "Avg." column); clipcomp's accuracy pooled over items is the extra `pooled_acc`.
"""

from __future__ import annotations

import os

from clipcomp.datasets.common import resolve
from clipcomp.datasets.selection import SelectionData, json_files
from clipcomp.errors import ClipcompError
from clipcomp.io import read_json


def is_valid(item: dict) -> bool:
    """VALSE's validity rule (lxmert_valse_eval.py l. 31-33): two of three annotators chose the caption."""
    mturk = item.get("mturk")
    return not isinstance(mturk, dict) or float(mturk.get("caption", 0)) >= 2


def load_valse(files: list[str], image_root: str, valid_only: bool = True) -> SelectionData:
    data = SelectionData("valse", [], [], [], [], [], headline="macro",
                         headline_note="mean of per-piece pairwise accuracies (VALSE's per-piece acc_r)")
    pieces = json_files(files)
    for path in pieces:
        obj = read_json(path)
        if not isinstance(obj, dict):
            raise ClipcompError(f"{path}: expected VALSE JSON {{id: {{image_file, caption, foil, mturk, ...}}}}")
        piece = os.path.splitext(os.path.basename(path))[0]
        for key, it in obj.items():
            if not isinstance(it, dict):
                raise ClipcompError(f"{path}: item {key!r} is not an object (VALSE format)")
            foils = [it["foil"]] if "foil" in it else it.get("foils")
            if "image_file" not in it or "caption" not in it or not foils:
                raise ClipcompError(f"{path}: item {key!r} lacks image_file, caption or foil (VALSE format)")
            if valid_only and not is_valid(it):
                continue
            data.ids.append(f"{piece}/{key}")
            data.subsets.append(piece)
            data.paths.append(resolve(str(it["image_file"]), image_root))
            data.positives.append(str(it["caption"]))
            data.negatives.append([str(f) for f in foils])
    if not data.ids:
        raise ClipcompError(f"{', '.join(files)}: no valid VALSE items found (expected piece JSON files; items "
                            "count when mturk.caption ≥ 2)")
    if len(pieces) == 1:
        data.name = f"valse/{data.subsets[0]}"
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    return load_valse([path], images, valid_only=bool(options.get("valid_only", True)))

"""CREPE (Ma et al. 2023) in its official files: the CSVs of `syst_hard_negatives/` (systematicity:
`syst_vg_hard_negs_<seen|unseen>_compounds_in_<cc12m|yfcc|laion>.csv`, hard negatives in the columns
`valid_hard_negs_atom|comp|combined`) and `prod_hard_negatives/<atom|negate|swap>/
prod_vg_hard_negs_<type>_complexity_<4..12>.csv` (productivity, column `hard_negs`), each row image_id, caption,
x, y, width, height and a Python list of negatives; images are Visual Genome's `<image_id>.jpg` (in the folder
given, or its VG_100K / VG_100K_2 sub-folders), cropped to the row's box as crepe_compo_eval_open_clip.py does
(l. 44-47: torchvision's crop(top=y, left=x, height, width)). Each (file, negative type) is one subset."""

from __future__ import annotations

import ast
import glob
import os

from clipcomp.datasets.common import crop_box
from clipcomp.datasets.selection import SelectionData
from clipcomp.errors import ClipcompError

SYST_TYPES = ("atom", "comp", "combined")


def _image(image_id, root: str) -> str:
    for sub in ("", "VG_100K", "VG_100K_2"):
        p = os.path.join(root, sub, f"{image_id}.jpg")
        if os.path.exists(p):
            return p
    return os.path.join(root, f"{image_id}.jpg")


def _crop(path: str, x: int, y: int, w: int, h: int, crop_dir: str) -> str:
    """torchvision.transforms.functional.crop(img, y, x, h, w) on a PIL image = img.crop((x, y, x + w, y + h))."""
    return crop_box(path, (x, y, w, h), crop_dir, "CREPE")


def files_of(path: str) -> list[str]:
    if os.path.isdir(path):
        found = sorted(glob.glob(os.path.join(path, "**", "*.csv"), recursive=True))
        if not found:
            raise ClipcompError(f"{path}: no CREPE CSV files (expected syst_vg_hard_negs_*.csv or "
                                "<type>/prod_vg_hard_negs_<type>_complexity_<n>.csv)")
        return found
    return [path]


def load_crepe(path: str, image_root: str, crop_dir: str, syst_types=SYST_TYPES) -> SelectionData:
    from clipcomp.io import read_table

    data = SelectionData("crepe", [], [], [], [], [], ties_correct=True, headline="macro",
                         headline_note="mean over subsets (file × negative type) of image-to-text R@1 (CREPE)")
    for f in files_of(path):
        t = read_table(f)
        cols = t.column_names
        missing = [c for c in ("image_id", "caption", "x", "y", "width", "height") if c not in cols]
        neg_cols = ["hard_negs"] if "hard_negs" in cols else [f"valid_hard_negs_{k}" for k in syst_types
                                                              if f"valid_hard_negs_{k}" in cols]
        if missing or not neg_cols:
            raise ClipcompError(f"{f}: lacks {', '.join(missing) or 'hard_negs / valid_hard_negs_*'} (CREPE CSV: "
                                "image_id, caption, x, y, width, height, hard negatives)")
        stem = os.path.splitext(os.path.basename(f))[0]
        rows = t.to_pylist()
        for col in neg_cols:
            subset = stem if col == "hard_negs" else f"{stem}/{col.removeprefix('valid_hard_negs_')}"
            for i, r in enumerate(rows):
                try:
                    negs = ast.literal_eval(str(r[col])) if r[col] is not None else []
                except (ValueError, SyntaxError):
                    raise ClipcompError(f"{f}: row {i + 2}, {col} is not a Python list") from None
                src = _image(r["image_id"], image_root)
                box = tuple(int(float(r[k])) for k in ("x", "y", "width", "height"))
                data.ids.append(f"{subset}/{i}")
                data.subsets.append(subset)
                data.paths.append(_crop(src, *box, crop_dir) if os.path.exists(src) else src)
                data.positives.append(str(r["caption"]))
                data.negatives.append([str(n) for n in negs])
    if not data.ids:
        raise ClipcompError(f"{path}: no CREPE rows")
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    types = options.get("negative_types") or SYST_TYPES
    return load_crepe(path, images, os.path.join(cache, "crops"), tuple(types))

"""EqBen (Wang et al. 2023, "Equivariant similarity for vision-language foundation models") in its public
release: the randomized annotation `ann_json_finegrained_random.json` (a list of {image, caption}: every
(image, caption) pair of every 2×2 sample, shuffled) and the two files that undo the shuffle,
`src_file/private_random_idx.json` and `src_file/private_info.json` ({dataset, name: c0i0|c0i1|c1i0|c1i1,
sample_cnt} per pair) — the files the official evaluate_eqben_locally.py reads. Images are under `--images`
(`eqbenyoucook2/…` frames are .npy arrays in BGR order; they are converted once, as the official
process_img_npy does)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from clipcomp.errors import ClipcompError
from clipcomp.io import read_json


@dataclass
class EqBenData:
    name: str = "eqben"
    paths: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    random_idx: list[int] = field(default_factory=list)
    info: list[dict] = field(default_factory=list)


def _npy_as_png(path: str, cache: str) -> str:
    import numpy as np
    from PIL import Image

    from clipcomp.io import atomic_output

    out = os.path.join(cache, hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:20] + ".png")
    if not os.path.exists(out):
        os.makedirs(cache, exist_ok=True)
        try:
            arr = np.load(path)[:, :, [2, 1, 0]]
        except (OSError, ValueError, IndexError) as exc:
            raise ClipcompError(f"{path}: unreadable EqBen frame ({exc})") from None
        with atomic_output(out) as tmp:
            Image.fromarray(arr, "RGB").save(tmp, format="PNG")
    return out


def _side_file(ann: str, name: str, given: str | None) -> str:
    if given:
        return given
    for cand in (os.path.join(os.path.dirname(ann), name), os.path.join(os.path.dirname(ann), "src_file", name)):
        if os.path.exists(cand):
            return cand
    raise ClipcompError(f"{ann}: EqBen needs {name} (the EqBen repository's src_file/{name}) beside the annotation "
                        f"or under src_file/; or give its path as the suite option")


def load_eqben(ann: str, images: str, cache: str, private_info: str | None = None,
               private_random_idx: str | None = None) -> EqBenData:
    rows = read_json(ann)
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and "image" in r and "caption" in r
                                                         for r in rows[:10]):
        raise ClipcompError(f"{ann}: expected EqBen's annotation (a list of {{image, caption}}, e.g. "
                            "ann_json_finegrained_random.json)")
    idx = read_json(_side_file(ann, "private_random_idx.json", private_random_idx))
    info = read_json(_side_file(ann, "private_info.json", private_info))
    if not isinstance(idx, list) or not isinstance(info, list) or not len(idx) == len(info) == len(rows):
        raise ClipcompError(f"{ann}: private_random_idx.json and private_info.json must be lists as long as the "
                            f"annotation ({len(rows)} pairs)")
    data = EqBenData(random_idx=[int(i) for i in idx], info=info)
    for r in rows:
        p = os.path.join(images, str(r["image"]))
        data.paths.append(_npy_as_png(p, os.path.join(cache, "frames")) if p.endswith(".npy") and
                          os.path.exists(p) else p)
        data.captions.append(str(r["caption"]))
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> EqBenData:
    return load_eqben(path, images, cache, options.get("private_info"), options.get("private_random_idx"))

"""COLA multi-object matching (Ray et al. 2023) in its official file
`data/COLA_multiobjects_matching_benchmark.json`: a list of [image 1, caption 1, image 2, caption 2] where the
images are Visual Genome URLs (`…/vg_gqa_images/2414605.jpg`, read here from the image folder by file name) and
the captions swap the two images' attributes and objects. Scored by COLA's `ColaMultiObjAcc` (scripts/eval.py
l. 7-21): an item is correct when each caption scores higher on its own image than on the other one
(`im0_c0 > im1_c0 and im1_c1 > im0_c1` — Winoground's image score); the headline is the mean over items."""

from __future__ import annotations

import os

from clipcomp.datasets.common import resolve
from clipcomp.datasets.winoground import WinogroundData
from clipcomp.errors import ClipcompError
from clipcomp.io import read_json


def _local(image: str, root: str) -> str:
    """A URL is read from the image folder by its file name (the VG id), as the images are downloaded."""
    name = str(image)
    if "://" in name:
        name = name.rsplit("/", 1)[-1]
    return resolve(name, root)


def load_cola(path: str, image_root: str | None = None) -> WinogroundData:
    root = image_root or os.path.dirname(os.path.abspath(path))
    obj = read_json(path)
    if not isinstance(obj, list) or not obj:
        raise ClipcompError(f"{path}: expected COLA multi-object JSON (a list of [image_1, caption_1, image_2, "
                            "caption_2])")
    data = WinogroundData("cola/multiobject")
    for i, ex in enumerate(obj):
        if not isinstance(ex, list) or len(ex) != 4:
            raise ClipcompError(f"{path}: entry {i} is not [image_1, caption_1, image_2, caption_2] (COLA "
                                "multi-object format)")
        im1, c1, im2, c2 = ex
        data.ids.append(str(i))
        data.images.append((_local(im1, root), _local(im2, root)))
        data.captions.append((str(c1), str(c2)))
        data.tags.append("multiobject")
        data.secondary_tags.append([])
        data.num_main_preds.append("")
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> WinogroundData:
    if os.path.isdir(path):
        path = os.path.join(path, "COLA_multiobjects_matching_benchmark.json")
    return load_cola(path, images)

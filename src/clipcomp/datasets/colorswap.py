"""ColorSwap (Burapacheep et al. 2024) in its official files: `test.json` (or `train.json`) — a list of
{id, caption_1, caption_2, image_1, image_2, image_source, caption_source}, images under the data folder
(`images/img_0_1.png`) — two captions with the same words whose colour words modify different objects, each with
its image. Scored as the paper scores image–text matching models: Winoground's text, image and group scores
(clipcomp.tasks.winoground), per `image_source` as well (midjourney, dalle, …)."""

from __future__ import annotations

import os

from clipcomp.datasets.common import resolve
from clipcomp.datasets.winoground import WinogroundData
from clipcomp.errors import ClipcompError
from clipcomp.io import read_json

KEYS = ("caption_1", "caption_2", "image_1", "image_2")


def load_colorswap(path: str, image_root: str | None = None) -> WinogroundData:
    root = image_root or os.path.dirname(os.path.abspath(path))
    obj = read_json(path)
    if not isinstance(obj, list) or not obj:
        raise ClipcompError(f"{path}: expected ColorSwap JSON (a list of {{id, caption_1, caption_2, image_1, "
                            "image_2}}, e.g. data/test.json)")
    data = WinogroundData("colorswap")
    for i, ex in enumerate(obj):
        missing = [k for k in KEYS if not isinstance(ex, dict) or k not in ex]
        if missing:
            raise ClipcompError(f"{path}: entry {i} lacks {', '.join(missing)} (ColorSwap format: id, caption_1, "
                                "caption_2, image_1, image_2)")
        data.ids.append(str(ex.get("id", i)))
        data.images.append((resolve(str(ex["image_1"]), root), resolve(str(ex["image_2"]), root)))
        data.captions.append((str(ex["caption_1"]), str(ex["caption_2"])))
        data.tags.append(str(ex.get("image_source") or "all"))
        data.secondary_tags.append([])
        data.num_main_preds.append("")
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> WinogroundData:
    if os.path.isdir(path):
        path = os.path.join(path, "test.json")
    return load_colorswap(path, images)

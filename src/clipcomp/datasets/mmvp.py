"""MMVP-VLM (Tong et al. 2024, "Eyes wide shut?") in its official layout: `Questions.csv` (Question ID, Type,
Statement; consecutive rows form a pair) and `MLLM_VLM Images/<Type>/<Question ID>.jpg`. Read as the official
scripts/evaluate_vlm.py does (l. 36-57): rows taken two at a time, both images from the first row's type folder,
the prompt "a photo of " + statement."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

from clipcomp.errors import ClipcompError

IMAGE_DIR = "MLLM_VLM Images"
# scripts/evaluate_vlm.py l. 23-28: the category of pair k is CATEGORIES[k // 15]
CATEGORIES = ("Orientation and Direction", "Presence of Specific Features", "State and Condition",
              "Quantity and Count", "Positional and Relational Context", "Color and Appearance",
              "Structural Characteristics", "Texts", "Viewpoint and Perspective")
PAIRS_PER_CATEGORY = 15


@dataclass
class MMVPData:
    name: str = "mmvp-vlm"
    qids: list[tuple[int, int]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


def load_mmvp(root: str) -> MMVPData:
    """The benchmark folder (Questions.csv + MLLM_VLM Images/)."""
    csv_file = os.path.join(root, "Questions.csv")
    if not os.path.exists(csv_file):
        raise ClipcompError(f"{root}: no Questions.csv (MMVP-VLM layout: Questions.csv and '{IMAGE_DIR}/<Type>/"
                            "<Question ID>.jpg')")
    data = MMVPData()
    with open(csv_file, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or len(header) != 3:
            raise ClipcompError(f"{csv_file}: expected the columns Question ID, Type, Statement")
        rows = [r for r in reader]
    for k in range(0, len(rows) - 1, 2):
        (q1, t1, s1), (q2, _t2, s2) = rows[k], rows[k + 1]
        try:
            q1i, q2i = int(q1), int(q2)
        except ValueError:
            raise ClipcompError(f"{csv_file}: row {k + 2} has a Question ID that is not a number") from None
        n = len(data.qids)
        data.qids.append((q1i, q2i))
        data.images.append((os.path.join(root, IMAGE_DIR, t1, f"{q1i}.jpg"),
                            os.path.join(root, IMAGE_DIR, t1, f"{q2i}.jpg")))
        data.texts.append(("a photo of " + s1, "a photo of " + s2))
        data.categories.append(CATEGORIES[n // PAIRS_PER_CATEGORY] if n // PAIRS_PER_CATEGORY < len(CATEGORIES)
                               else t1)
    if not data.qids:
        raise ClipcompError(f"{csv_file}: no statement pairs")
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> MMVPData:
    return load_mmvp(images or path)

"""Winoground scoring for 2×2 groups (two images, two captions; caption k belongs to image k).

With s(c, i) the image–text similarity: text score = s(c0,i0) > s(c1,i0) and s(c1,i1) > s(c0,i1) (each image
prefers its caption); image score = s(c0,i0) > s(c0,i1) and s(c1,i1) > s(c1,i0) (each caption prefers its
image); group score = both. Strict inequalities, as in the paper (ties fail)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clipcomp.datasets.winoground import WinogroundData
from clipcomp.tasks.common import TaskResult


def group_scores(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """s: (n, 2, 2) similarities indexed [group, caption, image] → (text, image, group) correctness."""
    text = (s[:, 0, 0] > s[:, 1, 0]) & (s[:, 1, 1] > s[:, 0, 1])
    image = (s[:, 0, 0] > s[:, 0, 1]) & (s[:, 1, 1] > s[:, 1, 0])
    return text, image, text & image


def evaluate(embedder, data: WinogroundData, skip_bad: bool = False) -> TaskResult:
    paths = [p for pair in data.images for p in pair]
    img = embedder.images(paths, skip_bad=skip_bad)
    ok_pair = img.ok.reshape(-1, 2).all(axis=1)
    keep = np.flatnonzero(ok_pair)
    txt = embedder.texts([c for pair in data.captions for c in pair]).reshape(len(data.ids), 2, -1)
    row_of = np.full(len(paths), -1)
    row_of[np.flatnonzero(img.ok)] = np.arange(int(img.ok.sum()))
    ims = img.embeddings[row_of[np.array([[2 * g, 2 * g + 1] for g in keep], dtype=np.int64).reshape(-1)]] \
        .reshape(len(keep), 2, -1) if keep.size else np.zeros((0, 2, txt.shape[-1]))
    s = np.einsum("gcd,gid->gci", txt[keep], ims)
    text, image, group = group_scores(s)
    tags = [data.tags[g] for g in keep]
    per_tag = {t: {"text": float(text[m].mean()), "image": float(image[m].mean()), "group": float(group[m].mean())}
               for t in sorted(set(tags)) for m in [np.array([x == t for x in tags])]}
    metrics = {"text_score": float(text.mean()) if keep.size else float("nan"),
               "image_score": float(image.mean()) if keep.size else float("nan"),
               "group_score": float(group.mean()) if keep.size else float("nan"),
               "per_subset": per_tag, "n_groups": int(keep.size)}
    items = pa.table({"id": [data.ids[g] for g in keep], "tag": tags,
                      "s_c0_i0": s[:, 0, 0].astype(np.float64), "s_c0_i1": s[:, 0, 1].astype(np.float64),
                      "s_c1_i0": s[:, 1, 0].astype(np.float64), "s_c1_i1": s[:, 1, 1].astype(np.float64),
                      "text_correct": text, "image_correct": image, "group_correct": group})
    return TaskResult("winoground", data.name, items, metrics, img.errors)


def run_suite(embedder, data: WinogroundData, options: dict) -> TaskResult:
    return evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))


def columns(suite: str, metrics: dict) -> dict[str, float]:
    """Text, image and group scores."""
    return {f"{suite}/{k}": metrics[f"{k}_score"] for k in ("text", "image", "group")}

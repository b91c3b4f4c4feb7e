"""Winoground scoring for 2×2 groups (two images, two captions; caption k belongs to image k).

With s(c, i) the image–text similarity: text score = s(c0,i0) > s(c1,i0) and s(c1,i1) > s(c0,i1) (each image
prefers its caption); image score = s(c0,i0) > s(c0,i1) and s(c1,i1) > s(c1,i0) (each caption prefers its
image); group score = both. Strict inequalities, as in the paper (ties fail). Besides the three scores over all groups,
the paper's breakdowns (Thrush et al. 2022, Tables 4-5): by linguistic tag (`collapsed_tag`: Object, Relation,
Both), by number of main predicates (`num_main_preds`: 1, 2) and by visual secondary tag (`secondary_tag`:
Symbolic, Series, Pragmatics; a group with several tags counts in each, one without none)."""

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

    def scores(mask: np.ndarray) -> dict:
        return {"text": float(text[mask].mean()), "image": float(image[mask].mean()),
                "group": float(group[mask].mean()), "n": int(mask.sum())}

    per_tag = {t: scores(np.array([x == t for x in tags])) for t in sorted(set(tags))}
    preds = [data.num_main_preds[g] if data.num_main_preds else "" for g in keep]
    per_preds = {p: scores(np.array([x == p for x in preds])) for p in sorted(set(preds) - {""})}
    sec = [data.secondary_tags[g] if data.secondary_tags else [] for g in keep]
    per_sec = {t: scores(np.array([t in x for x in sec])) for t in sorted({t for x in sec for t in x})}
    metrics = {"text_score": float(text.mean()) if keep.size else float("nan"),
               "image_score": float(image.mean()) if keep.size else float("nan"),
               "group_score": float(group.mean()) if keep.size else float("nan"),
               "per_subset": per_tag, "per_num_main_preds": per_preds, "per_secondary_tag": per_sec,
               "n_groups": int(keep.size)}
    for prefix, table in (("tag", per_tag), ("num_main_preds", per_preds), ("secondary_tag", per_sec)):
        for key, v in table.items():
            for k in ("text", "image", "group"):
                metrics[f"{prefix}={key}/{k}_score"] = v[k]
    items = pa.table({"id": [data.ids[g] for g in keep], "tag": tags, "num_main_preds": preds,
                      "secondary_tag": [",".join(x) for x in sec],
                      "s_c0_i0": s[:, 0, 0].astype(np.float64), "s_c0_i1": s[:, 0, 1].astype(np.float64),
                      "s_c1_i0": s[:, 1, 0].astype(np.float64), "s_c1_i1": s[:, 1, 1].astype(np.float64),
                      "text_correct": text, "image_correct": image, "group_correct": group})
    return TaskResult("winoground", data.name, items, metrics, img.errors)


def run_suite(embedder, data: WinogroundData, options: dict) -> TaskResult:
    return evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))


def columns(suite: str, metrics: dict) -> dict[str, float]:
    """Text, image and group scores; the group score per linguistic tag, number of main predicates and visual tag."""
    cols = {f"{suite}/{k}": metrics[f"{k}_score"] for k in ("text", "image", "group")}
    for prefix, key in (("tag", "per_subset"), ("num_main_preds", "per_num_main_preds"),
                        ("secondary_tag", "per_secondary_tag")):
        for name, v in (metrics.get(key) or {}).items():
            cols[f"{suite}/{prefix}={name}/group"] = v["group"]
    return cols

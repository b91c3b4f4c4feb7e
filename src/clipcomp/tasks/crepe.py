"""CREPE's one-to-many retrieval (crepe_eval_utils.py get_one2many_rank / get_one2many_metrics, l. 62-75): per
image, the caption and its hard negatives are ranked by similarity; the rank of the caption gives R@1, 3, 5, 10,
the mean and median rank (1-based), per subset. The official code ranks with torch.argsort, whose order among
equal scores is not defined; here a negative scoring exactly as the caption does not outrank it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clipcomp.datasets.selection import SelectionData
from clipcomp.tasks.common import TaskResult


def evaluate(embedder, data: SelectionData, skip_bad: bool = False) -> TaskResult:
    img = embedder.images(data.paths, skip_bad=skip_bad)
    ok = np.flatnonzero(img.ok)
    index: dict[str, int] = {}
    pos = [index.setdefault(data.positives[i], len(index)) for i in ok]
    negs = [[index.setdefault(t, len(index)) for t in data.negatives[i]] for i in ok]
    txt = embedder.texts(list(index)) if index else np.zeros((0, 1), np.float32)
    scores = img.embeddings @ txt.T if ok.size else np.zeros((0, 0))
    ranks = np.array([int((scores[j, ks] > scores[j, p]).sum()) if ks else 0
                      for j, (p, ks) in enumerate(zip(pos, negs, strict=True))], dtype=np.int64)
    subsets = [data.subsets[i] for i in ok]
    per: dict[str, dict] = {}
    for s in dict.fromkeys(subsets):
        r = ranks[np.array([x == s for x in subsets])]
        per[s] = {"image_to_text_mean_rank": float(r.mean() + 1), "image_to_text_median_rank":
                  float(np.floor(np.median(r)) + 1), **{f"image_to_text_R@{k}": float(np.mean(r < k))
                                                        for k in (1, 3, 5, 10)}}
    nan = float("nan")
    metrics = {"acc": float(np.mean([v["image_to_text_R@1"] for v in per.values()])) if per else nan,
               "headline": data.headline_note, "pooled_acc": float(np.mean(ranks == 0)) if ranks.size else nan,
               "per_subset_acc": {s: v["image_to_text_R@1"] for s, v in per.items()},
               "per_subset_metrics": per, "per_subset_n": {s: int(sum(x == s for x in subsets)) for s in per}}
    items = pa.table({"id": [data.ids[i] for i in ok], "subset": subsets, "image": [data.paths[i] for i in ok],
                      "caption": [data.positives[i] for i in ok], "n_negatives": [len(k) for k in negs],
                      "rank": ranks + 1, "correct": ranks == 0})
    return TaskResult("crepe_one2many_retrieval", data.name, items, metrics, img.errors)


def run_suite(embedder, data: SelectionData, options: dict) -> TaskResult:
    return evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))

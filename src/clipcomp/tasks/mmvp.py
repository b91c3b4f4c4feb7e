"""MMVP-VLM scoring, as the official scripts/evaluate_vlm.py (l. 59-90): for each statement, the model picks the
image whose similarity is higher (the official softmax over the two images' logits > 0.5 — a tie picks image 2);
the ground truth of question q is image 1 when q is odd, else image 2; a pair counts when both statements pick
their image. Accuracy per category (pair k belongs to category k // 15) and their mean, the paper's average."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clipcomp.datasets.mmvp import MMVPData
from clipcomp.tasks.common import TaskResult


def evaluate(embedder, data: MMVPData, skip_bad: bool = False) -> TaskResult:
    paths = [p for pair in data.images for p in pair]
    img = embedder.images(paths, skip_bad=skip_bad)
    keep = np.flatnonzero(img.ok.reshape(-1, 2).all(axis=1))
    row_of = np.full(len(paths), -1)
    row_of[np.flatnonzero(img.ok)] = np.arange(int(img.ok.sum()))
    txt = embedder.texts([t for pair in data.texts for t in pair]).reshape(len(data.texts), 2, -1)
    ims = img.embeddings[row_of[np.array([[2 * g, 2 * g + 1] for g in keep], dtype=np.int64).reshape(-1)]] \
        .reshape(len(keep), 2, -1) if keep.size else np.zeros((0, 2, txt.shape[-1]))
    s = np.einsum("gtd,gid->gti", txt[keep], ims)  # [pair, statement, image]
    pred_img1 = s[:, :, 0] > s[:, :, 1]
    qids = np.array([data.qids[g] for g in keep], dtype=np.int64).reshape(-1, 2)
    gt_img1 = qids % 2 == 1
    correct_each = pred_img1 == gt_img1
    correct = correct_each.all(axis=1)
    cats = [data.categories[g] for g in keep]
    per = {}
    for c in dict.fromkeys(cats):
        m = np.array([x == c for x in cats])
        per[c] = float(correct[m].mean())
    nan = float("nan")
    metrics = {"acc": float(np.mean(list(per.values()))) if per else nan,
               "headline": "mean over categories of the pair accuracy (MMVP-VLM)",
               "pooled_acc": float(correct.mean()) if correct.size else nan,
               "per_subset_acc": per, "per_subset_n": {c: int(sum(x == c for x in cats)) for c in per},
               "n_pairs": int(keep.size)}
    items = pa.table({"id": [f"{a}-{b}" for a, b in qids.tolist()], "subset": cats,
                      "qid_1": qids[:, 0], "qid_2": qids[:, 1],
                      "s_t1_i1": s[:, 0, 0].astype(np.float64), "s_t1_i2": s[:, 0, 1].astype(np.float64),
                      "s_t2_i1": s[:, 1, 0].astype(np.float64), "s_t2_i2": s[:, 1, 1].astype(np.float64),
                      "correct_1": correct_each[:, 0], "correct_2": correct_each[:, 1], "correct": correct})
    return TaskResult("mmvp_vlm", data.name, items, metrics, img.errors)


def run_suite(embedder, data: MMVPData, options: dict) -> TaskResult:
    return evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))

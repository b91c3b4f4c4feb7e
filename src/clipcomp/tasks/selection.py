"""Caption selection: for each image choose the true caption among negatives (SugarCrepe, ARO-style)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clipcomp.datasets.selection import SelectionData, load_selection_manifest, load_sugarcrepe
from clipcomp.tasks.common import TaskResult

__all__ = ["SelectionData", "evaluate", "load_selection_manifest", "load_sugarcrepe"]


def evaluate(embedder, data: SelectionData, skip_bad: bool = False) -> TaskResult:
    img = embedder.images(data.paths, skip_bad=skip_bad)
    ok = np.flatnonzero(img.ok)
    texts: list[str] = []
    pos_idx, neg_slices = [], []
    for i in ok:
        pos_idx.append(len(texts))
        texts.append(data.positives[i])
        start = len(texts)
        texts.extend(data.negatives[i])
        neg_slices.append((start, len(texts)))
    txt = embedder.texts(texts)
    pos_score = np.einsum("nd,nd->n", img.embeddings, txt[pos_idx]) if ok.size else np.zeros(0)
    neg_best = np.array([max(float(img.embeddings[j] @ txt[k]) for k in range(a, b))
                         for j, (a, b) in enumerate(neg_slices)]) if ok.size else np.zeros(0)
    correct = pos_score > neg_best
    subsets = [data.subsets[i] for i in ok]
    per_subset = {}
    for s in sorted(set(subsets)):
        m = np.array([x == s for x in subsets])
        per_subset[s] = float(correct[m].mean())
    metrics = {"acc": float(correct.mean()) if correct.size else float("nan"), "per_subset_acc": per_subset,
               "n_subsets": len(per_subset)}
    cols = {
        "id": [data.ids[i] for i in ok],
        "subset": subsets,
        "image": [data.paths[i] for i in ok],
        "caption": [data.positives[i] for i in ok],
        "negatives": [data.negatives[i] for i in ok],
        "positive_score": pos_score.astype(np.float64),
        "best_negative_score": neg_best.astype(np.float64),
        "correct": correct,
    }
    for name, values in data.extra.items():
        cols[name] = [values[i] for i in ok]
    return TaskResult("caption_selection", data.name, pa.table(cols), metrics, img.errors)


def run_suite(embedder, data: SelectionData, options: dict) -> TaskResult:
    """The registry's runner for every caption-selection suite."""
    return evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))


def columns(suite: str, metrics: dict, macro: bool = False, subsets: str = "auto") -> dict[str, float]:
    """Table columns of a selection suite: overall accuracy; the macro mean over subsets (`macro`); one column
    per subset (`subsets`: "auto" = when there is more than one, "always", "never")."""
    cols: dict[str, float] = {suite: metrics.get("acc")}
    per = metrics.get("per_subset_acc", {})
    if macro:
        cols[f"{suite}/macro"] = sum(per.values()) / len(per) if per else float("nan")
    elif subsets == "always" or (subsets == "auto" and len(per) > 1):
        for sub, v in per.items():
            cols[f"{suite}/{sub}"] = v
    return cols

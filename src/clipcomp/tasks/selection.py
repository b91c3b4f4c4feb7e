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
    # each distinct text embedded once: a negative identical to its positive gets the very same vector, so the
    # tie rule (data.ties_correct) decides it, never float noise between two batches
    index: dict[str, int] = {}
    pos_idx, neg_idx = [], []
    for i in ok:
        pos_idx.append(index.setdefault(data.positives[i], len(index)))
        neg_idx.append([index.setdefault(t, len(index)) for t in data.negatives[i]])
    txt = embedder.texts(list(index)) if index else np.zeros((0, 1), np.float32)
    if ok.size:
        scores = img.embeddings @ txt.T if len(index) else np.zeros((ok.size, 0))
        rows = np.arange(ok.size)
        pos_score = scores[rows, pos_idx]
        neg_best = np.array([float(scores[j, ks].max()) for j, ks in enumerate(neg_idx)])
    else:
        pos_score = neg_best = np.zeros(0)
    correct = pos_score >= neg_best if data.ties_correct else pos_score > neg_best
    subsets = [data.subsets[i] for i in ok]
    metrics = aggregate(data, np.asarray(subsets, dtype=object), correct)
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
    return TaskResult("image_caption_selection", data.name, pa.table(cols), metrics, img.errors)


def aggregate(data: SelectionData, subsets: np.ndarray, correct: np.ndarray) -> dict:
    """The suite's official numbers from per-item correctness: `acc` is its headline (pooled or macro, see
    SelectionData), `per_subset_acc` the subsets its authors report (those with ≥ min_subset_items items),
    `pooled_acc` clipcomp's accuracy over every item when the headline is a macro."""
    pooled = float(correct.mean()) if correct.size else float("nan")
    per_all, counts = {}, {}
    for s in sorted(set(subsets.tolist())):
        m = subsets == s
        per_all[s], counts[s] = float(correct[m].mean()), int(m.sum())
    per = {s: a for s, a in per_all.items() if counts[s] >= data.min_subset_items}
    metrics: dict = {"n_subsets": len(per)}
    if data.headline == "macro":
        macro = [a for s, a in per.items() if s not in set(data.macro_exclude)]
        metrics.update({"acc": float(np.mean(macro)) if macro else float("nan"), "pooled_acc": pooled,
                        "n_macro_subsets": len(macro)})
    else:
        metrics["acc"] = pooled
    metrics["headline"] = data.headline_note or ("mean of per-subset accuracies" if data.headline == "macro"
                                                  else "accuracy over all items")
    metrics["per_subset_acc"] = per
    metrics["per_subset_n"] = {s: counts[s] for s in per}
    return metrics


def run_suite(embedder, data: SelectionData, options: dict) -> TaskResult:
    """The registry's runner for every caption-selection suite."""
    return evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))


def columns(suite: str, metrics: dict, subsets: str = "auto") -> dict[str, float]:
    """Table columns of a selection suite: its official headline (`acc`); clipcomp's pooled accuracy as
    `SUITE/pooled` when the headline is a macro; one column per subset (`subsets`: "auto" = when there is more
    than one, "always", "never")."""
    cols: dict[str, float] = {suite: metrics.get("acc")}
    per = metrics.get("per_subset_acc", {})
    if "pooled_acc" in metrics:
        cols[f"{suite}/pooled"] = metrics["pooled_acc"]
    if subsets == "always" or (subsets == "auto" and len(per) > 1):
        for sub, v in per.items():
            cols[f"{suite}/{sub}"] = v
    return cols

"""EqBen scoring, as the official evaluate_eqben_locally.py (l. 24-80): each (image, caption) pair's similarity
(the cosine, as example/eqben_eval_CLIP.py's single-pair forward) is put back in the original order
(argsort of private_random_idx), filed by private_info under its sub-dataset and c0i0/c0i1/c1i0/c1i1, and each
sub-dataset gets Winoground's text, image and group scores (strict inequalities). `acc` is the mean group score
over the sub-datasets (clipcomp's summary; the official output is per sub-dataset)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clipcomp.datasets.eqben import EqBenData
from clipcomp.tasks.common import TaskResult


def aggregate(scores: np.ndarray, random_idx: list[int], info: list[dict]) -> dict[str, dict[str, float]]:
    """evaluate_eqben_locally.py's computation on the per-pair scores in annotation order."""
    recover = np.argsort(random_idx)
    recovered = scores[recover]
    n = len(scores) // 4
    by_name = {k: np.zeros(n) for k in ("c0i0", "c0i1", "c1i0", "c1i1")}
    spans: dict[str, list[int]] = {}
    for i, (s, inf) in enumerate(zip(recovered, info, strict=True)):
        by_name[inf["name"]][inf["sample_cnt"]] = s
        if inf["dataset"] not in spans:  # eqben_score.update: start at the first pair, one more per pair
            spans[inf["dataset"]] = [i, i + 1]
        else:
            spans[inf["dataset"]][1] += 1
    out = {}
    for dataset, (start, end) in spans.items():
        r = {k: v[start // 4:end // 4] for k, v in by_name.items()}
        text = (r["c0i0"] > r["c1i0"]) & (r["c1i1"] > r["c0i1"])
        image = (r["c0i0"] > r["c0i1"]) & (r["c1i1"] > r["c1i0"])
        out[dataset] = {"text": float(text.mean()), "image": float(image.mean()), "group": float((text & image).mean())}
    return out


def run_suite(embedder, data: EqBenData, options: dict) -> TaskResult:
    img = embedder.images(data.paths, skip_bad=False)
    txt = embedder.texts(data.captions)
    scores = np.einsum("nd,nd->n", img.embeddings, txt).astype(np.float64)
    per = aggregate(scores, data.random_idx, data.info)
    metrics = {"acc": float(np.mean([v["group"] for v in per.values()])),
               "headline": "mean over EqBen sub-datasets of the group score", "per_subset": per,
               "per_subset_metrics": {d: {f"{k}_score": v[k] for k in ("text", "image", "group")}
                                      for d, v in per.items()}}
    for d, v in per.items():
        for k in ("text", "image", "group"):
            metrics[f"{d}/{k}_score"] = v[k]
    items = pa.table({"image": data.paths, "caption": data.captions, "score": scores,
                      "random_idx": np.asarray(data.random_idx, np.int64)})
    return TaskResult("eqben", data.name, items, metrics, img.errors)


def columns(suite: str, metrics: dict) -> dict[str, float]:
    cols = {suite: metrics["acc"]}
    for d, v in metrics.get("per_subset", {}).items():
        cols[f"{suite}/{d}/group"] = v["group"]
    return cols

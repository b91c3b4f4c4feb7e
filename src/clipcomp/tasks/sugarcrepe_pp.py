"""SugarCrepe++ scoring: two meaning-preserving captions (P1, P2) and one negative (N) per image.

Scored per subset file as the official script does (Sri-Harsha/scpp, VLMs/test_Variants_CLIP.py l. 76-98):
ITT (image-to-text): correct when s(I,P1) > s(I,N) and s(I,P2) > s(I,N); Image-P1-Neg and Image-P2-Neg: each
positive alone; TOT (text-only): s(P1,P2) > s(P1,N) and s(P1,P2) > s(P2,N) — whether the text encoder alone
places the paraphrase nearer than the lexically closer negative. The official numbers are per subset
(`per_subset`, `SUBSET/itt_acc`, … in summary.json, one summary_SUBSET.json each); `itt_acc`/`tot_acc` are their
mean over the subsets run (the subset's own number when there is one), and `pooled_itt_acc`/`pooled_tot_acc`
clipcomp's accuracy over all items."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clipcomp.datasets.sugarcrepe_pp import SugarCrepePPData
from clipcomp.tasks.common import TaskResult


def evaluate(embedder, data: SugarCrepePPData, skip_bad: bool = False) -> TaskResult:
    img = embedder.images(data.paths, skip_bad=skip_bad)
    ok = np.flatnonzero(img.ok)
    p1 = embedder.texts([data.caption[i] for i in ok])
    p2 = embedder.texts([data.caption2[i] for i in ok])
    neg = embedder.texts([data.negative[i] for i in ok])
    im = img.embeddings
    s1, s2, sn = (np.einsum("nd,nd->n", im, t) for t in (p1, p2, neg))
    itt = (s1 > sn) & (s2 > sn)
    pp = np.einsum("nd,nd->n", p1, p2)
    tot = (pp > np.einsum("nd,nd->n", p1, neg)) & (pp > np.einsum("nd,nd->n", p2, neg))
    subsets = [data.subsets[i] for i in ok]
    img_p1, img_p2 = s1 > sn, s2 > sn
    per = {}
    for s in sorted(set(subsets)):
        m = np.array([x == s for x in subsets])
        per[s] = {"itt": float(itt[m].mean()), "img_p1": float(img_p1[m].mean()), "img_p2": float(img_p2[m].mean()),
                  "tot": float(tot[m].mean()), "n": int(m.sum())}
    nan = float("nan")
    metrics = {"itt_acc": float(np.mean([v["itt"] for v in per.values()])) if per else nan,
               "tot_acc": float(np.mean([v["tot"] for v in per.values()])) if per else nan,
               "pooled_itt_acc": float(itt.mean()) if ok.size else nan,
               "pooled_tot_acc": float(tot.mean()) if ok.size else nan,
               "headline": "mean over subsets of the official per-subset accuracies",
               "per_subset": per,
               "per_subset_metrics": {s: {"itt_acc": v["itt"], "img_p1_acc": v["img_p1"], "img_p2_acc": v["img_p2"],
                                          "tot_acc": v["tot"]} for s, v in per.items()}}
    for s, v in metrics["per_subset_metrics"].items():
        for k, x in v.items():
            metrics[f"{s}/{k}"] = x
    items = pa.table({"id": [data.ids[i] for i in ok], "subset": subsets,
                      "s_p1": s1.astype(np.float64), "s_p2": s2.astype(np.float64), "s_neg": sn.astype(np.float64),
                      "itt_correct": itt, "tot_correct": tot})
    return TaskResult("sugarcrepe_pp", data.name, items, metrics, img.errors)


def run_suite(embedder, data: SugarCrepePPData, options: dict) -> TaskResult:
    return evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))


def columns(suite: str, metrics: dict) -> dict[str, float]:
    """ITT and TOT per subset (the official numbers), their mean over subsets, and clipcomp's pooled values."""
    cols = {f"{suite}/itt": metrics["itt_acc"], f"{suite}/tot": metrics["tot_acc"]}
    for sub, v in metrics.get("per_subset", {}).items():
        cols[f"{suite}/{sub}/itt"], cols[f"{suite}/{sub}/tot"] = v["itt"], v["tot"]
    if "pooled_itt_acc" in metrics:
        cols[f"{suite}/pooled/itt"], cols[f"{suite}/pooled/tot"] = metrics["pooled_itt_acc"], metrics["pooled_tot_acc"]
    return cols

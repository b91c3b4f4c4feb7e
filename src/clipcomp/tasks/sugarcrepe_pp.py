"""SugarCrepe++ scoring: two meaning-preserving captions (P1, P2) and one negative (N) per image.

ITT (image-to-text): correct when s(I,P1) > s(I,N) and s(I,P2) > s(I,N).
TOT (text-only): correct when s(P1,P2) > s(P1,N) and s(P1,P2) > s(P2,N) — whether the text encoder alone
places the paraphrase nearer than the lexically closer negative."""

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
    per = {}
    for s in sorted(set(subsets)):
        m = np.array([x == s for x in subsets])
        per[s] = {"itt": float(itt[m].mean()), "tot": float(tot[m].mean())}
    metrics = {"itt_acc": float(itt.mean()) if ok.size else float("nan"),
               "tot_acc": float(tot.mean()) if ok.size else float("nan"), "per_subset": per}
    items = pa.table({"id": [data.ids[i] for i in ok], "subset": subsets,
                      "s_p1": s1.astype(np.float64), "s_p2": s2.astype(np.float64), "s_neg": sn.astype(np.float64),
                      "itt_correct": itt, "tot_correct": tot})
    return TaskResult("sugarcrepe_pp", data.name, items, metrics, img.errors)


def run_suite(embedder, data: SugarCrepePPData, options: dict) -> TaskResult:
    return evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))


def columns(suite: str, metrics: dict) -> dict[str, float]:
    """ITT and TOT accuracy overall and per subset."""
    cols = {f"{suite}/itt": metrics["itt_acc"], f"{suite}/tot": metrics["tot_acc"]}
    for sub, v in metrics.get("per_subset", {}).items():
        cols[f"{suite}/{sub}/itt"], cols[f"{suite}/{sub}/tot"] = v["itt"], v["tot"]
    return cols

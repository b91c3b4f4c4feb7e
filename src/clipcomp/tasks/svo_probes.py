"""SVO-Probes scoring. The official notebook (probing_image_text_models.ipynb, `accuracy` and the subj/verb/obj
frames) scores a model's binary match decision for every (sentence, image) pair: positive accuracy (positive
pairs judged a match), negative accuracy (negative pairs judged no match) and their mean, on the de-duplicated
(sentence, image) pairs of rows negating only the subject, only the verb or only the object, and all three
together. A contrastive model has no match decision, so:

- `acc` and `pairwise_*`: the sentence scores higher with its positive image than with the negative one (the
  usual reading for contrastive models; clipcomp's);
- with the option `threshold: T`, the notebook's own metrics on the decision cosine ≥ T (`official_*`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clipcomp.datasets.svo_probes import SVOData
from clipcomp.tasks.common import TaskResult

KINDS = ("subj", "verb", "obj")


def notebook_accuracy(rows: list[tuple[str, int, float, int, float]]) -> tuple[float, float, float]:
    """The notebook's accuracy(frame) on rows (sentence, pos_image_id, pos_score, neg_image_id, neg_score):
    duplicates of (sentence, image, score) dropped per side; macro = (pos + neg) / 2."""
    neg = {(s, ni, ns) for s, _pi, _ps, ni, ns in rows}
    pos = {(s, pi, ps) for s, pi, ps, _ni, _ns in rows}
    neg_acc = float(np.mean([x[2] == 0 for x in neg]))
    pos_acc = float(np.mean([x[2] == 1 for x in pos]))
    return (neg_acc + pos_acc) / 2, pos_acc, neg_acc


def run_suite(embedder, data: SVOData, options: dict) -> TaskResult:
    paths = sorted(set(data.pos) | set(data.neg))
    img = embedder.images(paths, skip_bad=False)
    row = {p: i for i, p in enumerate(paths)}
    sents = sorted(set(data.sentences))
    srow = {s: i for i, s in enumerate(sents)}
    txt = embedder.texts(sents)
    sim = txt @ img.embeddings.T
    s_pos = np.array([sim[srow[s], row[p]] for s, p in zip(data.sentences, data.pos, strict=True)])
    s_neg = np.array([sim[srow[s], row[n]] for s, n in zip(data.sentences, data.neg, strict=True)])
    pair = s_pos > s_neg
    kinds = np.array(data.kinds)
    groups = {k: kinds == k for k in KINDS}
    groups["all"] = np.isin(kinds, KINDS)
    metrics: dict = {"headline": "pairwise: the sentence prefers its positive image (contrastive reading)",
                     "n_rows": len(pair), "n_rows_missing_images": data.n_missing}
    per = {}
    for g, m in groups.items():
        if m.any():
            per[g] = {"pairwise_acc": float(pair[m].mean()), "n": int(m.sum())}
    thr = options.get("threshold")
    if thr is not None:
        t = float(thr)
        for g, m in groups.items():
            if m.any():
                rows = [(s, pi, int(a >= t), ni, int(b >= t)) for s, pi, a, ni, b, keep in
                        zip(data.sentences, data.pos_ids, s_pos, data.neg_ids, s_neg, m, strict=True) if keep]
                acc, pa_, na_ = notebook_accuracy(rows)
                per[g].update({"official_acc": acc, "official_pos_acc": pa_, "official_neg_acc": na_})
    metrics["acc"] = per.get("all", {}).get("pairwise_acc", float("nan"))
    metrics["per_subset"] = per
    metrics["per_subset_metrics"] = {g: {k: v for k, v in d.items() if k != "n"} for g, d in per.items()}
    for g, d in per.items():
        for k, v in d.items():
            if k != "n":
                metrics[f"{g}/{k}"] = v
    items = pa.table({"sentence": data.sentences, "kind": data.kinds, "pos_image": data.pos, "neg_image": data.neg,
                      "s_pos": s_pos.astype(np.float64), "s_neg": s_neg.astype(np.float64), "correct": pair})
    return TaskResult("svo_probes", data.name, items, metrics, img.errors)


def columns(suite: str, metrics: dict) -> dict[str, float]:
    cols = {suite: metrics["acc"]}
    for g, d in metrics.get("per_subset", {}).items():
        if g != "all":
            cols[f"{suite}/{g}"] = d["pairwise_acc"]
        if "official_acc" in d:
            cols[f"{suite}/{g}/official"] = d["official_acc"]
    return cols

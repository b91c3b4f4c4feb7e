"""COLA multi-object accuracy (arijitray1993/COLA scripts/eval.py `ColaMultiObjAcc`, l. 7-21): with preds[image,
caption] the match scores, an item is correct when `preds[0,0] > preds[1,0] and preds[1,1] > preds[0,1]` — each
caption prefers its own image (strict; a tie fails). The headline `acc` is the mean over items; the Winoground
text and group scores of the same items are kept beside it (clipcomp's, not COLA's)."""

from __future__ import annotations

from clipcomp.datasets.winoground import WinogroundData
from clipcomp.tasks.common import TaskResult


def run_suite(embedder, data: WinogroundData, options: dict) -> TaskResult:
    from clipcomp.tasks import winoground

    res = winoground.evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))
    m = res.metrics
    res.metrics = {"acc": m["image_score"], "headline": "COLA multi-object accuracy (each caption prefers its image)",
                   "text_score": m["text_score"], "group_score": m["group_score"], "n_groups": m["n_groups"]}
    res.task = "cola_multiobject"
    return res


def columns(suite: str, metrics: dict) -> dict[str, float]:
    return {suite: metrics["acc"]}

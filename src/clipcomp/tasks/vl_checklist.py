"""VL-CheckList's itc accuracy per corpus (clipcomp.tasks.selection, strict), the means per top-level type
(Object, Attribute, Relation — the paper's three columns) and their mean as `acc`."""

from __future__ import annotations

import numpy as np

from clipcomp.tasks.common import TaskResult


def run_suite(embedder, data, options: dict) -> TaskResult:
    from clipcomp.tasks import selection

    res = selection.evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))
    per = res.metrics["per_subset_acc"]
    groups: dict[str, list[float]] = {}
    for s, a in per.items():
        groups.setdefault(s.split("/")[0], []).append(a)
    means = {g: float(np.mean(v)) for g, v in sorted(groups.items())}
    res.metrics.update({f"{g}_acc": v for g, v in means.items()})
    res.metrics["acc"] = float(np.mean(list(means.values()))) if means else float("nan")
    res.metrics["n_missing_images"] = data.meta.get("n_missing_images", 0)
    res.task = "vl_checklist_itc"
    return res


def columns(suite: str, metrics: dict) -> dict[str, float]:
    cols = {suite: metrics["acc"]}
    for g in ("Object", "Attribute", "Relation"):
        if f"{g}_acc" in metrics:
            cols[f"{suite}/{g}"] = metrics[f"{g}_acc"]
    return cols

"""Gates of the PMI miniature: before accuracy-vs-PMI is read, each model shows it learned its base task.

The base task of a quickstart model is recognizing the class shape in scenes *of its own training world*. Its
accuracy there is a benchmark's per-(class, partner) accuracy weighted by that world's co-occurrence joint — the
accuracy on held-out scenes drawn as its training scenes were, without a second test set: two-object scenes
weighted by the PMI world's joint for `pmi`, uniformly for the control; pasted-object scenes, uniformly, for the
paste-augmented fine-tune (it was fine-tuned on class scenes with a random partner pasted). No collapse: in
every benchmark, the most frequent prediction is below `max_collapse` of the items. Both through
clipcomp.analysis.gates (Gate, gate_table, require), so the table and the one-line stop are the other experiments'.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np


def quickstart_gates(summary: dict, out: str, min_accuracy: float, max_collapse: float = 0.5) -> list:
    """Gates of one quickstart run (its summary.json and OUT/results/<model>-<bench>/items.parquet)."""
    import pyarrow.parquet as pq

    from clipcomp.analysis.gates import Gate, GateSettings

    GateSettings(min_accuracy=min_accuracy, max_collapse=max_collapse)  # thresholds in [0, 1], one line if not
    design = summary["design"]
    classes, partners = design["classes"], design["partners"]
    joint = np.asarray(design["joint"], dtype=float)
    gates = []
    for model, per_bench in summary["results"].items():
        w = joint if model == "pmi" else np.ones_like(joint)
        bench_of_world = "paste" if model == "pmi+paste-ft" else "pairs"
        pairs = per_bench[bench_of_world]["pmi"]["pairs"]
        acc = {(p["class"], p["partner"]): (p["accuracy"], p["n"]) for p in pairs}
        num = sum(w[classes.index(c), partners.index(q)] * a for (c, q), (a, _) in acc.items())
        den = sum(w[classes.index(c), partners.index(q)] for (c, q) in acc)
        value = float(num / den) if den > 0 else float("nan")
        n = int(sum(k for (c, q), (_, k) in acc.items() if w[classes.index(c), partners.index(q)] > 0))
        gates.append(Gate("accuracy on its training world", f"{model} ({bench_of_world})", value, min_accuracy, ">=", n,
                          bool(np.isfinite(value) and value >= min_accuracy)))
        for bench in per_bench:
            items = pq.read_table(os.path.join(out, "results", f"{model}-{bench}", "items.parquet"), columns=["pred"])
            preds = items.column("pred").to_pylist()
            share = Counter(preds).most_common(1)[0][1] / len(preds)
            gates.append(Gate("top prediction share", f"{model}, {bench}", share, max_collapse, "<", len(preds),
                              share < max_collapse))
    return gates

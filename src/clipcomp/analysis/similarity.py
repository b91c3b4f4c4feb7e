"""Accuracy vs train–test similarity: per test item its nearest-train similarity (exact kNN), joined with the
item's result, analysed with the PMI analysis's statistics (Pearson/Spearman r with bootstrap CIs, equal-count
bins with Wilson intervals, top−bottom gap) — the question of Mayilvahanan et al. (2024): does accuracy follow
how similar the test items are to the training data?"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clipcomp.errors import ClipcompError


def accuracy_vs_similarity(results: str, test_emb: str, train_emb: str, out: str, id_column: str = "path",
                           correct_column: str = "correct", bins: int = 10, tail: float = 0.05, boot: int = 1000,
                           seed: int = 0, force: bool = False):
    from clipcomp.analysis.pmi import analyze
    from clipcomp.analysis.report import fmt, fmt_ci
    from clipcomp.analysis.reports import read_results
    from clipcomp.io import atomic_write_json, atomic_write_text, prepare_output
    from clipcomp.similarity.embeddings import open_embeddings
    from clipcomp.similarity.knn import check_compatible, nearest_similarity

    table = read_results(results)
    for c in (id_column, correct_column):
        if c not in table.column_names:
            raise ClipcompError(f"{results}: no column {c!r} (columns: {', '.join(table.column_names)})")
    te, tr = open_embeddings(test_emb), open_embeddings(train_emb)
    check_compatible(te, tr)
    prepare_output(out, "similarity analyze", {"results": os.path.abspath(results), "test": os.path.abspath(test_emb),
                                               "train": os.path.abspath(train_emb), "bins": bins, "tail": tail,
                                               "boot": boot, "seed": seed}, force=force,
                   markers=("report.md",))
    t_ids, t_mat = te.load()
    sim = dict(zip(t_ids, nearest_similarity(t_mat, tr.shards()).tolist(), strict=True))
    ids = [str(v) for v in table.column(id_column).to_pylist()]
    missing = sum(1 for i in ids if i not in sim)
    if missing == len(ids):
        raise ClipcompError(f"{results}: none of its {id_column!r} values is an id of {test_emb}")
    s = np.array([sim.get(i, np.nan) for i in ids], np.float64)
    correct = np.asarray(table.column(correct_column).to_numpy(zero_copy_only=False), np.float64)
    res = analyze(s, correct, n_bins=bins, tail=tail, n_boot=boot, seed=seed)
    joined = table.append_column("nearest_train_similarity", pa.array(s))
    pq.write_table(joined, os.path.join(out, "items.parquet"))
    _plot(res, os.path.join(out, "accuracy_vs_similarity.png"))
    md = ["# Accuracy vs nearest-train similarity", "", f"- results: {results}", f"- test: {test_emb}",
          f"- train: {train_emb}", "",
          f"Items: {res.n_items:,} (without an embedding: {missing:,}). Accuracy {fmt(res.accuracy)}.", "",
          "| measure | value | 95% CI |", "|---|---:|---|",
          f"| Pearson r (similarity, correct) | {fmt(res.pearson)} | {fmt_ci(res.pearson_ci)} |",
          f"| Spearman ρ | {fmt(res.spearman)} | {fmt_ci(res.spearman_ci)} |",
          f"| top − bottom {int(tail * 100)}% accuracy gap | {fmt(res.gap)} | {fmt_ci(res.gap_ci)} |", "",
          "| bin | n | similarity range | accuracy | 95% CI |", "|---:|---:|---|---:|---|"]
    md += [f"| {b['bin']} | {b['n']} | {fmt(b['pmi_min'])} … {fmt(b['pmi_max'])} | {fmt(b['accuracy'])} | "
           f"[{fmt(b['ci_low'])}, {fmt(b['ci_high'])}] |" for b in res.bins]
    md += ["", "![accuracy vs similarity](accuracy_vs_similarity.png)", ""]
    atomic_write_text(os.path.join(out, "report.md"), "\n".join(md))
    atomic_write_json(os.path.join(out, "analysis.json"), res.as_dict())
    return res


def _plot(res, path: str) -> None:
    from clipcomp.io import new_figure, save_figure

    fig, ax = new_figure(figsize=(6.0, 4.0), dpi=140)
    x = [b["pmi_mean"] for b in res.bins]
    y = [b["accuracy"] for b in res.bins]
    err = [[max(0.0, b["accuracy"] - b["ci_low"]) for b in res.bins],
           [max(0.0, b["ci_high"] - b["accuracy"]) for b in res.bins]]
    ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"r = {res.pearson:.2f}")
    ax.set_xlabel("nearest-train cosine similarity (equal-count bins)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)

"""Analyses as library functions: `analyze_pmi` (accuracy vs PMI of per-item results) and `analyze_vqa` reports.
`clipcomp analyze ...` is a thin layer over these; each writes report.md, a plot, analysis.json and the joined
items, and returns the analysis object."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from clipcomp.errors import ClipcompError


def read_results(path: str) -> pa.Table:
    """Per-item results: a run folder (its items.parquet) or a Parquet/CSV/TSV/JSONL table."""
    from clipcomp.io import read_table

    if os.path.isdir(path):
        path = os.path.join(path, "items.parquet")
        if not os.path.exists(path):
            raise ClipcompError(f"{os.path.dirname(path)}: no items.parquet (not an evaluation run folder)")
    return read_table(path)


def _run_summary(results: str) -> dict:
    folder = results if os.path.isdir(results) else os.path.dirname(results)
    path = os.path.join(folder, "summary.json")
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError):
        return {}


def chance_level(table: pa.Table, summary: dict) -> float | None:
    """Accuracy of guessing: 1/(1 + negatives) for caption selection, 1/classes for classification."""
    if "negatives" in table.column_names:
        negs = table.column("negatives").to_pylist()
        if negs:
            return float(sum(1.0 / (1 + len(n or [])) for n in negs) / len(negs))
    n_classes = (summary.get("metrics") or {}).get("n_classes")
    if n_classes:
        return 1.0 / float(n_classes)
    return None


def analyze_pmi(results: str, stats: str | None = None, out: str = "runs/analysis", pmi_column: str | None = None,
                pairs: tuple[str, str] | None = None, text_column: str | None = None,
                correct_column: str = "correct", bins: int = 10, tail: float = 0.05, boot: int = 1000,
                seed: int = 0, chance: float | None = None, force: bool = False):
    """Accuracy vs PMI: r with bootstrap CIs, equal-count PMI bins, top−bottom gap, partial r, chance check."""
    from clipcomp.analysis.pmi import analyze_given_pmi, analyze_results
    from clipcomp.analysis.report import write_report
    from clipcomp.io import prepare_output
    from clipcomp.stats import ConceptStats

    if bins < 1:
        raise ClipcompError(f"--bins must be ≥ 1 (got {bins})")
    if not 0 < tail <= 0.5:
        raise ClipcompError(f"--tail must be in (0, 0.5] (got {tail})")
    if boot < 0:
        raise ClipcompError(f"--boot must be ≥ 0 (got {boot})")
    table = read_results(results)
    summary = _run_summary(results)
    if chance is None:
        chance = chance_level(table, summary)
    if pmi_column is None and stats is None and "pmi" in table.column_names:
        pmi_column = "pmi"
    context = {"results": results}
    if pmi_column is not None:
        joined, res = analyze_given_pmi(table, pmi_column, correct_column, bins, tail, boot, seed)
        context["pmi"] = f"column {pmi_column!r}"
    else:
        if stats is None:
            raise ClipcompError(f"{results}: pass --stats DIR (or results with a 'pmi' column / --pmi-column)")
        pair_cols = tuple(pairs) if pairs else None
        if pair_cols is None and text_column is None:
            names = table.column_names
            if "concept_a" in names and "concept_b" in names:
                pair_cols = ("concept_a", "concept_b")
            else:
                text_column = next((c for c in ("caption", "question", "text", "query") if c in names), None)
                if text_column is None:
                    raise ClipcompError(f"{results}: say where the concepts are: --pairs A,B or --text-column COL "
                                        f"(columns: {', '.join(names)})")
        st = ConceptStats.load(stats)
        joined, res = analyze_results(table, st, correct_column, pair_cols, text_column, bins, tail, boot, seed)
        context["stats"] = stats
    res.set_chance(chance)
    for key in ("task", "dataset", "model", "pretrained"):
        if summary.get(key) is not None:
            context[key] = summary[key]
    prepare_output(out, "analyze pmi", {"results": os.path.abspath(results), "stats": stats, "pmi_column": pmi_column,
                                        "pairs": list(pairs) if pairs else None, "text_column": text_column,
                                        "correct_column": correct_column, "bins": bins, "tail": tail, "boot": boot,
                                        "seed": seed, "chance": chance}, force=force,
                   markers=("report.md", "analysis.json"))
    pq.write_table(joined, os.path.join(out, "items.parquet"))
    title = "Accuracy vs PMI" + (f" — {context.get('dataset')}" if context.get("dataset") else "")
    write_report(res, out, title, context)
    return res


def analyze_vqa(questions: str, stats: str, annotations: str | None = None, predictions: str | None = None,
                out: str = "runs/vqa", bins: int = 10, tail: float = 0.05, boot: int = 1000, seed: int = 0,
                force: bool = False):
    """VQA accuracy vs mean PMI of question+answer concepts, and the yes-bias vs PMI; report.md + plot."""
    from clipcomp.analysis.report import fmt, markdown, plot_curve
    from clipcomp.analysis.vqa import analyze_vqa as _analyze
    from clipcomp.analysis.vqa import load_vqa
    from clipcomp.io import atomic_write_json, atomic_write_text, prepare_output
    from clipcomp.stats import ConceptStats

    if bins < 1:
        raise ClipcompError(f"--bins must be ≥ 1 (got {bins})")
    if not 0 < tail <= 0.5:
        raise ClipcompError(f"--tail must be in (0, 0.5] (got {tail})")
    table = load_vqa(questions, annotations, predictions)
    joined, res = _analyze(table, ConceptStats.load(stats), bins, tail, boot, seed)
    prepare_output(out, "analyze vqa", {"questions": os.path.abspath(questions), "stats": stats,
                                        "annotations": annotations, "predictions": predictions, "bins": bins,
                                        "tail": tail, "boot": boot, "seed": seed}, force=force,
                   markers=("report.md", "analysis.json"))
    pq.write_table(joined, os.path.join(out, "items.parquet"))
    extra = []
    if res.yes_given_yes:
        extra.append((f"P(answer yes | truth yes), r = {fmt(res.yes_given_yes.pearson, 2)}", res.yes_given_yes.bins))
    if res.yes_given_no:
        extra.append((f"P(answer yes | truth no), r = {fmt(res.yes_given_no.pearson, 2)}", res.yes_given_no.bins))
    plot_curve(res.accuracy, os.path.join(out, "pmi_curve.png"), "VQA accuracy and yes-bias vs PMI",
               ylabel="VQA accuracy", extra=extra)
    md = markdown(res.accuracy, "VQA accuracy vs PMI (question + answer concepts)", "pmi_curve.png",
                  {"input": questions, "stats": stats, "questions with truth yes": res.n_yes,
                   "questions with truth no": res.n_no})
    for label, sub in (("truth = yes", res.yes_given_yes), ("truth = no", res.yes_given_no)):
        if sub is None:
            md += f"\n## Yes-bias, {label}\n\nfewer than 3 such questions with a PMI.\n"
            continue
        md += (f"\n## Yes-bias, {label}: P(model answers yes) vs PMI\n\n"
               f"P(yes) = {fmt(sub.accuracy)}; Pearson r = {fmt(sub.pearson)} "
               f"[{fmt(sub.pearson_ci[0])}, {fmt(sub.pearson_ci[1])}]; top−bottom gap = {fmt(sub.gap)}\n\n"
               "| bin | n | mean PMI | P(yes) | 95% CI |\n|---:|---:|---:|---:|---|\n"
               + "".join(f"| {b['bin']} | {b['n']} | {fmt(b['pmi_mean'], 2)} | {fmt(b['accuracy'])} | "
                         f"[{fmt(b['ci_low'])}, {fmt(b['ci_high'])}] |\n" for b in sub.bins))
    atomic_write_text(os.path.join(out, "report.md"), md)
    atomic_write_json(os.path.join(out, "analysis.json"),
                      {"accuracy": res.accuracy.as_dict(),
                       "yes_given_yes": res.yes_given_yes.as_dict() if res.yes_given_yes else None,
                       "yes_given_no": res.yes_given_no.as_dict() if res.yes_given_no else None,
                       "n_yes": res.n_yes, "n_no": res.n_no})
    return res

"""`clipcomp analyze`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clipcomp.cli.options import (
    ForceOpt,
    OutOpt,
)
from clipcomp.errors import ClipcompError

console = Console()


analyze_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="Relate per-item model results to concept statistics (PMI).", no_args_is_help=True)


def _print_analysis(res, out: str, title: str) -> None:
    from clipcomp.analysis.report import fmt, fmt_ci

    t = Table(title=title, title_justify="left", show_header=False)
    t.add_row("items used / total", f"{res.n_used:,} / {res.n_items:,}"
              + (f"  (excluded: {', '.join(f'{k} {v}' for k, v in res.excluded.items())})" if res.excluded else ""))
    t.add_row("accuracy", fmt(res.accuracy) + (f"  (chance {fmt(res.chance)}"
                                                + (": AT CHANCE, r and gap not meaningful)" if res.at_chance else ")")
                                                if res.chance is not None else ""))
    t.add_row("Pearson r", f"{fmt(res.pearson)}  {fmt_ci(res.pearson_ci)}")
    t.add_row("Spearman ρ", f"{fmt(res.spearman)}  {fmt_ci(res.spearman_ci)}")
    t.add_row("partial r | frequency", f"{fmt(res.partial_r)}  {fmt_ci(res.partial_r_ci)}")
    t.add_row("top−bottom gap", f"{fmt(res.gap)}  {fmt_ci(res.gap_ci)}  (k = {res.tail_k})")
    t.add_row("bins", " ".join(f"{b['accuracy']:.2f}" for b in res.bins))
    t.add_row("written", f"{out}/report.md, pmi_curve.png, analysis.json, items.parquet")
    console.print(t)


@analyze_app.command("pmi")
def analyze_pmi(
    results: Annotated[str, typer.Argument(help="Per-item results (items.parquet, its folder, CSV, JSONL).")],
    stats: Annotated[str | None, typer.Option("--stats", help="ConceptStats directory.")] = None,
    out: OutOpt = "runs/analysis",
    pmi_column: Annotated[str | None, typer.Option(help="Use this column's PMI values as given (no --stats "
                                                        "needed); default 'pmi' when present and no --stats.")] = None,
    pairs: Annotated[str | None, typer.Option(help="Two columns holding the item's concept pair: A,B.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Column whose text gives the concepts.")] = None,
    correct_column: Annotated[str, typer.Option(help="0/1 (or score) column.")] = "correct",
    bins: Annotated[int, typer.Option(help="Equal-count PMI bins (≥ 1).", min=1)] = 10,
    tail: Annotated[float, typer.Option(help="Fraction for the top-vs-bottom gap, in (0, 0.5].", min=0.0,
                                        max=0.5)] = 0.05,
    boot: Annotated[int, typer.Option(help="Bootstrap resamples for CIs (≥ 0).", min=0)] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    chance: Annotated[float | None, typer.Option(help="Chance accuracy (default: from the task).", min=0.0,
                                                 max=1.0)] = None,
    force: ForceOpt = False,
) -> None:
    """Accuracy vs PMI: r with CIs, PMI bins, top/bottom gap, partial r; report.md + pmi_curve.png.
    → analyze.analyze_pmi"""
    from clipcomp.analysis.reports import analyze_pmi as run

    pair_cols = None
    if pairs:
        parts = [p.strip() for p in pairs.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ClipcompError(f"--pairs takes two column names separated by a comma (got {pairs!r})")
        pair_cols = (parts[0], parts[1])
    res = run(results, stats, out, pmi_column, pair_cols, text_column, correct_column, bins, tail, boot, seed,
              chance, force)
    _print_analysis(res, out, "Accuracy vs PMI")


@analyze_app.command("vqa")
def analyze_vqa_cmd(
    questions: Annotated[str, typer.Argument(help="VQAv2 questions JSON, or a table with question, answer, "
                                                  "prediction (+ answers).")],
    stats: Annotated[str, typer.Option("--stats", help="ConceptStats directory.")],
    annotations: Annotated[str | None, typer.Option(help="VQAv2 annotations JSON.")] = None,
    predictions: Annotated[str | None, typer.Option(help="Predictions JSON [{question_id, answer}].")] = None,
    out: OutOpt = "runs/vqa",
    bins: Annotated[int, typer.Option(help="Equal-count PMI bins (≥ 1).", min=1)] = 10,
    tail: Annotated[float, typer.Option(help="Fraction for the top-vs-bottom gap, in (0, 0.5].", min=0.0,
                                        max=0.5)] = 0.05,
    boot: Annotated[int, typer.Option(help="Bootstrap resamples (≥ 0).", min=0)] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    force: ForceOpt = False,
) -> None:
    """VQA accuracy vs mean PMI of question+answer concepts, and the yes-bias vs PMI. → analyze.analyze_vqa"""
    from clipcomp.analysis.report import fmt
    from clipcomp.analysis.reports import analyze_vqa

    res = analyze_vqa(questions, stats, annotations, predictions, out, bins, tail, boot, seed, force)
    _print_analysis(res.accuracy, out, "VQA accuracy vs PMI")
    for label, sub in (("P(yes | truth yes)", res.yes_given_yes), ("P(yes | truth no)", res.yes_given_no)):
        if sub is not None:
            console.print(f"{label}: {fmt(sub.accuracy)}, r vs PMI = {fmt(sub.pearson)}")

"""`clipcomp eval ...` and `clipcomp analyze ...`: thin CLI over models, tasks and analysis."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clipcomp.errors import ClipcompError

eval_app = typer.Typer(help="Evaluate a model: zero-shot classification, retrieval, caption selection.",
                       no_args_is_help=True)
analyze_app = typer.Typer(help="Relate per-item model results to concept statistics (PMI).", no_args_is_help=True)
console = Console()

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="open_clip architecture (see `clipcomp models`).")]
PretrainedOpt = Annotated[str | None, typer.Option(help="Pretrained tag, checkpoint file or model directory.")]
DeviceOpt = Annotated[str, typer.Option(help="auto|cpu|cuda|cuda:N")]
PrecisionOpt = Annotated[str, typer.Option(help="auto|fp32|amp|amp_bf16|fp16|bf16")]
BatchOpt = Annotated[int, typer.Option(help="Batch size.")]
LoaderOpt = Annotated[int | None, typer.Option("--loader-workers", help="DataLoader worker processes.")]
CacheOpt = Annotated[str, typer.Option(help="Embedding cache directory ('none' to disable).")]
OutOpt = Annotated[str, typer.Option("-o", "--out", help="Output directory (items.parquet + summary.json).")]
SkipOpt = Annotated[bool, typer.Option(help="Record and skip missing or undecodable images.")]
SeedOpt = Annotated[int, typer.Option(help="Seed for random initialization (no --pretrained).")]


def _embedder(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed):
    from clipcomp.embed import Embedder, default_cache_dir
    from clipcomp.models import load_model

    lm = load_model(model, pretrained, device=device, precision=precision, seed=seed)
    cache = None if cache_dir == "none" else (default_cache_dir() if cache_dir == "default" else cache_dir)
    emb = Embedder(lm, cache_dir=cache, batch_size=batch_size, num_workers=loader_workers)
    info = {"model": lm.name, "pretrained": lm.pretrained, "identity": lm.identity, "device": lm.device,
            "precision": lm.precision}
    return emb, info


def _finish(result, out: str, info: dict) -> None:
    from clipcomp.tasks import write_result

    summary = write_result(result, out, info)
    t = Table(title=f"{summary['task']} · {summary['dataset']} · {info['model']}"
                    f"{' / ' + str(info['pretrained']) if info['pretrained'] else ''}", title_justify="left",
              show_header=False)
    for k, v in result.metrics.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}: {b:.3f}" for a, b in list(v.items())[:8]) + (" ..." if len(v) > 8 else "")
        elif isinstance(v, float):
            v = f"{v:.4f}"
        t.add_row(k, str(v))
    t.add_row("items", f"{summary['n_items']:,}")
    if result.skipped:
        t.add_row("skipped", f"{len(result.skipped):,} (listed in summary.json)")
    t.add_row("written", os.path.join(out, "items.parquet") + ", summary.json")
    console.print(t)


@eval_app.command("zeroshot")
def eval_zeroshot(
    data: Annotated[str, typer.Argument(help="Image folder (one sub-folder per class) or manifest (path,label).")],
    out: OutOpt = "runs/zeroshot",
    classnames: Annotated[str | None, typer.Option(help="Class names: lines, 'folder<TAB>name' or JSON.")] = None,
    templates: Annotated[str, typer.Option(help="openai (80 prompts) | simple | FILE ({c} placeholder).")] = "openai",
    images: Annotated[str | None, typer.Option(help="Root for relative paths in a manifest.")] = None,
    model: ModelOpt = "clipcomp-tiny", pretrained: PretrainedOpt = None, device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto", batch_size: BatchOpt = 64, loader_workers: LoaderOpt = None,
    cache_dir: CacheOpt = "default", skip_bad: SkipOpt = False, seed: SeedOpt = 0,
) -> None:
    """Zero-shot classification: top-1/top-5, per-class accuracy; per-image results."""
    from clipcomp.tasks import zeroshot

    ds = zeroshot.load_image_folder(data, classnames) if os.path.isdir(data) else \
        zeroshot.load_manifest(data, classnames, images)
    tpl = zeroshot.load_templates(templates)
    emb, info = _embedder(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed)
    _finish(zeroshot.evaluate(emb, ds, tpl, skip_bad=skip_bad), out, info)


@eval_app.command("retrieval")
def eval_retrieval(
    captions: Annotated[str, typer.Argument(help="COCO-style captions JSON.")],
    out: OutOpt = "runs/retrieval",
    images: Annotated[str | None, typer.Option(help="Image folder (default: COCO layout next to the JSON).")] = None,
    model: ModelOpt = "clipcomp-tiny", pretrained: PretrainedOpt = None, device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto", batch_size: BatchOpt = 64, loader_workers: LoaderOpt = None,
    cache_dir: CacheOpt = "default", skip_bad: SkipOpt = False, seed: SeedOpt = 0,
) -> None:
    """Image↔text retrieval: Recall@1/5/10 both ways; per-query ranks."""
    from clipcomp.tasks import retrieval

    ds = retrieval.load_coco_captions(captions, images)
    emb, info = _embedder(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed)
    _finish(retrieval.evaluate(emb, ds, skip_bad=skip_bad), out, info)


@eval_app.command("select")
def eval_select(
    inputs: Annotated[list[str], typer.Argument(help="SugarCrepe JSON files/folder, or a manifest "
                                                     "(image, positive, negative...).")],
    out: OutOpt = "runs/select",
    images: Annotated[str | None, typer.Option(help="Image folder for relative image names.")] = None,
    model: ModelOpt = "clipcomp-tiny", pretrained: PretrainedOpt = None, device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto", batch_size: BatchOpt = 64, loader_workers: LoaderOpt = None,
    cache_dir: CacheOpt = "default", skip_bad: SkipOpt = False, seed: SeedOpt = 0,
) -> None:
    """Caption selection (image → true caption among negatives): accuracy overall and per subset."""
    from clipcomp.tasks import selection

    manifest = len(inputs) == 1 and inputs[0].lower().endswith((".csv", ".tsv", ".parquet", ".pq", ".jsonl"))
    if manifest:
        ds = selection.load_selection_manifest(inputs[0], images)
    else:
        if images is None:
            raise ClipcompError("SugarCrepe input needs --images DIR (the COCO val2017 images)")
        ds = selection.load_sugarcrepe(inputs, images)
    emb, info = _embedder(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed)
    _finish(selection.evaluate(emb, ds, skip_bad=skip_bad), out, info)


# ------------------------------------------------------------------------------------------------ analyze


def _read_results(path: str):
    from clipcomp.tasks.common import read_table

    if os.path.isdir(path):
        path = os.path.join(path, "items.parquet")
    return read_table(path)


def _print_analysis(res, out: str, title: str) -> None:
    from clipcomp.report import fmt, fmt_ci

    t = Table(title=title, title_justify="left", show_header=False)
    t.add_row("items used / total", f"{res.n_used:,} / {res.n_items:,}"
              + (f"  (excluded: {', '.join(f'{k} {v}' for k, v in res.excluded.items())})" if res.excluded else ""))
    t.add_row("accuracy", fmt(res.accuracy))
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
    bins: Annotated[int, typer.Option(help="Equal-count PMI bins.")] = 10,
    tail: Annotated[float, typer.Option(help="Fraction for the top-vs-bottom gap.")] = 0.05,
    boot: Annotated[int, typer.Option(help="Bootstrap resamples for CIs.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Accuracy vs PMI: r with CIs, PMI bins, top/bottom gap, partial r; report.md + pmi_curve.png."""
    import pyarrow.parquet as pq

    from clipcomp.analysis import analyze_results
    from clipcomp.report import write_report
    from clipcomp.stats import ConceptStats

    table = _read_results(results)
    if pmi_column is None and stats is None and "pmi" in table.column_names:
        pmi_column = "pmi"
    if pmi_column is not None:
        from clipcomp.analysis import analyze_given_pmi

        joined, res = analyze_given_pmi(table, pmi_column, correct_column, bins, tail, boot, seed)
        os.makedirs(out, exist_ok=True)
        pq.write_table(joined, os.path.join(out, "items.parquet"))
        write_report(res, out, "Accuracy vs PMI", {"results": results, "pmi": f"column {pmi_column!r}"})
        _print_analysis(res, out, "Accuracy vs PMI")
        return
    if stats is None:
        raise ClipcompError(f"{results}: pass --stats DIR (or results with a 'pmi' column / --pmi-column)")
    pair_cols = None
    if pairs:
        parts = [p.strip() for p in pairs.split(",")]
        if len(parts) != 2:
            raise ClipcompError(f"--pairs takes two column names separated by a comma (got {pairs!r})")
        pair_cols = (parts[0], parts[1])
    elif text_column is None:
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
    os.makedirs(out, exist_ok=True)
    pq.write_table(joined, os.path.join(out, "items.parquet"))
    summary_path = os.path.join(results if os.path.isdir(results) else os.path.dirname(results), "summary.json")
    context = {"results": results, "stats": stats}
    if os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            s = json.load(f)
        context.update({"task": s.get("task"), "dataset": s.get("dataset"), "model": s.get("model"),
                        "pretrained": s.get("pretrained")})
    title = "Accuracy vs PMI" + (f" — {context.get('dataset')}" if context.get("dataset") else "")
    write_report(res, out, title, context)
    _print_analysis(res, out, title)


@analyze_app.command("vqa")
def analyze_vqa_cmd(
    questions: Annotated[str, typer.Argument(help="VQAv2 questions JSON, or a table with question, answer, "
                                                  "prediction (+ answers).")],
    stats: Annotated[str, typer.Option("--stats", help="ConceptStats directory.")],
    annotations: Annotated[str | None, typer.Option(help="VQAv2 annotations JSON.")] = None,
    predictions: Annotated[str | None, typer.Option(help="Predictions JSON [{question_id, answer}].")] = None,
    out: OutOpt = "runs/vqa",
    bins: Annotated[int, typer.Option(help="Equal-count PMI bins.")] = 10,
    tail: Annotated[float, typer.Option(help="Fraction for the top-vs-bottom gap.")] = 0.05,
    boot: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """VQA accuracy vs mean PMI of question+answer concepts, and the yes-bias vs PMI."""
    import pyarrow.parquet as pq

    from clipcomp.report import fmt, markdown, plot_curve
    from clipcomp.stats import ConceptStats
    from clipcomp.vqa import analyze_vqa, load_vqa

    table = load_vqa(questions, annotations, predictions)
    joined, res = analyze_vqa(table, ConceptStats.load(stats), bins, tail, boot, seed)
    os.makedirs(out, exist_ok=True)
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
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(md)
    with open(os.path.join(out, "analysis.json"), "w", encoding="utf-8") as f:
        json.dump({"accuracy": res.accuracy.as_dict(),
                   "yes_given_yes": res.yes_given_yes.as_dict() if res.yes_given_yes else None,
                   "yes_given_no": res.yes_given_no.as_dict() if res.yes_given_no else None,
                   "n_yes": res.n_yes, "n_no": res.n_no}, f, indent=2, default=float)
    _print_analysis(res.accuracy, out, "VQA accuracy vs PMI")
    for label, sub in (("P(yes | truth yes)", res.yes_given_yes), ("P(yes | truth no)", res.yes_given_no)):
        if sub is not None:
            console.print(f"{label}: {fmt(sub.accuracy)}, r vs PMI = {fmt(sub.pearson)}")

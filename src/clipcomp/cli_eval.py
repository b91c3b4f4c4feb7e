"""`clipcomp eval ...` and `clipcomp analyze ...`: thin CLI over models, tasks and analysis."""

from __future__ import annotations

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
BatchOpt = Annotated[int, typer.Option(help="Batch size (≥ 1).", min=1)]
LoaderOpt = Annotated[int | None, typer.Option("--loader-workers", help="DataLoader worker processes (≥ 0).", min=0)]
CacheOpt = Annotated[str, typer.Option(help="Embedding cache directory ('none' to disable).")]
OutOpt = Annotated[str, typer.Option("-o", "--out", help="Output directory (items.parquet + summary.json).")]
SkipOpt = Annotated[bool, typer.Option(help="Record and skip missing or undecodable images.")]
SeedOpt = Annotated[int, typer.Option(help="Seed for random initialization (no --pretrained).")]
ForceOpt = Annotated[bool, typer.Option(help="Replace results of another run in OUT.")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars.")]


def _spec(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed):
    from clipcomp.evaluate import ModelSpec

    return ModelSpec(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed)


def _print_summary(summary: dict, out: str) -> None:
    t = Table(title=f"{summary['task']} · {summary['dataset']} · {summary['model']} / {summary['pretrained']}",
              title_justify="left", show_header=False)
    for k, v in summary["metrics"].items():
        t.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    t.add_row("items", f"{summary['n_items']:,}")
    if summary.get("n_skipped"):
        t.add_row("skipped", f"{summary['n_skipped']:,} (listed in details/skipped.json)")
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
    cache_dir: CacheOpt = "default", skip_bad: SkipOpt = False, seed: SeedOpt = 0, force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Zero-shot classification: top-1/top-5, per-class accuracy; per-image results. → evaluate.eval_zeroshot"""
    from clipcomp.evaluate import eval_zeroshot as run

    spec = _spec(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed)
    _print_summary(run(data, out, classnames, templates, images, spec, skip_bad, force, not quiet), out)


@eval_app.command("retrieval")
def eval_retrieval(
    captions: Annotated[str, typer.Argument(help="COCO-style captions JSON.")],
    out: OutOpt = "runs/retrieval",
    images: Annotated[str | None, typer.Option(help="Image folder (default: COCO layout next to the JSON).")] = None,
    model: ModelOpt = "clipcomp-tiny", pretrained: PretrainedOpt = None, device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto", batch_size: BatchOpt = 64, loader_workers: LoaderOpt = None,
    cache_dir: CacheOpt = "default", skip_bad: SkipOpt = False, seed: SeedOpt = 0, force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Image↔text retrieval: Recall@1/5/10 both ways; per-query ranks. → evaluate.eval_retrieval"""
    from clipcomp.evaluate import eval_retrieval as run

    spec = _spec(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed)
    _print_summary(run(captions, out, images, spec, skip_bad, force, not quiet), out)


@eval_app.command("select")
def eval_select(
    inputs: Annotated[list[str], typer.Argument(help="SugarCrepe JSON files/folder, or a manifest "
                                                     "(image, positive, negative...).")],
    out: OutOpt = "runs/select",
    images: Annotated[str | None, typer.Option(help="Image folder for relative image names.")] = None,
    model: ModelOpt = "clipcomp-tiny", pretrained: PretrainedOpt = None, device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto", batch_size: BatchOpt = 64, loader_workers: LoaderOpt = None,
    cache_dir: CacheOpt = "default", skip_bad: SkipOpt = False, seed: SeedOpt = 0, force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Caption selection (image → true caption among negatives): accuracy overall and per subset.
    → evaluate.eval_select"""
    from clipcomp.evaluate import eval_select as run

    spec = _spec(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed)
    _print_summary(run(inputs, out, images, spec, skip_bad, force, not quiet), out)


@eval_app.command("suite")
def eval_suite_cmd(
    suite: Annotated[str, typer.Argument(help="sugarcrepe|sugarcrepe++|aro-vg-relation|aro-vg-attribution|"
                                              "coco-order|flickr-order|valse|winoground|zeroshot|retrieval|"
                                              "linear-probe")],
    path: Annotated[str, typer.Argument(help="The suite's data in its official format (file or folder).")],
    out: OutOpt = "runs/suite",
    images: Annotated[str | None, typer.Option(help="Image folder of the suite.")] = None,
    model: ModelOpt = "clipcomp-tiny", pretrained: PretrainedOpt = None, device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto", batch_size: BatchOpt = 64, loader_workers: LoaderOpt = None,
    cache_dir: CacheOpt = "default", seed: SeedOpt = 0, force: ForceOpt = False, quiet: QuietOpt = False,
) -> None:
    """One compositionality suite (or zero-shot / retrieval / linear probe) for one model. → suites.eval_suite"""
    from clipcomp.suites import eval_suite

    spec = _spec(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed)
    _print_summary(eval_suite(suite, path, out, images, spec, {"seed": seed}, force, not quiet), out)


@eval_app.command("suites")
def eval_suites_cmd(
    config: Annotated[str, typer.Argument(help="YAML/TOML with `models:` and `suites:` lists (see docs/api.md).")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory: one run folder per (model, suite) "
                                                         "and table.csv / table.md.")] = "runs/suites",
    force: ForceOpt = False, quiet: QuietOpt = False,
) -> None:
    """Every model on every suite → one table (a row per model, a column per suite/subset). → suites.run_suites"""
    from clipcomp.suites import run_suites

    path = run_suites(config, out, force, not quiet)
    console.print(f"{path} (and table.md)")


@eval_app.command("binding")
def eval_binding(
    data: Annotated[str, typer.Argument(help="Synthetic dataset directory (its 'test' split is probed).")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="open_clip architecture (default: the one "
                                              "recorded in the checkpoint, else clipcomp-tiny).")] = None,
    pretrained: Annotated[str | None, typer.Option(help="Trained weights (e.g. runs/train/final.pt).")] = None,
    scenes: Annotated[int, typer.Option(help="How many held-out scenes (≥ 1).", min=1)] = 1000,
    split: Annotated[str, typer.Option(help="Which split to probe.")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the probe choices.")] = 0,
    device: DeviceOpt = "auto",
    out: OutOpt = "runs/binding",
    force: ForceOpt = False,
) -> None:
    """Binding probes: attribute swap / replace attribute / replace object (image→text), swap (text→image).
    → evaluate.eval_binding"""
    from clipcomp.evaluate import ModelSpec
    from clipcomp.evaluate import eval_binding as run

    summary = run(data, out, ModelSpec(model=model, pretrained=pretrained, device=device, cache_dir=None), scenes,
                  split, seed, force, progress=False)
    _print_summary(summary, out)


@eval_app.command("gather")
def eval_gather(
    runs: Annotated[list[str], typer.Argument(help="Run folders (their *.json results) or result JSON files.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Table to write: .csv, .parquet or .md.")],
) -> None:
    """Merge run summaries (clipcomp's or CLIP_benchmark's) into one table. → gather.gather_runs + write_table"""
    from clipcomp.gather import gather_runs, write_table

    table = gather_runs(runs)
    write_table(table, out)
    console.print(f"{out}: {table.num_rows} result(s), {table.num_columns} columns")


# ------------------------------------------------------------------------------------------------ analyze


def _print_analysis(res, out: str, title: str) -> None:
    from clipcomp.report import fmt, fmt_ci

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
    from clipcomp.analyze import analyze_pmi as run

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
    from clipcomp.analyze import analyze_vqa
    from clipcomp.report import fmt

    res = analyze_vqa(questions, stats, annotations, predictions, out, bins, tail, boot, seed, force)
    _print_analysis(res.accuracy, out, "VQA accuracy vs PMI")
    for label, sub in (("P(yes | truth yes)", res.yes_given_yes), ("P(yes | truth no)", res.yes_given_no)):
        if sub is not None:
            console.print(f"{label}: {fmt(sub.accuracy)}, r vs PMI = {fmt(sub.pearson)}")

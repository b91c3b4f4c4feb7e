"""`clipcomp eval`."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clipcomp.cli.options import (
    BatchOpt,
    CacheOpt,
    DeviceOpt,
    ForceOpt,
    LoaderOpt,
    ModelOpt,
    OutOpt,
    OverridesArg,
    PrecisionOpt,
    PretrainedOpt,
    QuietOpt,
    SeedOpt,
    SkipOpt,
)
from clipcomp.tasks.registry import SUITES

console = Console()


eval_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="Evaluate a model: zero-shot classification, retrieval, caption selection.",
    no_args_is_help=True)


def _spec(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed):
    from clipcomp.models import ModelSpec

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
    from clipcomp.tasks.run import eval_zeroshot as run

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
    from clipcomp.tasks.run import eval_retrieval as run

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
    from clipcomp.tasks.run import eval_select as run

    spec = _spec(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed)
    _print_summary(run(inputs, out, images, spec, skip_bad, force, not quiet), out)


@eval_app.command("suite")
def eval_suite_cmd(
    suite: Annotated[str, typer.Argument(help="A registered suite: " + " | ".join(SUITES) + ".")],
    path: Annotated[str, typer.Argument(help="The suite's data in its official format (file or folder).")],
    out: OutOpt = "runs/suite",
    images: Annotated[str | None, typer.Option(help="Image folder of the suite.")] = None,
    model: ModelOpt = "clipcomp-tiny", pretrained: PretrainedOpt = None, device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto", batch_size: BatchOpt = 64, loader_workers: LoaderOpt = None,
    cache_dir: CacheOpt = "default", skip_bad: SkipOpt = False, seed: SeedOpt = 0, force: ForceOpt = False,
    quiet: QuietOpt = False,
    option: Annotated[list[str] | None, typer.Option("--option", help="A suite option KEY=VALUE (repeatable), as "
                                                     "in a suites config: threshold=0.25 (svo-probes), max_num=0 "
                                                     "(vl-checklist), valid_only=false (valse), ...")] = None,
) -> None:
    """One registered suite or task for one model. → tasks.run.run_suite"""
    from clipcomp.tasks.run import run_suite

    opts = {"seed": seed, "skip_bad": skip_bad}
    for o in option or []:
        import yaml

        from clipcomp.errors import ClipcompError

        key, sep, value = o.partition("=")
        if not sep or not key.strip():
            raise ClipcompError(f"--option {o!r}: expected KEY=VALUE")

        opts[key.strip()] = yaml.safe_load(value)  # numbers, true/false, lists as in a config file
    spec = _spec(model, pretrained, device, precision, batch_size, loader_workers, cache_dir, seed)
    _print_summary(run_suite(suite, path, out, images, spec, opts, force, not quiet), out)


@eval_app.command("suites")
def eval_suites_cmd(
    config: Annotated[str, typer.Argument(help="YAML/TOML with `models:` and `suites:` lists (see docs/api.md).")],
    overrides: OverridesArg = None,
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory: one run folder per (model, suite) "
                                                         "and table.csv / table.md.")] = "runs/suites",
    skip_bad: SkipOpt = False, force: ForceOpt = False, quiet: QuietOpt = False,
) -> None:
    """Every model on every suite → one table (a row per model, a column per suite/subset). → suites.run_suites"""
    from clipcomp.pipelines.suites import run_suites

    path = run_suites(config, out, force, not quiet, overrides or (), skip_bad)
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
    from clipcomp.tasks.run import ModelSpec
    from clipcomp.tasks.run import eval_binding as run

    summary = run(data, out, ModelSpec(model=model, pretrained=pretrained, device=device, cache_dir=None), scenes,
                  split, seed, force, progress=False)
    _print_summary(summary, out)


@eval_app.command("gather")
def eval_gather(
    runs: Annotated[list[str], typer.Argument(help="Run folders (their *.json results) or result JSON files.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Table to write: .csv, .parquet or .md.")],
) -> None:
    """Merge run summaries (clipcomp's or CLIP_benchmark's) into one table. → gather.gather_runs + write_table"""
    from clipcomp.analysis.gather import gather_runs, write_table

    table = gather_runs(runs)
    write_table(table, out)
    console.print(f"{out}: {table.num_rows} result(s), {table.num_columns} columns")

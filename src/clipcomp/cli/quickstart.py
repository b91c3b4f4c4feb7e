"""`clipcomp quickstart`."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clipcomp.cli.options import csv_list

console = Console()


def quickstart_cmd(
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory (stages already done are reused).")]
    = "runs/quickstart",
    steps: Annotated[int, typer.Option(help="Training steps per model (≥ 1).", min=1)] = 1000,
    n_train: Annotated[int, typer.Option(help="Training scenes per world (≥ 1).", min=1)] = 40_000,
    per_pair: Annotated[int, typer.Option(help="Test scenes per (class, partner) pair and benchmark (≥ 1).",
        min=1)] = 40,
    batch_size: Annotated[int, typer.Option(help="Training batch size (≥ 1).", min=1)] = 128,
    model: Annotated[str, typer.Option(help="open_clip architecture (clipcomp-micro/-tiny/-small or any).")]
    = "clipcomp-micro",
    seed: Annotated[int, typer.Option(help="Seed of the design, the data and the training.")] = 0,
    decay: Annotated[float, typer.Option(help="Weight ratio between a class's successive partners, in (0, 1].",
        min=0.0, max=1.0)] = 0.5,
    never: Annotated[int, typer.Option(help="Partners per class that never co-occur with it (≥ 0).", min=0)] = 1,
    completeness: Annotated[float, typer.Option(help="Caption knob: chance the second object is named, in [0, 1].",
        min=0.0, max=1.0)] = 0.5,
    attribute_density: Annotated[float, typer.Option(help="Caption knob: chance each attribute is named, in [0, 1].",
        min=0.0, max=1.0)] = 0.0,
    classes: Annotated[str | None, typer.Option(help="Class shapes, comma-separated.")] = None,
    partners: Annotated[str | None, typer.Option(help="Partner shapes, comma-separated.")] = None,
    control: Annotated[bool, typer.Option("--control/--no-control", help="Also train on uniform co-occurrence.")]
    = True,
    finetune: Annotated[bool, typer.Option("--finetune-paste/--no-finetune-paste",
                                           help="Also fine-tune the PMI model with pasted-object augmentation.")]
    = True,
    finetune_steps: Annotated[int, typer.Option(help="Fine-tuning steps (≥ 1).", min=1)] = 300,
    area_fraction: Annotated[float, typer.Option(help="Pasted object's share of the image area, in (0, 1).",
        min=0.0, max=1.0)] = 0.1,
    workers: Annotated[int, typer.Option(help="Processes for scene generation (≥ 1).", min=1)] = 2,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="torch CPU threads (≥ 0; 0 = torch's default). The documented numbers "
                                              "were computed with 2: float sums depend on the count.", min=0)] = 2,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress output.")] = False,
) -> None:
    """PMI in miniature: a world with set co-occurrences → ConceptStats → train → zero-shot → PMI report."""
    from clipcomp.pipelines.miniature.pipeline import QuickstartConfig, run
    from clipcomp.pipelines.miniature.report import headline

    cfg = QuickstartConfig(out=out, steps=steps, n_train=n_train, per_pair=per_pair, batch_size=batch_size,
                           model=model, seed=seed, decay=decay, never=never, completeness=completeness,
                           attribute_density=attribute_density, control=control, finetune=finetune,
                           finetune_steps=finetune_steps, area_fraction=area_fraction, workers=workers, device=device,
                           threads=threads)
    if classes:
        cfg.classes = csv_list(classes)
    if partners:
        cfg.partners = csv_list(partners)
    summary = run(cfg, progress=not quiet)
    t = Table(title=f"PMI in miniature · {os.path.join(out, 'report.md')}", title_justify="left")
    for col in ("model", "benchmark", "accuracy", "r (item)", "r (pairs)", "top−bottom 5% gap", "never-together acc."):
        t.add_column(col, justify="left" if col in ("model", "benchmark") else "right")
    for r in headline(summary):
        if r["at_chance"]:
            t.add_row(r["model"], r["benchmark"], f"{r['accuracy']:.3f} (chance)", "n/a", "n/a", "n/a (at chance)",
                      "n/a" if r["unseen"] is None else f"{r['unseen']:.3f}")
            continue
        t.add_row(r["model"], r["benchmark"], f"{r['accuracy']:.3f}", f"{r['r']:.3f}",
                  "n/a" if r["r_pairs"] is None else f"{r['r_pairs']:.3f}", f"{r['gap'] * 100:.1f} pts",
                  "n/a" if r["unseen"] is None else f"{r['unseen']:.3f}")
    console.print(t)
    from clipcomp.pipelines.miniature.gates import quickstart_gates

    failed = [g for g in quickstart_gates(summary, out, 0.9, 0.5) if not g.passed]
    if failed:
        console.print(f"gates: {len(failed)} failed (e.g. {failed[0].name}, {failed[0].domain} = "
                      f"{failed[0].value:.3f} < 0.9) — the models have not learned the base task at the project's "
                      "standard; the table shows the pipeline, not evidence (gate table in the report)")
    console.print(f"report: {os.path.join(out, 'report.md')}  plot: {os.path.join(out, 'pmi_curve.png')}  "
                  f"({summary['seconds'] / 60:.1f} min)")

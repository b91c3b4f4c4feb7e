"""`clipcomp base`: the pretrained stand-in of the miniature experiments (trained once per seed, gated, reused)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import csv_list

console = Console()


def base_cmd(
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory (a run with the same settings is "
                                                         "reused).")] = "runs/base",
    seed: Annotated[int, typer.Option(help="Seed of the world, the test items and the training.")] = 0,
    domains: Annotated[str, typer.Option(help="Trained domains: natural (default), all, or a list of natural,"
                                              "clipart,painting,sketch,doodle.")] = "natural",
    classes: Annotated[str | None, typer.Option(help="Shape classes, comma-separated (default: 12 of "
                                                     "clipcomp.synth.shapeworld.SHAPES).")] = None,
    n_train: Annotated[int, typer.Option(help="Training images per trained domain (≥ 1).", min=1)] = 40_000,
    n_test: Annotated[int, typer.Option(help="Held-out gate items per domain (≥ 1).", min=1)] = 1_200,
    model: Annotated[str, typer.Option(help="Architecture (clipcomp-micro32: 32 px, patch 4).")] = "clipcomp-micro32",
    steps: Annotated[int, typer.Option(help="Training steps (≥ 1).", min=1)] = 3000,
    loss: Annotated[str, typer.Option(help="unicl (label-aware contrastive, default) | infonce (plain CLIP).")]
    = "unicl",
    batch_size: Annotated[int, typer.Option(help="Batch size (≥ 1).", min=1)] = 128,
    lr: Annotated[float, typer.Option(help="Peak learning rate (> 0).", min=0.0)] = 2e-3,
    threads: Annotated[int, typer.Option(help="torch threads (≥ 0; 0 = torch's default).", min=0)] = 2,
    min_accuracy: Annotated[float, typer.Option(help="Gate: natural zero-shot accuracy at least this, in [0, 1].",
                                                min=0.0, max=1.0)] = 0.9,
    min_items: Annotated[int, typer.Option(help="Gate: at least this many natural test items (≥ 1).", min=1)] = 1000,
    max_collapse: Annotated[float, typer.Option(help="Gate: top prediction share below this in every trained "
                                                     "domain, in [0, 1].", min=0.0, max=1.0)] = 0.5,
    force: Annotated[bool, typer.Option(help="Replace a base model with other settings in OUT.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar.")] = False,
) -> None:
    """Train (or reuse) the pretrained stand-in for one seed and print its gate table. → pipelines.base.train_base"""
    from clipcomp.analysis.gates import gate_table
    from clipcomp.pipelines.base import BaseConfig, _gates_from, train_base

    doms = ["all"] if domains.strip() == "all" else csv_list(domains)
    cfg = BaseConfig(out=out, seed=seed, domains=doms, n_train=n_train, n_test=n_test, model=model, steps=steps,
                     loss=loss,
                     batch_size=batch_size, lr=lr, threads=threads, min_accuracy=min_accuracy, min_items=min_items,
                     max_collapse=max_collapse, **({"classes": csv_list(classes)} if classes else {}))
    try:
        info = train_base(cfg, force=force, progress=not quiet)
    finally:
        import os

        from clipcomp.io import read_json

        gj = os.path.join(out, "gates.json")
        if os.path.exists(gj):
            console.print(gate_table(_gates_from(read_json(gj))), highlight=False)
    acc = ", ".join(f"{d} {a:.3f}" for d, a in info["accuracy"].items())
    console.print(f"{info['weights']} ({'reused' if info['reused'] else 'trained'}; zero-shot accuracy: {acc})",
                  highlight=False)

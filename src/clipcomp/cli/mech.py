"""`clipcomp mech`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console()


mech_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="Mechanistic similarity between domains: per-layer CKA and shared units.",
    no_args_is_help=True)


@mech_app.command("layers")
def mech_layers(
    model: Annotated[str, typer.Option("--model", "-m", help="open_clip architecture.")] = "clipcomp-tiny",
    pretrained: Annotated[str | None, typer.Option(help="Tag, checkpoint or model dir.")] = None,
) -> None:
    """The image-tower layers activations can be captured from. → similarity.mechanistic.list_layers"""
    from clipcomp.models import load_model
    from clipcomp.similarity.mechanistic import list_layers

    for name in list_layers(load_model(model, pretrained).model):
        console.print(name, highlight=False)


@mech_app.command("report")
def mech_report_cmd(
    manifest: Annotated[str, typer.Argument(help="Manifest with image, class, domain columns.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")] = "runs/mech",
    model: Annotated[str | None, typer.Option("--model", "-m", help="open_clip architecture.")] = "clipcomp-tiny",
    pretrained: Annotated[str | None, typer.Option(help="Tag, checkpoint or model dir.")] = None,
    layers: Annotated[str | None, typer.Option(help="Layers a,b (default: all; see `clipcomp mech layers`).")] = None,
    units: Annotated[str, typer.Option(help="per-class (the paper: per-class top units, Jaccard, mean over classes) "
                                            "| pooled (one top set per domain)")] = "per-class",
    top: Annotated[float | None, typer.Option(help="Share of units kept, in (0, 1] (default 0.1 per-class, 0.05 "
                                                   "pooled).", min=0.0, max=1.0)] = None,
    attr_per_class: Annotated[int, typer.Option(help="per-class: images per (domain, class) (≥ 1).", min=1)] = 16,
    attr_per_domain: Annotated[int, typer.Option(help="pooled: images per domain (≥ 1).", min=1)] = 32,
    n_steps: Annotated[int | None, typer.Option(help="Integrated-gradients steps (default 10 per-class, 16 "
                                                     "pooled).", min=2)] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size (≥ 1).", min=1)] = 64,
    image_column: Annotated[str, typer.Option(help="Image path column.")] = "image",
    class_column: Annotated[str, typer.Option(help="Class column.")] = "class",
    domain_column: Annotated[str, typer.Option(help="Domain column.")] = "domain",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed (random init, attribution sample).")] = 0,
    force: Annotated[bool, typer.Option(help="Replace other results in OUT.")] = False,
) -> None:
    """Per-layer CKA between domains and Jaccard of top attribution units; heat maps + report.
    → similarity.mechanistic.mech_report"""
    from clipcomp.similarity.mechanistic import mech_report

    res = mech_report(manifest, out, model, pretrained, [v.strip() for v in layers.split(",")] if layers else None,
                      top, attr_per_domain, n_steps, batch_size, image_column=image_column,
                      class_column=class_column, domain_column=domain_column, device=device, seed=seed, force=force,
                      units=units, attr_per_class=attr_per_class)
    console.print(f"{out}/report.md: {len(res['layers'])} layers × {len(res['domains'])} domains "
                  f"({', '.join(res['domains'])}); cka.png, units.png, mech.json")

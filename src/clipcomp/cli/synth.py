"""`clipcomp synth`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import csv_list

console = Console()


synth_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="Synthetic worlds: scenes of coloured shapes with caption knobs.", no_args_is_help=True)


@synth_app.command("generate")
def synth_generate(
    config: Annotated[str, typer.Argument(help="YAML/TOML with sections world, captions, dataset.")],
    out: Annotated[str | None, typer.Option("-o", "--out", help="Override dataset.out.")] = None,
    workers: Annotated[int | None, typer.Option(help="Override dataset.workers (≥ 1).", min=1)] = None,
    n_train: Annotated[int | None, typer.Option(help="Override dataset.n_train (≥ 0).", min=0)] = None,
    n_test: Annotated[int | None, typer.Option(help="Override dataset.n_test (≥ 0).", min=0)] = None,
    force: Annotated[bool, typer.Option(help="Replace another dataset or other results in OUT.")] = False,
) -> None:
    """Render scenes and captions into image shards + manifest.parquet + meta.json."""
    from clipcomp.config import apply_overrides
    from clipcomp.errors import ClipcompError
    from clipcomp.pipelines.lab import load_sections, parse
    from clipcomp.synth.dataset import generate

    raw = load_sections(config)
    if not any(raw.get(k) for k in ("world", "captions", "dataset")):
        raise ClipcompError(f"{config}: no world, captions or dataset section; an empty config would generate the "
                            "default 21,000 scenes — write the sections you mean (see examples/binding_dense.yaml)")
    raw = apply_overrides(raw, {f"dataset.{k}": v for k, v in (("out", out), ("workers", workers),
                                                                ("n_train", n_train), ("n_test", n_test))
                                if v is not None})
    s = parse(raw, config)
    meta = generate(s["world"], s["captions"], s["dataset"], force=force)
    console.print(f"{s['dataset'].out}: {meta['n_train']:,} train + {meta['n_test']:,} test scenes in "
                  f"{meta['n_shards']} shards ({meta.get('images_per_second') or 0:,.0f} images/s)")



@synth_app.command("domains")
def synth_domains_cmd(
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")] = "runs/domains",
    classes: Annotated[str | None, typer.Option(help="Shape classes a,b,c (default: the 8 lab shapes).")] = None,
    domains: Annotated[str | None, typer.Option(help="Styles (natural,clipart,sketch,painting,quickdraw).")] = None,
    per_cell: Annotated[int, typer.Option(help="Images per (class, domain) (≥ 2).", min=2)] = 100,
    resolution: Annotated[int, typer.Option(help="Image side in pixels (≥ 16).", min=16)] = 64,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes (≥ 1).", min=1)] = 1,
    force: Annotated[bool, typer.Option(help="Replace other results in OUT.")] = False,
) -> None:
    """One shape per image in each render style: PNGs + manifest (image, caption, class, domain, split).
    → synth.domains.generate_domains"""
    from clipcomp.synth.domains import DomainSpec, generate_domains

    spec = DomainSpec(out=out, per_cell=per_cell, resolution=resolution, seed=seed)
    if classes:
        spec.classes = csv_list(classes)
    if domains:
        spec.domains = csv_list(domains)
    path = generate_domains(spec, workers=workers, force=force)
    console.print(f"{path}: {len(spec.classes)} classes × {len(spec.domains)} domains × {per_cell} images")

"""`clipcomp mix`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import csv_list

console = Console()


mix_app = typer.Typer(help="Controlled domain–class mixtures for domain vs compositional generalization.",
                      no_args_is_help=True)


@mix_app.command("build")
def mix_build_cmd(
    manifest: Annotated[str, typer.Argument(help="Manifest with image, caption, class, domain columns (Parquet/CSV/"
                                                 "TSV/JSONL), or a DomainNet list file (.txt).")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    setting: Annotated[str, typer.Option(help="natural-only|leave-out-domain|cg-low|cg-high|class-overlap")],
    test_domain: Annotated[str, typer.Option(help="The domain tested for generalization.")],
    natural_domain: Annotated[str, typer.Option(help="The natural (photo) domain.")] = "real",
    held_out_classes: Annotated[str | None, typer.Option(help="Held-out classes a,b,c.")] = None,
    n_held_out: Annotated[int | None, typer.Option(help="Or draw this many held-out classes (seeded; ≥ 1).",
                                                   min=1)] = None,
    overlap: Annotated[float, typer.Option(help="class-overlap: share of held-out classes in other renditions.",
                                           min=0.0, max=1.0)] = 0.5,
    domains: Annotated[str | None, typer.Option(help="Rendition domains to use besides natural/test (default all).")]
    = None,
    size: Annotated[str, typer.Option(help="all|fixed-total|fixed-natural")] = "all",
    n: Annotated[int | None, typer.Option(help="Rows for fixed-total / natural rows for fixed-natural (≥ 1).",
                                          min=1)] = None,
    captions: Annotated[str, typer.Option(help="keep|neutral|named")] = "keep",
    image_column: Annotated[str, typer.Option(help="Image path column.")] = "image",
    caption_column: Annotated[str, typer.Option(help="Caption column.")] = "caption",
    class_column: Annotated[str, typer.Option(help="Class column.")] = "class",
    domain_column: Annotated[str, typer.Option(help="Domain column.")] = "domain",
    seed: Annotated[int, typer.Option(help="Seed of every choice.")] = 0,
    force: Annotated[bool, typer.Option(help="Replace other results in OUT.")] = False,
) -> None:
    """Build one setting's training set and the seen/unseen test splits per domain. → mixtures.mix_build"""
    from clipcomp.datasets.mixtures import MixSpec, mix_build

    spec = MixSpec(setting=setting, test_domain=test_domain, natural_domain=natural_domain,
                   held_out_classes=csv_list(held_out_classes), n_held_out=n_held_out, overlap=overlap,
                   domains=csv_list(domains), size=size, n=n, captions=captions, seed=seed, image_column=image_column,
                   caption_column=caption_column, class_column=class_column, domain_column=domain_column)
    meta = mix_build(manifest, out, spec, force=force)
    console.print(f"{out}/train.parquet: {meta['n_train']:,} rows ({setting}; test domain {test_domain}; held out "
                  f"{', '.join(meta['held_out_classes'])}); tests: "
                  + ", ".join(f"{k} {v}" for k, v in meta["tests"].items()))

"""`clipcomp mix`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import ForceOpt, csv_list

console = Console()


mix_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="Controlled domain–class mixtures for domain vs compositional generalization.",
    no_args_is_help=True)


@mix_app.command("build")
def mix_build_cmd(
    manifest: Annotated[list[str], typer.Argument(help="Manifest with image, class, domain (and caption) columns "
                                                       "(Parquet/CSV/TSV/JSONL), or DomainNet list files "
                                                       "(clipart_train.txt, ...) / caption files (DOMAIN_SPLIT.tsv).")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    setting: Annotated[str, typer.Option(help="natural-only | leave-out-domain | cg-low | cg-high | class-overlap")],
    test_domain: Annotated[str, typer.Option(help="The domain tested for generalization (T).")],
    natural_domain: Annotated[str, typer.Option(help="The natural (photo) domain.")] = "real",
    held_out_classes: Annotated[str | None, typer.Option(help="Held-out classes a,b,c (H).")] = None,
    n_held_out: Annotated[int | None, typer.Option(help="Or draw this many held-out classes (seeded; ≥ 1).",
                                                   min=1)] = None,
    domains: Annotated[str | None, typer.Option(help="Rendition domains kept besides natural and T (default all): "
                                                     "the domains-added path between cg-low and cg-high.")] = None,
    allow_pct: Annotated[float, typer.Option(help="Share of H's T items allowed back (cg-low/cg-high), as their "
                                                  "--allow_pct.", min=0.0, max=1.0)] = 0.0,
    pseudo_exclude: Annotated[bool, typer.Option(help="Keep H in T: their 'with test classes' upper bound.")] = False,
    overlap: Annotated[float, typer.Option(help="class-overlap: share of T's classes whose T items stay.",
                                           min=0.0, max=1.0)] = 1.0,
    extra_classes: Annotated[str | None, typer.Option(help="class-overlap: classes whose T items replace the "
                                                           "removed ones (used by no other setting).")] = None,
    natural_extra: Annotated[str | None, typer.Option(help="A `filepath<TAB>title` TSV (ImageNet-Captions style) "
                                                           "merged in full, never subsampled.")] = None,
    size: Annotated[str, typer.Option(help="kempf (subsample to the single-rendition size, their default) | all | "
                                           "fixed-total | fixed-natural")] = "kempf",
    n: Annotated[int | None, typer.Option(help="Rows for fixed-total / natural rows for fixed-natural (≥ 1).",
                                          min=1)] = None,
    shuffle: Annotated[bool, typer.Option(help="Seeded order inside each (domain, class) cell; --no-shuffle takes "
                                               "manifest order, exactly as their code.")] = True,
    held_out_from: Annotated[str, typer.Option(help="test-domain (Kempf) | all-renditions (clipcomp ≤ 0.3)")]
    = "test-domain",
    captions: Annotated[str, typer.Option(help="keep | kempf | kempf-aligned | neutral | named")] = "keep",
    caption_seed: Annotated[int, typer.Option(help="Seed of the kempf caption templates (theirs: 42).")] = 42,
    image_column: Annotated[str, typer.Option(help="Image path column.")] = "image",
    caption_column: Annotated[str, typer.Option(help="Caption column.")] = "caption",
    class_column: Annotated[str, typer.Option(help="Class column.")] = "class",
    domain_column: Annotated[str, typer.Option(help="Domain column.")] = "domain",
    seed: Annotated[int, typer.Option(help="Seed of every choice.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Build one setting's training set (Kempf et al.'s exact mixtures) and the seen/unseen test splits per
    domain. → mixtures.mix_build"""
    from clipcomp.datasets.mixtures import MixSpec, mix_build

    spec = MixSpec(setting=setting, test_domain=test_domain, natural_domain=natural_domain,
                   held_out_classes=csv_list(held_out_classes), n_held_out=n_held_out, domains=csv_list(domains),
                   allow_pct=allow_pct, pseudo_exclude=pseudo_exclude, overlap=overlap,
                   extra_classes=csv_list(extra_classes), held_out_from=held_out_from, size=size, n=n,
                   shuffle=shuffle, captions=captions, caption_seed=caption_seed, seed=seed,
                   image_column=image_column, caption_column=caption_column, class_column=class_column,
                   domain_column=domain_column)
    with console.status("building the mixture…"):  # a spinner on terminals; nothing in logs
        meta = mix_build(manifest, out, spec, force=force, natural_extra=natural_extra)
    console.print(f"{out}/train.parquet: {meta['n_train']:,} rows ({setting}; test domain {test_domain}; held out "
                  f"{', '.join(meta['held_out_classes'])}; reference size "
                  f"{meta['subsampling']['reference_rows']:,}); tests: "
                  + ", ".join(f"{k} {v}" for k, v in meta["tests"].items()))

"""`clipcomp bench`."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import csv_list

console = Console()


bench_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="PMI-controlled benchmarks: GenPairs pair manifests, captions, images; pasted edits.",
    no_args_is_help=True)


def _classes(spec: str) -> list[str]:
    """imagenet | a file (one class per line) | a comma-separated list."""
    from clipcomp.benchgen.genpairs import imagenet_classnames
    from clipcomp.errors import ClipcompError

    if spec == "imagenet":
        return imagenet_classnames()
    if os.path.exists(spec):
        from clipcomp.io import read_text

        lines = read_text(spec, "class list").splitlines()
        names = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
        if not names:
            raise ClipcompError(f"{spec}: no class names (one per line expected)")
        return names
    names = csv_list(spec)
    if not names:
        raise ClipcompError(f"--classes {spec!r}: not 'imagenet', a file, or a comma-separated list")
    return names


@bench_app.command("genpairs")
def bench_genpairs(
    stats: Annotated[str, typer.Argument(help="ConceptStats directory (clipcomp stats build).")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory (manifest.parquet, images/).")],
    classes: Annotated[str, typer.Option(help="'imagenet' (1,000 shipped names), a file, or a,b,c.")] = "imagenet",
    per_quantile: Annotated[int, typer.Option(help="Partners drawn per PMI quantile and class (≥ 1).", min=1)] = 2,
    quantiles: Annotated[int, typer.Option(help="PMI quantile bins per class (≥ 1).", min=1)] = 5,
    unseen: Annotated[int, typer.Option(help="Never-co-occurring partners per class (≥ 0).", min=0)] = 2,
    min_concreteness: Annotated[float, typer.Option(help="Brysbaert concreteness threshold (1–5).",
        min=1.0, max=5.0)] = 4.0,
    seed: Annotated[int, typer.Option(help="Seed of every choice (pairs, templates, image noise).")] = 0,
    captions: Annotated[str, typer.Option(help="'template' or a local transformers causal-LM directory.")]
    = "template",
    prompt: Annotated[str | None, typer.Option(help="LLM prompt with {cls} and {concept} (default: the paper's).")]
    = None,
    temperature: Annotated[float, typer.Option(help="LLM sampling temperature (0: greedy; ≥ 0).", min=0.0)] = 0.0,
    images: Annotated[str | None, typer.Option(help="A local diffusers pipeline directory: draw every caption.")]
    = None,
    steps: Annotated[int, typer.Option(help="Diffusion steps (≥ 1).", min=1)] = 28,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale (≥ 0).", min=0.0)] = 3.5,
    size: Annotated[int | None, typer.Option(help="Image height and width (default: the pipeline's; ≥ 8).",
        min=8)] = None,
    batch_size: Annotated[int, typer.Option(help="Captions/images per batch (≥ 1).", min=1)] = 4,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    force: Annotated[bool, typer.Option(help="Replace another run's output in OUT.")] = False,
) -> None:
    """GenPairs: per class, partners over the PMI range (concrete, not classes, not numbers) → captions → images.
    → benchmarks.genpairs.build_genpairs"""
    from clipcomp.benchgen.genpairs import build_genpairs

    res = build_genpairs(stats, out, _classes(classes), per_quantile, quantiles, unseen, min_concreteness, seed,
                         captions, prompt, temperature, images, steps, guidance, size, batch_size, device, force)
    if res["skipped_classes"]:
        sk = res["skipped_classes"]
        console.print(f"[yellow]{len(sk)} class(es) are not concepts of {stats} and were skipped[/yellow] "
                      f"(e.g. {', '.join(sk[:5])})")
    msg = f"{out}/manifest.parquet: {res['n_pairs']:,} pairs over {res['n_classes']} classes"
    if images:
        msg += f"; images in {out}/images"
    console.print(msg)


@bench_app.command("paste")
def bench_paste(
    bases: Annotated[str, typer.Argument(help="Natural images: a class-folder tree or a manifest (path, label).")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory for the evaluation edits.")],
    coco: Annotated[str | None, typer.Option(help="COCO instances JSON whose polygon objects are pasted.")] = None,
    coco_images: Annotated[str | None, typer.Option(help="Image folder of the COCO JSON.")] = None,
    rgba: Annotated[str | None, typer.Option(help="Folder of RGBA concept images, one sub-folder per concept.")]
    = None,
    area_fraction: Annotated[float, typer.Option(help="Pasted box as a fraction of the base image area, in (0, 1).",
        min=0.0, max=1.0)] = 0.1,
    position: Annotated[str, typer.Option(help="random | grid")] = "random",
    per_base: Annotated[int, typer.Option(help="Edits per base image (≥ 1).", min=1)] = 1,
    min_area: Annotated[float, typer.Option(help="Smallest COCO object area (pixels) to paste (≥ 0).",
        min=0.0)] = 1024.0,
    eval_fraction: Annotated[float, typer.Option(help="Share of source images reserved for evaluation, in (0, 1).",
        min=0.0, max=1.0)] = 0.5,
    train_out: Annotated[str | None, typer.Option(help="Also write augmentation edits with the other sources.")]
    = None,
    stats: Annotated[str | None, typer.Option(help="ConceptStats: record PMI(label, concept) per edit.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of source choice and positions.")] = 0,
    force: Annotated[bool, typer.Option(help="Replace another run's output in OUT.")] = False,
) -> None:
    """Pasted-object edits: masked objects pasted at an area fraction; eval/augmentation sources disjoint.
    → benchmarks.paste.build_paste_benchmark"""
    from clipcomp.benchgen.paste import build_paste_benchmark

    res = build_paste_benchmark(bases, out, coco, coco_images, rgba, area_fraction, position, per_base, min_area,
                                eval_fraction, train_out, stats, seed, force)
    msg = f"{out}: {res['n_edits']:,} edits from {res['n_sources']:,} source objects"
    if train_out:
        msg += (f"; {train_out}: {res['n_train_edits']:,} augmentation edits from {res['n_train_sources']:,} other "
                "objects (disjoint)")
    console.print(msg)

"""`clipcomp domains`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import ForceOpt

console = Console()


domains_app = typer.Typer(help="Domain contamination: a calibrated natural-vs-rendition classifier.",
                          no_args_is_help=True)


@domains_app.command("fit")
def domains_fit_cmd(
    emb: Annotated[str, typer.Argument(help="Embeddings of labelled images.")],
    labels: Annotated[str, typer.Option(help="Table with the ids and their domain.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    natural: Annotated[str, typer.Option(help="The natural domain's label (everything else is a rendition).")]
    = "natural",
    id_column: Annotated[str, typer.Option(help="Id column of --labels (the embedded image path).")] = "image",
    domain_column: Annotated[str, typer.Option(help="Domain column of --labels.")] = "domain",
    target_precision: Annotated[float, typer.Option(help="Precision the threshold is calibrated to.", min=0.0,
                                                    max=1.0)] = 0.98,
    seed: Annotated[int, typer.Option(help="Seed of the splits.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Fit and calibrate the natural-vs-rendition classifier. → similarity.domains.domains_fit"""
    from clipcomp.similarity.domains import domains_fit

    s = domains_fit(emb, labels, out, natural, id_column, domain_column, target_precision, seed, force)
    console.print(f"{out}: threshold {s['threshold']:.3f}; held-out precision {s['precision']:.3f} "
                  f"[{s['precision_ci'][0]:.3f}, {s['precision_ci'][1]:.3f}], recall {s['recall']:.3f} "
                  f"[{s['recall_ci'][0]:.3f}, {s['recall_ci'][1]:.3f}]")


@domains_app.command("apply")
def domains_apply_cmd(
    classifier: Annotated[str, typer.Argument(help="Directory written by `domains fit`.")],
    emb: Annotated[str, typer.Argument(help="Corpus embeddings.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    captions: Annotated[str | None, typer.Option(help="Manifest with captions for the keyword baseline.")] = None,
    text_column: Annotated[str, typer.Option(help="Caption column.")] = "caption",
    id_column: Annotated[str, typer.Option(help="Id column of --captions.")] = "image",
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Per-item probabilities, the corrected rendition fraction with a CI, clean subsets.
    → similarity.domains.domains_apply"""
    from clipcomp.similarity.domains import domains_apply

    r = domains_apply(classifier, emb, out, captions, text_column, id_column, seed=seed, force=force)
    console.print(f"{out}: flagged {r['flagged_fraction']:.4f} of {r['n']:,}; corrected rendition fraction "
                  f"{r['corrected_fraction']:.4f} [{r['corrected_ci'][0]:.4f}, {r['corrected_ci'][1]:.4f}]")

"""`clipcomp domains`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import ForceOpt

console = Console()


domains_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="Domain contamination: a calibrated natural-vs-rendition classifier.",
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
    mode: Annotated[str, typer.Option(help="two-classifiers (the paper: natural-vs-rest and rendition-vs-rest, "
                                           "thresholds at the corpus prevalence) | single")] = "two-classifiers",
    ambiguous: Annotated[str, typer.Option(help="The ambiguous label (a negative for both classifiers).")]
    = "ambiguous",
    force: ForceOpt = False,
) -> None:
    """Fit the domain classifiers. → similarity.domains.domains_fit"""
    from clipcomp.similarity.domains import domains_fit

    with console.status("fitting the classifiers…"):  # a spinner on terminals; nothing in logs
        s = domains_fit(emb, labels, out, natural, id_column, domain_column, target_precision, seed, force, mode,
                        ambiguous)
    if mode == "single":
        console.print(f"{out}: threshold {s['threshold']:.3f}; held-out precision {s['precision']:.3f} "
                      f"[{s['precision_ci'][0]:.3f}, {s['precision_ci'][1]:.3f}], recall {s['recall']:.3f} "
                      f"[{s['recall_ci'][0]:.3f}, {s['recall_ci'][1]:.3f}]")
    else:
        console.print(f"{out}: natural-vs-rest and rendition-vs-rest fitted on {s['n_labelled']:,} labelled items; "
                      "thresholds are set by `domains apply` at the corpus's prevalence")


@domains_app.command("apply")
def domains_apply_cmd(
    classifier: Annotated[str, typer.Argument(help="Directory written by `domains fit`.")],
    emb: Annotated[str, typer.Argument(help="Corpus embeddings.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    captions: Annotated[str | None, typer.Option(help="Manifest with captions for the keyword baseline.")] = None,
    text_column: Annotated[str, typer.Option(help="Caption column.")] = "caption",
    id_column: Annotated[str, typer.Option(help="Id column of --captions.")] = "image",
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    prevalence: Annotated[str, typer.Option(help="Prevalence the thresholds are set at: corpus (estimated) | "
                                                 "labelled (the labelled set was drawn from this corpus) | a "
                                                 "number in (0, 1).")] = "corpus",
    force: ForceOpt = False,
) -> None:
    """Per-item probabilities, clean subsets, the lower bound and the corrected rendition fraction with a CI.
    → similarity.domains.domains_apply"""
    from clipcomp.errors import ClipcompError
    from clipcomp.similarity.domains import domains_apply

    prev: str | float = prevalence
    if prevalence not in ("corpus", "labelled"):
        try:
            prev = float(prevalence)
        except ValueError:
            raise ClipcompError(f"--prevalence {prevalence!r}: expected corpus, labelled or a number in (0, 1)") \
                from None
    with console.status("applying the classifiers…"):  # a spinner on terminals; nothing in logs
        r = domains_apply(classifier, emb, out, captions, text_column, id_column, seed=seed, force=force,
                          prevalence=prev)
    lb = f"at least {r['lower_bound']:.4f} renditions (flagged); " if "lower_bound" in r else \
        f"flagged {r['flagged_fraction']:.4f}; "
    console.print(f"{out}: {r['n']:,} items; {lb}corrected rendition fraction "
                  f"{r['corrected_fraction']:.4f} [{r['corrected_ci'][0]:.4f}, {r['corrected_ci'][1]:.4f}]")

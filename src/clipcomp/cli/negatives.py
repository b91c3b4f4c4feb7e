"""`clipcomp negatives`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import EngineOpt, SchedulerOpt

console = Console()


negatives_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="Concreteness-guided hard-negative captions (ConcretePlant).", no_args_is_help=True)


@negatives_app.command("generate")
def negatives_generate_cmd(
    inputs: Annotated[list[str], typer.Argument(help="Caption files, folders, globs or URLs (any source "
                                                     "`stats build` reads).")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    text_column: Annotated[str | None, typer.Option(help="Text column name or 0-based index.")] = None,
    types: Annotated[str, typer.Option(help="Comma list of replace-obj,replace-att,replace-rel,swap-obj,swap-att,"
                                            "add-obj,add-att.")] = "replace-obj,replace-att,replace-rel,swap-obj,"
                                                                   "swap-att,add-obj,add-att",
    rank: Annotated[str, typer.Option(help="Which span is perturbed: concreteness | random | least-concrete.")]
    = "concreteness",
    scale: Annotated[str, typer.Option(help="What 'most concrete' compares: raw (Brysbaert's 1–5 ratings) | "
                                            "pos-percentile (percentile within the part of speech).")] = "raw",
    per_caption: Annotated[int, typer.Option(help="Negatives per caption, K (≥ 1).")] = 1,
    stats: Annotated[str | None, typer.Option(help="ConceptStats directory: plausibility-matched replacements.")]
    = None,
    candidates: Annotated[str, typer.Option(help="Replacement words: auto | wordnet | stats | both (stats: the "
                                                 "corpus's concepts of the same part of speech; needs --stats).")]
    = "auto",
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes (≥ 1): a local pool, or with --engine dask the "
                                              "LocalCluster's workers.", min=1)] = 1,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N captions of each task (≥ 1).", min=1)] = None,
    lexicon: Annotated[str | None, typer.Option(help="Typed lexicon (JSON/YAML type → words, or TSV word<TAB>type): "
                                                     "its words are replaced only by words of their type.")]
    = None,
    lexicon_only: Annotated[bool, typer.Option(help="A closed world: only the lexicon's words are changed.")]
    = False,
    force: Annotated[bool, typer.Option(help="Replace other results in OUT.")] = False,
) -> None:
    """Write OUT/negatives.parquet (+ unperturbable.parquet, meta.json). → negatives.generate_negatives"""
    from clipcomp.negatives import NegativeOptions, generate_negatives

    opts = NegativeOptions(types=tuple(t.strip() for t in types.split(",") if t.strip()), rank=rank,
                           scale=scale, per_caption=per_caption, stats=stats, candidates=candidates, seed=seed,
                           workers=workers, text_column=text_column, limit=limit, force=force,
                           engine=engine, scheduler=scheduler, lexicon=lexicon,
                           lexicon_only=lexicon_only)
    res = generate_negatives(inputs, out, opts)
    console.print(f"{out}/negatives.parquet: {res.n_negatives:,} negatives of {res.n_captions:,} captions "
                  f"({res.n_unperturbable:,} with nothing perturbable, listed in unperturbable.parquet"
                  + (f", {res.n_not_english:,} of them not English" if res.n_not_english else "") + "); "
                  f"{res.captions_per_second:,.0f} captions/s")
    console.print("  " + ", ".join(f"{k} {v:,}" for k, v in sorted(res.by_type.items())))
    top = res.top_changed[:8]
    if top:
        console.print(f"  most changed words ({rank}, {scale} scale; word count rating): " + ", ".join(
            f"{t['word']} {t['count']:,} {'—' if t['rating'] is None else format(t['rating'], '.2f')}" for t in top))


@negatives_app.command("check")
def negatives_check_cmd(
    negatives: Annotated[str, typer.Argument(help="A negatives.parquet (or the folder holding it).")],
    stats: Annotated[str | None, typer.Option(help="ConceptStats of the training corpus (PMI scorer).")] = None,
    corpus: Annotated[str | None, typer.Option(help="Captions for the bigram LM (default: held out — the "
                                                    "negatives' captions, 2-fold cross-fit, so no pair is "
                                                    "scored by a model that saw its caption).")] = None,
    out: Annotated[str | None, typer.Option("-o", "--out", help="Write the report as JSON here.")] = None,
    lexicon: Annotated[str | None, typer.Option(help="Typed lexicon for the type check (default: the one the "
                                                     "negatives were generated with).")] = None,
    frame_word: Annotated[list[str] | None, typer.Option(help="A caption-frame word (repeatable; default: the "
                                                              "generating run's list).")] = None,
) -> None:
    """Validity of each negative (no frame word changed, type kept, no synonym, articles right — per type) and the
    blind-text check: how often a text-only scorer prefers the caption (50 % = undetectable).
    → negatives.check.run_check"""
    from clipcomp.negatives.check import run_check

    report = run_check(negatives, stats, corpus, out, lexicon, frame_word or None)
    validity = report.pop("validity", None)
    if validity is not None:
        v = validity["all"]
        console.print(f"  validity: {v['valid']['share']:.1%} of {v['valid']['n']:,} negatives pass all checks ("
                      + ", ".join(f"{c} {v[c]['share']:.1%}" for c in ("frame", "type", "synonym", "articles"))
                      + ")")
        console.print("            per type: " + ", ".join(f"{t} {r['valid']['share']:.1%}"
                                                          for t, r in validity["by_type"].items()))
    for scorer, rep in report.items():
        a = rep["all"]
        console.print(f"{scorer:>10}: {a['accuracy']:.1%} [{a['ci95'][0]:.1%}, {a['ci95'][1]:.1%}] of {a['n']:,} "
                      "pairs  (" + ", ".join(f"{t} {r['accuracy']:.0%}" for t, r in rep["by_type"].items()) + ")"
                      + (f"; LM: {rep['training']}" if "training" in rep else ""))

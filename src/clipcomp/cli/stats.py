"""`clipcomp stats ...`: build and query concept statistics (counts, co-occurrence, PMI)."""

from __future__ import annotations

import difflib
import json
import os
from importlib import resources
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from clipcomp.errors import ClipcompError

stats_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="Concept statistics: counts, co-occurrence and PMI over caption corpora.",
    no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

DEFAULT_CORPUS_NAME = "CC3M validation captions (Google Conceptual Captions, 15,833 alt-texts)"


def default_corpus() -> str:
    """The bundled real caption sample used when `stats build` gets no INPUT."""
    return str(resources.files("clipcomp").joinpath("data/cc3m_val_captions.txt"))


# ----------------------------------------------------------------------------------------------- progress


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        caps = task.fields.get("captions", 0)
        elapsed = task.elapsed or 0.0
        rate = caps / elapsed if elapsed > 0 else 0.0
        return Text(f"{caps:,} captions  {rate:,.0f}/s", style="cyan")


class RichReporter:
    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(TextColumn("[bold]{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("tasks"), _RateColumn(), TimeElapsedColumn(),
                                 console=err_console, disable=not enabled, transient=False)
        self._task = None
        self._started = False

    def phase(self, name: str, total_tasks: int) -> None:
        if not self._started:  # the display thread starts only after the worker processes exist
            self.progress.start()
            self._started = True
        self._task = self.progress.add_task(name, total=total_tasks, captions=0)

    def task_done(self, result: dict) -> None:
        t = self.progress.tasks[-1]
        self.progress.update(self._task, advance=1, captions=t.fields.get("captions", 0) + result.get("n_rows", 0))

    def close(self) -> None:
        if self._started:
            self.progress.stop()


# ----------------------------------------------------------------------------------------------- stats


@stats_app.command("build")
def stats_build(
    inputs: Annotated[list[str] | None, typer.Argument(
        help="Caption files, directories or globs (Parquet, JSONL, CSV, TSV, TXT, COCO JSON). "
             "None: the bundled CC3M caption sample.")] = None,
    out: Annotated[str, typer.Option("-o", "--out", help="Output ConceptStats directory.")] = "clipcomp-stats",
    text_column: Annotated[str | None, typer.Option(help="Text column name or 0-based index.")] = None,
    input_format: Annotated[str, typer.Option(help="auto | parquet | jsonl | csv | tsv | text | coco")] = "auto",
    header: Annotated[bool | None, typer.Option("--header/--no-header",
                                                help="CSV/TSV header row (default: detected).")] = None,
    vocab: Annotated[str | None, typer.Option(help="Vocabulary file, one concept (word or phrase) per line.")] = None,
    min_count: Annotated[int, typer.Option(help="Keep concepts in ≥ N captions (vocabulary from corpus; ≥ 1).",
        min=1)] = 5,
    max_concepts: Annotated[int | None, typer.Option(help="Keep at most the K most frequent concepts (≥ 1).",
        min=1)] = None,
    lemmatizer: Annotated[str, typer.Option(help="simplemma | spacy | none")] = "simplemma",
    stopwords: Annotated[str, typer.Option(help="default | none | FILE")] = "default",
    smoothing: Annotated[float, typer.Option(help="Add-k smoothing of counts in PMI (0 = none; ≥ 0).", min=0.0)] = 0.0,
    workers: Annotated[int, typer.Option(help="Parallel worker processes (≥ 1).", min=1)] = 1,
    engine: Annotated[str, typer.Option(help="local | dask")] = "local",
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address (default: a LocalCluster).")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Skip unreadable shards and list them in meta.json.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite a different build in OUT.")] = False,
    keep_work: Annotated[bool, typer.Option(help="Keep per-task partial counts in OUT/_work.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar.")] = False,
) -> None:
    """Count concepts and concept pairs over captions and write concepts/pairs Parquet + meta.json."""
    from clipcomp.cooccur import BuildOptions, build_stats

    bundled = not inputs
    paths = [default_corpus()] if bundled else list(inputs)
    opts = BuildOptions(text_column=text_column, input_format=input_format, header=header, vocab=vocab,
                        min_count=min_count, max_concepts=max_concepts, lemmatizer=lemmatizer,
                        stopwords=stopwords, smoothing=smoothing, workers=workers, engine=engine,
                        scheduler=scheduler, skip_bad=skip_bad, force=force, keep_work=keep_work)
    reporter = RichReporter(enabled=not quiet and err_console.is_terminal)
    res = build_stats(paths, out, opts, reporter)
    _print_build_summary(res, DEFAULT_CORPUS_NAME if bundled else ", ".join(paths))


def _print_build_summary(res, source: str) -> None:
    from clipcomp.stats import ConceptStats

    t = Table(title=f"ConceptStats → {res.out}" + ("  (already up to date)" if res.up_to_date else ""),
              show_header=False, title_justify="left")
    t.add_row("input", source if len(source) < 100 else source[:97] + "...")
    t.add_row("captions", f"{res.n_captions:,}")
    tl = res.tally
    if tl:
        t.add_row("null / empty / bad UTF-8",
                  f"{tl.get('n_null', 0):,} / {tl.get('n_empty', 0):,} / {tl.get('n_invalid_utf8', 0):,}")
    t.add_row("concepts", f"{res.n_concepts:,}")
    t.add_row("pairs (count ≥ 1)", f"{res.n_pairs:,}")
    if not res.up_to_date:
        t.add_row("time", f"{res.seconds:.2f} s  ({res.captions_per_second:,.0f} captions/s)")
    if res.skipped:
        t.add_row("skipped", "\n".join(f"{s['file']}: {s['reason']}" for s in res.skipped[:5]))
    console.print(t)
    stats = ConceptStats.load(res.out)
    top = stats.top_pairs(k=5, min_count=max(2, min(50, res.n_captions // 2000)))
    if top:
        _print_pairs(top, "highest-PMI pairs")


def _print_pairs(pairs, title: str) -> None:
    t = Table(title=title, title_justify="left")
    for col in ("a", "b", "count", "pmi", "npmi"):
        t.add_column(col, justify="right" if col in ("count", "pmi", "npmi") else "left")
    for p in pairs:
        t.add_row(p.a, p.b, f"{p.count:,}", f"{p.pmi:.3f}", f"{p.npmi:.3f}")
    console.print(t)


def _load(path: str):
    from clipcomp.stats import ConceptStats

    return ConceptStats.load(path)


def _check_concept(stats, concept: str) -> None:
    if concept not in stats:
        close = difflib.get_close_matches(concept.lower(), stats.concepts, n=5)
        hint = f" (close matches: {', '.join(close)})" if close else ""
        raise ClipcompError(f"{concept!r} is not a concept of {stats.path}{hint}")


@stats_app.command("pmi")
def stats_pmi(
    stats_dir: Annotated[str, typer.Argument(help="ConceptStats directory.")],
    a: Annotated[str, typer.Argument(help="First concept.")],
    b: Annotated[str, typer.Argument(help="Second concept.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """PMI, NPMI and counts of one concept pair."""
    stats = _load(stats_dir)
    _check_concept(stats, a)
    _check_concept(stats, b)
    p = stats.pair(a, b)
    row = {"a": p.a, "b": p.b, "count_a": stats.count(p.a), "count_b": stats.count(p.b), "count_ab": p.count,
           "n_captions": stats.n_captions, "pmi": p.pmi, "npmi": p.npmi}
    if as_json:
        print(json.dumps(row))
        return
    t = Table(show_header=False)
    for k, v in row.items():
        t.add_row(k, f"{v:.4f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))
    console.print(t)


@stats_app.command("top")
def stats_top(
    stats_dir: Annotated[str, typer.Argument(help="ConceptStats directory.")],
    concept: Annotated[str | None, typer.Option(help="Only pairs containing this concept.")] = None,
    k: Annotated[int, typer.Option("-k", help="How many pairs (≥ 1).", min=1)] = 20,
    lowest: Annotated[bool, typer.Option(help="Lowest instead of highest.")] = False,
    min_count: Annotated[int, typer.Option(help="Only pairs seen together ≥ N times (≥ 1).", min=1)] = 1,
    by: Annotated[str, typer.Option(help="pmi | npmi | count")] = "pmi",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """The highest- (or lowest-) PMI concept pairs, overall or for one concept."""
    stats = _load(stats_dir)
    if concept is not None:
        _check_concept(stats, concept)
    pairs = stats.top_pairs(concept=concept, k=k, lowest=lowest, min_count=min_count, by=by)
    if as_json:
        for p in pairs:
            print(json.dumps(p.__dict__))
        return
    what = f"{'lowest' if lowest else 'highest'} {by} pairs" + (f" with {concept!r}" if concept else "")
    _print_pairs(pairs, what)


@stats_app.command("score")
def stats_score(
    stats_dir: Annotated[str, typer.Argument(help="ConceptStats directory.")],
    text: Annotated[str, typer.Argument(help="A caption.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A caption's concepts and the mean/min/max PMI over its concept pairs (unseen pairs listed)."""
    s = _load(stats_dir).score(text)
    if as_json:
        print(json.dumps(s.as_dict()))
        return
    console.print(f"concepts: {', '.join(s.concepts) or '(none)'}")
    if s.pairs:
        _print_pairs(s.pairs, "pairs")
    console.print(f"mean PMI {s.mean_pmi:.3f}   min {s.min_pmi:.3f}   max {s.max_pmi:.3f}   "
                  f"unseen pairs: {len(s.unseen)}" + (f" ({', '.join('+'.join(u) for u in s.unseen[:10])})"
                                                     if s.unseen else ""))


@stats_app.command("info")
def stats_info(
    stats_dir: Annotated[str, typer.Argument(help="ConceptStats directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What a ConceptStats directory holds and how it was built."""
    info = _load(stats_dir).info()
    if as_json:
        print(json.dumps(info, indent=2))
        return
    t = Table(show_header=False, title=stats_dir, title_justify="left")
    for key in ("n_captions", "n_concepts", "n_pairs"):
        t.add_row(key, f"{info[key]:,}")
    for key, value in info.get("settings", {}).items():
        if value is not None:
            t.add_row(key, str(value))
    t.add_row("tally", json.dumps(info.get("tally", {})))
    t.add_row("inputs", "\n".join(f["path"] for f in info.get("inputs", [])[:5]))
    if info.get("skipped"):
        t.add_row("skipped", "\n".join(f"{s['file']}: {s['reason']}" for s in info["skipped"][:5]))
    t.add_row("versions", ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items()))
    console.print(t)


@stats_app.command("knobs")
def stats_knobs(
    inputs: Annotated[list[str], typer.Argument(help="Caption files, directories or globs (any format `stats "
                                                     "build` reads), or one COCO captions JSON with --instances.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory (captions.parquet, knobs.json, "
                                                         "knobs.md).")] = "runs/knobs",
    instances: Annotated[str | None, typer.Option(help="COCO instances JSON of the captions' images: completeness, "
                                                       "saliency and word order need object annotations.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Text column name or 0-based index.")] = None,
    workers: Annotated[int, typer.Option(help="spaCy parser processes (≥ 1).", min=1)] = 1,
    force: Annotated[bool, typer.Option(help="Overwrite a different run in OUT.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar.")] = False,
) -> None:
    """Where a caption corpus sits on the binding lab's knobs: attribute density, completeness, saliency bias,
    word order. → analysis.caption_knobs.measure_knobs"""
    from clipcomp.analysis.caption_knobs import knobs_table, measure_knobs

    s = measure_knobs(list(inputs), out, instances, text_column, workers, force, not quiet)
    print(knobs_table({os.path.basename(inputs[0]): s}))
    print(f"{out}/captions.parquet (one row per caption), knobs.json, knobs.md")

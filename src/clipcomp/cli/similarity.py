"""`clipcomp similarity`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import DaskWorkersOpt, EngineOpt, ForceOpt, SchedulerOpt, engine_options

console = Console()


similarity_app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="Train–test similarity: nearest neighbours, pruning, deduplication.",
    no_args_is_help=True)


@similarity_app.command("knn")
def knn_cmd(
    queries: Annotated[str, typer.Argument(help="Query embedding directory.")],
    base: Annotated[str, typer.Argument(help="Base embedding directory.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    k: Annotated[int, typer.Option("-k", help="Neighbours per query (≥ 1).", min=1)] = 10,
    exact: Annotated[bool, typer.Option("--exact", help="Exact search (the default).")] = False,
    index: Annotated[str | None, typer.Option(help="ivf | hnsw: approximate (recall@k measured and reported).")]
    = None,
    nlist: Annotated[int | None, typer.Option(help="IVF lists (default 4·√n).", min=1)] = None,
    nprobe: Annotated[int, typer.Option(help="IVF lists probed / HNSW search breadth (≥ 1).", min=1)] = 16,
    seed: Annotated[int, typer.Option(help="Seed (IVF training sample, recall sample).")] = 0,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    workers: DaskWorkersOpt = 2,
    force: ForceOpt = False,
) -> None:
    """k nearest base vectors per query → neighbors.parquet (query_id, rank, base_id, similarity).
    → similarity.knn.knn"""
    from clipcomp.errors import ClipcompError
    from clipcomp.similarity.knn import knn

    if exact and index:
        raise ClipcompError("give --exact or --index, not both")
    info = knn(queries, base, out, k, index, nlist, nprobe, seed=seed, force=force,
               engine=engine_options(engine, scheduler, workers))
    console.print(f"{out}/neighbors.parquet: {info['n_queries']:,} queries × {k} ({info['mode']}"
                  + (f", recall@{k} {info['recall_at_k']:.3f} on {info['recall_sample']} queries" if index else "")
                  + ")")
    _normalized_note(info["normalized_on_read"])


def _normalized_note(names) -> None:
    if names:
        what = names if isinstance(names, str) else ", ".join(names)
        console.print(f"note: {what}: vectors not unit-length; L2-normalized on read (similarities are cosines)")


@similarity_app.command("analyze")
def analyze_cmd(
    results: Annotated[str, typer.Argument(help="Per-item results (an eval run folder or a table).")],
    test: Annotated[str, typer.Option(help="Embeddings of the test items (ids = the results' id column).")],
    train: Annotated[str, typer.Option(help="Embeddings of the training set.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    id_column: Annotated[str, typer.Option(help="Results column holding the test ids.")] = "path",
    correct_column: Annotated[str, typer.Option(help="0/1 column.")] = "correct",
    bins: Annotated[int, typer.Option(help="Equal-count bins (≥ 1).", min=1)] = 10,
    boot: Annotated[int, typer.Option(help="Bootstrap resamples (≥ 0).", min=0)] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Accuracy vs nearest-train similarity: r with CIs, bins, plot. → similarity.analysis.accuracy_vs_similarity"""
    from clipcomp.analysis.similarity import accuracy_vs_similarity

    res = accuracy_vs_similarity(results, test, train, out, id_column, correct_column, bins, boot=boot, seed=seed,
                                 force=force)
    console.print(f"{out}/report.md: {res.n_used:,} items, accuracy {res.accuracy:.3f}, r {res.pearson:.3f} "
                  f"[{res.pearson_ci[0]:.3f}, {res.pearson_ci[1]:.3f}]")


@similarity_app.command("prune")
def prune_cmd(
    base: Annotated[str, typer.Argument(help="Training-set embeddings to prune.")],
    tests: Annotated[list[str], typer.Option("--test", help="Test-set embeddings (repeatable).")],
    reference: Annotated[str, typer.Option(help="Reference-set embeddings (the thresholds' source).")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    method: Annotated[str, typer.Option(help="aligned | near | far | random (controls remove as many as aligned).")]
    = "aligned",
    labels: Annotated[str | None, typer.Option(help="Table with id + label for per-class counts.")] = None,
    label_column: Annotated[str, typer.Option(help="Label column of --labels.")] = "label",
    seed: Annotated[int, typer.Option(help="Seed of the random control.")] = 0,
    tolerance: Annotated[float, typer.Option(help="Cosine margin beyond τ before an item counts as more similar "
                                                  "(float32 round-off).", min=0.0, max=0.999)] = 1e-6,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    workers: DaskWorkersOpt = 2,
    force: ForceOpt = False,
) -> None:
    """Similarity-aligned pruning and its equal-size controls → kept/removed.parquet + report.json.
    → similarity.prune.prune"""
    from clipcomp.similarity.prune import prune

    rep = prune(base, tests, reference, out, method, seed, labels, label_column, force=force, tol=tolerance,
                engine=engine_options(engine, scheduler, workers))
    console.print(f"{out}: removed {rep['n_removed']:,} of {rep['n_base']:,} ({method}); aligned pruning removes "
                  f"{rep['n_removed_aligned']:,}")
    _normalized_note(rep["normalized_on_read"])


@similarity_app.command("dedup")
def dedup_cmd(
    emb: Annotated[str, typer.Argument(help="Embedding directory.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    clusters: Annotated[int, typer.Option(help="k-means clusters (≥ 1).", min=1)] = 100,
    threshold: Annotated[float, typer.Option(help="Cosine above which items are duplicates.", min=-1.0, max=1.0)]
    = 0.876,
    seed: Annotated[int, typer.Option(help="k-means seed.")] = 0,
    order: Annotated[str, typer.Option(help="dataset (clip-ood: an item is compared with the earlier items of its "
                                            "cluster) | centroid (least prototypical first)")] = "dataset",
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    workers: DaskWorkersOpt = 2,
    force: ForceOpt = False,
) -> None:
    """SemDeDup: near-duplicates within k-means clusters → kept/removed.parquet. → similarity.prune.dedup"""
    from clipcomp.similarity.prune import dedup

    rep = dedup(emb, out, clusters, threshold, seed, force, order=order,
                engine=engine_options(engine, scheduler, workers), progress=True)
    console.print(f"{out}: kept {rep['n_kept']:,} of {rep['n']:,} (threshold {threshold})")
    _normalized_note(emb if rep["normalized_on_read"] else [])

"""`clipcomp embed`, `clipcomp similarity knn|nearest|prune|dedup`, `clipcomp domains fit|apply`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

similarity_app = typer.Typer(help="Train–test similarity: nearest neighbours, pruning, deduplication.",
                             no_args_is_help=True)
domains_app = typer.Typer(help="Domain contamination: a calibrated natural-vs-rendition classifier.",
                          no_args_is_help=True)
console = Console()
ForceOpt = Annotated[bool, typer.Option(help="Replace other results in OUT.")]


def embed_cmd(
    inp: Annotated[str, typer.Argument(help="Image folder, manifest, COCO captions JSON or .tar shards.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Embedding directory.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="open_clip architecture.")] = "clipcomp-tiny",
    pretrained: Annotated[str | None, typer.Option(help="Tag, checkpoint or model dir.")] = None,
    modality: Annotated[str, typer.Option(help="image|text")] = "image",
    images: Annotated[str | None, typer.Option(help="Image root for COCO JSON / relative manifest paths.")] = None,
    image_column: Annotated[str | None, typer.Option(help="Manifest image column.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Manifest text column.")] = None,
    shard_size: Annotated[int, typer.Option(help="Rows per output shard (≥ 1).", min=1)] = 8192,
    dtype: Annotated[str, typer.Option(help="float16|float32")] = "float16",
    batch_size: Annotated[int, typer.Option(help="Batch size (≥ 1).", min=1)] = 64,
    shard_range: Annotated[str, typer.Option(help="i/n: this process writes shards i, i+n, ... (several "
                                                  "processes or GPUs).")] = "0/1",
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|cuda:N")] = "auto",
    force: ForceOpt = False,
) -> None:
    """Embeddings to sharded Parquet (id, embedding) + meta.json. → similarity.embeddings.embed_to_files"""
    from clipcomp.errors import ClipcompError
    from clipcomp.similarity.embeddings import embed_to_files

    try:
        i, n = (int(v) for v in shard_range.split("/"))
    except ValueError:
        raise ClipcompError(f"--shard-range {shard_range!r}: expected i/n, e.g. 0/4") from None
    meta = embed_to_files(inp, out, model, pretrained, modality, images, image_column, text_column, shard_size,
                          dtype, batch_size, device, shard_range=(i, n), force=force)
    console.print(f"{out}: {meta['n_items']:,} {modality} embeddings ({meta['dim']}-d {dtype}) in "
                  f"{meta['n_shards']} shard(s)")


@similarity_app.command("knn")
def knn_cmd(
    queries: Annotated[str, typer.Argument(help="Query embedding directory.")],
    base: Annotated[str, typer.Argument(help="Base embedding directory.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    k: Annotated[int, typer.Option("-k", help="Neighbours per query (≥ 1).", min=1)] = 10,
    exact: Annotated[bool, typer.Option("--exact", help="Exact search (the default).")] = False,
    index: Annotated[str | None, typer.Option(help="ivf|hnsw: approximate (recall@k measured and reported).")]
    = None,
    nlist: Annotated[int | None, typer.Option(help="IVF lists (default 4·√n).", min=1)] = None,
    nprobe: Annotated[int, typer.Option(help="IVF lists probed / HNSW search breadth (≥ 1).", min=1)] = 16,
    seed: Annotated[int, typer.Option(help="Seed (IVF training sample, recall sample).")] = 0,
    force: ForceOpt = False,
) -> None:
    """k nearest base vectors per query → neighbors.parquet (query_id, rank, base_id, similarity).
    → similarity.knn.knn"""
    from clipcomp.errors import ClipcompError
    from clipcomp.similarity.knn import knn

    if exact and index:
        raise ClipcompError("give --exact or --index, not both")
    info = knn(queries, base, out, k, index, nlist, nprobe, seed=seed, force=force)
    console.print(f"{out}/neighbors.parquet: {info['n_queries']:,} queries × {k} ({info['mode']}"
                  + (f", recall@{k} {info['recall_at_k']:.3f} on {info['recall_sample']} queries" if index else "")
                  + ")")


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
    from clipcomp.similarity.analysis import accuracy_vs_similarity

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
    method: Annotated[str, typer.Option(help="aligned|near|far|random (controls remove as many as aligned).")]
    = "aligned",
    labels: Annotated[str | None, typer.Option(help="Table with id + label for per-class counts.")] = None,
    label_column: Annotated[str, typer.Option(help="Label column of --labels.")] = "label",
    seed: Annotated[int, typer.Option(help="Seed of the random control.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Similarity-aligned pruning and its equal-size controls → kept/removed.parquet + report.json.
    → similarity.prune.prune"""
    from clipcomp.similarity.prune import prune

    rep = prune(base, tests, reference, out, method, seed, labels, label_column, force=force)
    console.print(f"{out}: removed {rep['n_removed']:,} of {rep['n_base']:,} ({method}); aligned pruning removes "
                  f"{rep['n_removed_aligned']:,}")


@similarity_app.command("dedup")
def dedup_cmd(
    emb: Annotated[str, typer.Argument(help="Embedding directory.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory.")],
    clusters: Annotated[int, typer.Option(help="k-means clusters (≥ 1).", min=1)] = 100,
    threshold: Annotated[float, typer.Option(help="Cosine above which items are duplicates.", min=-1.0, max=1.0)]
    = 0.876,
    seed: Annotated[int, typer.Option(help="k-means seed.")] = 0,
    force: ForceOpt = False,
) -> None:
    """SemDeDup: near-duplicates within k-means clusters → kept/removed.parquet. → similarity.prune.dedup"""
    from clipcomp.similarity.prune import dedup

    rep = dedup(emb, out, clusters, threshold, seed, force)
    console.print(f"{out}: kept {rep['n_kept']:,} of {rep['n']:,} (threshold {threshold})")


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

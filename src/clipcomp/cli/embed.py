"""`clipcomp embed`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from clipcomp.cli.options import DaskWorkersOpt, EngineOpt, ForceOpt, SchedulerOpt, engine_options

console = Console()


def embed_cmd(
    inp: Annotated[str, typer.Argument(help="Image folder, manifest, COCO captions JSON or .tar shards.")],
    out: Annotated[str, typer.Option("-o", "--out", help="Embedding directory.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="open_clip architecture.")] = "clipcomp-tiny",
    pretrained: Annotated[str | None, typer.Option(help="Tag, checkpoint or model dir.")] = None,
    modality: Annotated[str, typer.Option(help="image | text")] = "image",
    images: Annotated[str | None, typer.Option(help="Image root for COCO JSON / relative manifest paths.")] = None,
    image_column: Annotated[str | None, typer.Option(help="Manifest image column.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Manifest text column.")] = None,
    shard_size: Annotated[int, typer.Option(help="Rows per output shard (≥ 1).", min=1)] = 8192,
    dtype: Annotated[str, typer.Option(help="float16 | float32")] = "float16",
    batch_size: Annotated[int, typer.Option(help="Batch size (≥ 1).", min=1)] = 64,
    shard_range: Annotated[str, typer.Option(help="i/n: this process writes shards i, i+n, ... (several "
                                                  "processes or GPUs).")] = "0/1",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    workers: DaskWorkersOpt = 2,
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
                          dtype, batch_size, device, shard_range=(i, n), force=force,
                          engine=engine_options(engine, scheduler, workers))
    console.print(f"{out}: {meta['n_items']:,} {modality} embeddings ({meta['dim']}-d {dtype}) in "
                  f"{meta['n_shards']} shard(s)")

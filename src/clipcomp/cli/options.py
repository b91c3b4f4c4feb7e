"""Options and small parsers shared by several command groups."""

from __future__ import annotations

from typing import Annotated

import typer

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="open_clip architecture (see `clipcomp models`).")]
PretrainedOpt = Annotated[str | None, typer.Option(help="Pretrained tag, checkpoint file or model directory.")]
DeviceOpt = Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")]
PrecisionOpt = Annotated[str, typer.Option(help="auto | fp32 | amp | amp_bf16 | fp16 | bf16")]
BatchOpt = Annotated[int, typer.Option(help="Batch size (≥ 1).", min=1)]
LoaderOpt = Annotated[int | None, typer.Option("--loader-workers", help="DataLoader worker processes (≥ 0).", min=0)]
CacheOpt = Annotated[str, typer.Option(help="Embedding cache directory ('none' to disable).")]
OutOpt = Annotated[str, typer.Option("-o", "--out", help="Output directory (items.parquet + summary.json).")]
SkipOpt = Annotated[bool, typer.Option(help="Record and skip missing or undecodable images.")]
SeedOpt = Annotated[int, typer.Option(help="Seed for random initialization (no --pretrained).")]
ForceOpt = Annotated[bool, typer.Option(help="Replace results of another run in OUT.")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars.")]
EngineOpt = Annotated[str, typer.Option(help="local | dask: where the tasks run (the same output files either way).")]
SchedulerOpt = Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786 (with --engine "
                                                       "dask; default: a LocalCluster on this machine).")]
DaskWorkersOpt = Annotated[int, typer.Option("--workers", help="LocalCluster worker processes, one thread each "
                                                               "(--engine dask without --scheduler; ≥ 1).", min=1)]
OverridesArg = Annotated[list[str] | None, typer.Argument(help="Config overrides KEY.SUB=VALUE (YAML values), "
                                                                "e.g. train.steps=20 sweep.seeds=[0,1].")]


def csv_list(value: str | None) -> list[str] | None:
    """'a, b,c' → ['a', 'b', 'c'] (None stays None)."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def engine_options(engine: str, scheduler: str | None, workers: int):
    """The EngineOptions of a command's --engine / --scheduler / --workers."""
    from clipcomp.procs import EngineOptions

    opts = EngineOptions(engine, scheduler, workers)
    opts.validate()
    return opts

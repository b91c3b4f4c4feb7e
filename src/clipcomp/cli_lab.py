"""`clipcomp synth generate`, `clipcomp train`, `clipcomp eval binding`, `clipcomp lab sweep`."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

synth_app = typer.Typer(help="Synthetic worlds: scenes of coloured shapes with caption knobs.", no_args_is_help=True)
lab_app = typer.Typer(help="Experiments: sweeps over data knobs.", no_args_is_help=True)
console = Console()


@synth_app.command("generate")
def synth_generate(
    config: Annotated[str, typer.Argument(help="YAML/TOML with sections world, captions, dataset.")],
    out: Annotated[str | None, typer.Option("-o", "--out", help="Override dataset.out.")] = None,
    workers: Annotated[int | None, typer.Option(help="Override dataset.workers.")] = None,
    n_train: Annotated[int | None, typer.Option(help="Override dataset.n_train.")] = None,
    n_test: Annotated[int | None, typer.Option(help="Override dataset.n_test.")] = None,
) -> None:
    """Render scenes and captions into image shards + manifest.parquet + meta.json."""
    from clipcomp.lab import load_sections, parse
    from clipcomp.synth.dataset import generate

    raw = load_sections(config)
    for key, value in (("out", out), ("workers", workers), ("n_train", n_train), ("n_test", n_test)):
        if value is not None:
            raw.setdefault("dataset", {})[key] = value
    s = parse(raw, config)
    meta = generate(s["world"], s["captions"], s["dataset"])
    console.print(f"{s['dataset'].out}: {meta['n_train']:,} train + {meta['n_test']:,} test scenes in "
                  f"{meta['n_shards']} shards ({meta.get('images_per_second') or 0:,.0f} images/s)")


def train_cmd(
    config: Annotated[str, typer.Argument(help="YAML/TOML with a 'train' section (other sections ignored).")],
    data: Annotated[str | None, typer.Option(help="Override train.data.")] = None,
    out: Annotated[str | None, typer.Option("-o", "--out", help="Override train.out.")] = None,
    steps: Annotated[int | None, typer.Option(help="Override train.steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Override train.batch_size.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override train.seed.")] = None,
    pretrained: Annotated[str | None, typer.Option(help="Fine-tune from a tag, checkpoint or model dir.")] = None,
) -> None:
    """Contrastive training (resumes from OUT/checkpoint.pt); under torchrun, DistributedDataParallel."""
    from clipcomp.lab import load_sections, parse
    from clipcomp.train.trainer import train

    raw = load_sections(config)
    for key, value in (("data", data), ("out", out), ("steps", steps), ("batch_size", batch_size), ("seed", seed),
                       ("pretrained", pretrained)):
        if value is not None:
            raw.setdefault("train", {})[key] = value
    cfg = parse(raw, config)["train"]
    res = train(cfg)
    if int(os.environ.get("RANK", 0)) == 0:
        last = res["last"]
        console.print(f"{cfg.out}: step {res['steps_done']}/{cfg.steps} (resumed from {res['resumed_from']}), "
                      f"loss {last.get('loss', float('nan')):.4f}, {res['images_per_s'] or 0:,.0f} images/s; "
                      f"weights: {os.path.join(cfg.out, 'final.pt')}")


@lab_app.command("sweep")
def lab_sweep(config: Annotated[str, typer.Argument(help="YAML/TOML with world/captions/dataset/train + sweep.")],
              quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars.")] = False) -> None:
    """Run a knob grid (or named cells) × seeds with the same step budget; results table + plot."""
    from clipcomp.lab import sweep

    res = sweep(config, progress=not quiet)
    console.print(res["table"])

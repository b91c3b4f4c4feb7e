"""`clipcomp train`."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clipcomp.cli.options import OverridesArg

console = Console()


def _field_map(values: list[str] | None) -> dict[str, str]:
    from clipcomp.errors import ClipcompError

    out = {}
    for v in values or []:
        name, sep, col = v.partition("=")
        if not sep or not name.strip() or not col.strip():
            raise ClipcompError(f"--field {v!r}: expected FIELD=COLUMN (e.g. hard_negatives=neg_caption)")
        out[name.strip()] = col.strip()
    return out


def _loss_options(values: list[str]) -> dict[str, float]:
    from clipcomp.errors import ClipcompError

    out = {}
    for v in values:
        name, sep, num = v.partition("=")
        try:
            out[name.strip()] = float(num)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ClipcompError(f"--loss-option {v!r}: expected KEY=NUMBER (e.g. margin=0.1)")
    return out


def _eval_specs(values: list[str] | None) -> list[tuple[str, str]]:
    from clipcomp.errors import ClipcompError
    from clipcomp.tasks.registry import get_suite

    out = []
    for v in values or []:
        task, sep, path = v.partition("=")
        if not sep or not path:
            raise ClipcompError(f"--eval {v!r}: expected NAME=PATH with NAME a registered task or suite")
        get_suite(task)  # an unknown name is one line listing the registered ones
        out.append((task, path))
    return out


def train_cmd(
    config: Annotated[str | None, typer.Argument(help="Optional YAML/TOML with a 'train' section; flags override it.")]
    = None,
    overrides: OverridesArg = None,
    data: Annotated[str | None, typer.Option(help="Training data: synthetic dataset dir, COCO captions JSON, "
                                                  "CSV/TSV/Parquet manifest, or .tar shards (brace/glob/dir).")] = None,
    data_format: Annotated[str | None, typer.Option(help="auto | synthetic | coco | manifest | webdataset")] = None,
    images: Annotated[str | None, typer.Option(help="Image folder for COCO JSON / relative manifest paths.")] = None,
    image_column: Annotated[str | None, typer.Option(help="Manifest column with image paths.")] = None,
    caption_column: Annotated[str | None, typer.Option(help="Manifest column with captions.")] = None,
    field: Annotated[list[str] | None, typer.Option("--field", help="Batch field from a column: FIELD=COLUMN "
                                                    "(repeatable), e.g. hard_negatives=neg.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="open_clip architecture.")] = None,
    pretrained: Annotated[str | None, typer.Option(help="Fine-tune from a tag, checkpoint or model dir.")] = None,
    out: Annotated[str | None, typer.Option("-o", "--out", help="Output directory.")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (≥ 1).", min=1)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Global batch size (≥ 1).", min=1)] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (> 0).", min=0.0)] = None,
    warmup: Annotated[int | None, typer.Option(help="Linear warm-up steps (0..steps).", min=0)] = None,
    weight_decay: Annotated[float | None, typer.Option(help="AdamW weight decay (≥ 0).", min=0.0)] = None,
    loss: Annotated[str | None, typer.Option(help="Registered loss (infonce, negclip, ceclip, cement, ...).")]
    = None,
    loss_option: Annotated[list[str] | None, typer.Option("--loss-option", help="Loss option KEY=NUMBER "
                                                          "(repeatable), e.g. margin=0.1.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of initialization and batches.")] = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment", help="Training augmentation "
                                                 "(open_clip's random resized crop).")] = None,
    freeze: Annotated[str | None, typer.Option(help="none | image | text: lock a tower while fine-tuning.")] = None,
    wise_ft: Annotated[float | None, typer.Option(help="WiSE-FT: final = (1-A)·start + A·fine-tuned, A in [0, 1].",
                                                  min=0.0, max=1.0)] = None,
    workers: Annotated[int | None, typer.Option(help="DataLoader workers decoding images (≥ 0).", min=0)] = None,
    skip_bad: Annotated[bool | None, typer.Option("--skip-bad/--no-skip-bad", help="Skip corrupt images/shards "
                                                  "and count them in run.json.")] = None,
    precision: Annotated[str | None, typer.Option(help="auto | fp32 | amp | amp_bf16")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="Steps between checkpoints (≥ 1).", min=1)] = None,
    log_every: Annotated[int | None, typer.Option(help="Steps between metric lines (≥ 1).", min=1)] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (≥ 1).", min=1)] = None,
    evals: Annotated[list[str] | None, typer.Option("--eval", help="Evaluate before and after: NAME=PATH "
                                                    "(a registered task or suite: zeroshot, retrieval, select, "
                                                    "binding, sugarcrepe, ...; repeatable).")] = None,
    eval_images: Annotated[str | None, typer.Option(help="Image folder for --eval data that needs one.")] = None,
    report_to: Annotated[list[str] | None, typer.Option("--report-to", help="Also log scalars to tensorboard "
                                                        "and/or wandb (repeatable or comma-separated; W&B offline "
                                                        "without WANDB_API_KEY); metrics.jsonl is always written.")]
    = None,
    force: Annotated[bool, typer.Option(help="Replace a run with other settings in OUT.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar.")] = False,
) -> None:
    """Contrastive training or fine-tuning on real or synthetic data (resumes from OUT/checkpoint.pt); under
    torchrun, DistributedDataParallel. → train.train / train.finetune"""
    from clipcomp.pipelines.lab import load_sections
    from clipcomp.train.finetune import finetune
    from clipcomp.train.trainer import load_train_config

    overrides = list(overrides or [])
    if config and "=" in config and not os.path.exists(config):  # no config file, only KEY=VALUE overrides
        config, overrides = None, [config, *overrides]
    if config:
        load_sections(config)  # unknown sections are one line naming the file
    given = {"data": data, "data_format": data_format, "images": images, "image_column": image_column,
             "caption_column": caption_column, "model": model, "pretrained": pretrained, "out": out,
             "steps": steps, "batch_size": batch_size, "lr": lr, "warmup": warmup, "weight_decay": weight_decay,
             "loss": loss, "seed": seed, "augment": augment, "freeze": freeze, "wise_ft": wise_ft,
             "workers": workers, "skip_bad": skip_bad, "precision": precision, "device": device,
             "checkpoint_every": checkpoint_every, "log_every": log_every, "threads": threads,
             "fields": _field_map(field) if field else None,
             "loss_options": _loss_options(loss_option) if loss_option else None,
             "report_to": [n.strip() for v in report_to for n in v.split(",") if n.strip()] if report_to else None}
    cfg = load_train_config(config, overrides, require=("data",), **given)
    if cfg.data_format == "auto":  # a missing local path fails now, before torch and open_clip are imported
        from clipcomp.datasets.formats import detect_format

        detect_format(cfg.data, "training data")
    res = finetune(cfg, _eval_specs(evals), eval_images=eval_images, progress=not quiet, force=force)
    if int(os.environ.get("RANK", 0)) == 0:
        last = res["train"]["last"]
        console.print(f"{cfg.out}: step {res['train']['steps_done']}/{cfg.steps} (resumed from "
                      f"{res['train']['resumed_from']}), loss {last.get('loss', float('nan')):.4f}, "
                      f"{res['train']['images_per_s'] or 0:,.0f} images/s; weights: {os.path.join(cfg.out, 'final.pt')}"
                      + (f"; {res['train']['n_skipped']} bad items skipped" if res['train']['n_skipped'] else ""))
        if res["evals"]:
            t = Table(title="before → after", title_justify="left")
            for col in ("task", "metric", "before", "after"):
                t.add_column(col)
            for row in res["evals"]:
                t.add_row(row["task"], row["metric"], f"{row['before']:.4f}", f"{row['after']:.4f}")
            console.print(t)

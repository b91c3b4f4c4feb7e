"""The trainer: AdamW + cosine schedule with warm-up, mixed precision on GPU, checkpoints with exact resume,
seeded batches, JSONL metrics and a progress bar; DistributedDataParallel under torchrun.

Determinism: the batch of step s is a function of (seed, s) alone (per-epoch permutations), and the model is
initialized from the seed, so a run stopped and resumed from its checkpoint ends with the same weights as an
uninterrupted run on the same hardware.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from clipcomp.errors import ClipcompError

# Settings that do not change what is computed: they may differ when a run resumes.
RUNTIME_KEYS = ("steps", "checkpoint_every", "log_every", "workers", "threads", "out", "device", "skip_bad")


@dataclass
class TrainConfig:
    data: str = "runs/synth"
    out: str = "runs/train"
    model: str = "clipcomp-tiny"
    pretrained: str | None = None
    steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 100
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    seed: int = 0
    loss: str = "infonce"
    loss_options: dict = field(default_factory=dict)
    hard_negatives: bool = False  # kept for old configs: the loss declares its hard-negative field itself
    precision: str = "auto"
    device: str = "auto"
    checkpoint_every: int = 500
    log_every: int = 10
    threads: int | None = None
    # data source (see clipcomp.train.data)
    data_format: str = "auto"
    images: str | None = None
    image_column: str | None = None
    caption_column: str | None = None
    fields: dict = field(default_factory=dict)  # batch field -> source column, e.g. {hard_negatives: neg}
    augment: bool = False
    skip_bad: bool = False
    shuffle_buffer: int = 1000
    workers: int | None = None  # DataLoader workers (None: 0 for synthetic data, 2 for image files)
    # fine-tuning
    freeze: str = "none"  # none | image | text
    wise_ft: float | None = None  # interpolate the final weights with the starting model: (1-a)·start + a·end

    def validate(self, where: str = "train") -> None:
        from clipcomp.train.data import FORMATS
        from clipcomp.train.losses import get_loss_class

        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ClipcompError(f"{where}.{name} must be ≥ 1")
        if self.warmup < 0 or self.warmup > self.steps:
            raise ClipcompError(f"{where}.warmup must be in [0, steps]")
        if not self.lr > 0:
            raise ClipcompError(f"{where}.lr must be > 0")
        if self.weight_decay < 0:
            raise ClipcompError(f"{where}.weight_decay must be ≥ 0")
        if self.workers is not None and self.workers < 0:
            raise ClipcompError(f"{where}.workers must be ≥ 0")
        if self.threads is not None and self.threads < 1:
            raise ClipcompError(f"{where}.threads must be ≥ 1")
        if self.shuffle_buffer < 0:
            raise ClipcompError(f"{where}.shuffle_buffer must be ≥ 0")
        if self.data_format not in FORMATS:
            raise ClipcompError(f"{where}.data_format: {self.data_format!r} is not one of {', '.join(FORMATS)}")
        if self.freeze not in ("none", "image", "text"):
            raise ClipcompError(f"{where}.freeze: {self.freeze!r} is not one of none, image, text")
        if self.wise_ft is not None and not 0.0 <= self.wise_ft <= 1.0:
            raise ClipcompError(f"{where}.wise_ft must be in [0, 1]")
        try:
            cls = get_loss_class(self.loss)
        except ClipcompError as exc:
            raise ClipcompError(f"{where}.loss: {exc}") from None
        if self.hard_negatives and "hard_negatives" not in cls.text_fields:
            raise ClipcompError(f"{where}: hard_negatives needs a loss that uses them (e.g. negclip)")

    def resume_settings(self) -> dict:
        """What must match for a run in the same output directory to be resumed."""
        return {k: v for k, v in asdict(self).items() if k not in RUNTIME_KEYS}


def cosine_lr(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * progress))




def _param_groups(model, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def _dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _forward(ddp, images, texts):
    out = ddp(images, texts)
    if isinstance(out, dict):
        return out["image_features"], out["text_features"], out["logit_scale"]
    return out[0], out[1], out[2]


def _freeze(model, which: str) -> None:
    """Lock one tower (open_clip's own lock functions): its parameters get no gradient and no update."""
    if which == "image":
        model.lock_image_tower(unlocked_groups=0, freeze_bn_stats=False)
    elif which == "text":
        model.lock_text_tower(unlocked_layers=0, freeze_layer_norm=True)


def _wise_ft(start_state: dict, end_state: dict, alpha: float) -> dict:
    """WiSE-FT (Wortsman et al., 2022): per-tensor (1 - alpha)·start + alpha·end for float tensors."""
    out = {}
    for k, v in end_state.items():
        s = start_state[k]
        out[k] = ((1 - alpha) * s.to(v.dtype) + alpha * v) if v.is_floating_point() else v
    return out


def train(cfg: TrainConfig, progress: bool = True, stop_after: int | None = None, force: bool = False) -> dict:
    """Train or fine-tune (resuming from OUT/checkpoint.pt when the settings match) and return a summary.

    `stop_after` stops early after that step (tests, chunked runs); `force` replaces a run with other settings.
    """
    import torch

    from clipcomp.io import atomic_write_json, prepare_output
    from clipcomp.models import load_model
    from clipcomp.progress import progress_bar
    from clipcomp.train.data import DataSpec, detect_format, open_train_data
    from clipcomp.train.losses import get_loss_class, make_loss

    cfg.validate()
    rank, world, local_rank = _dist_env()
    if world > 1:
        import torch.distributed as dist

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend)
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    else:
        device = cfg.device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.batch_size % world:
        raise ClipcompError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    if rank == 0:
        prepare_output(cfg.out, "train", cfg.resume_settings(), force=force, markers=("checkpoint.pt", "final.pt"))
    if world > 1:
        torch.distributed.barrier()
    loss_cls = get_loss_class(cfg.loss)
    lm = load_model(cfg.model, cfg.pretrained, device=device, precision=cfg.precision, seed=cfg.seed)
    model = lm.model
    start_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()} if cfg.wise_ft is not None \
        else None
    _freeze(model, cfg.freeze)
    model.train()
    spec = DataSpec(cfg.data, cfg.data_format, cfg.images, cfg.image_column, cfg.caption_column, dict(cfg.fields),
                    cfg.augment, cfg.skip_bad, cfg.shuffle_buffer)
    fmt = detect_format(cfg.data) if cfg.data_format == "auto" else cfg.data_format
    workers = cfg.workers if cfg.workers is not None else (0 if fmt == "synthetic" else 2)
    data = open_train_data(spec, lm, loss_cls.text_fields, loss_cls.fields, cfg.batch_size, cfg.seed, rank, world,
                           workers)
    ckpt_path = os.path.join(cfg.out, "checkpoint.pt")
    loss_fn = make_loss(cfg.loss, rank, world, **cfg.loss_options).to(lm.device)
    groups = _param_groups(model, cfg.weight_decay)
    loss_params = [p for p in loss_fn.parameters() if p.requires_grad]
    if loss_params:  # a loss with its own parameters (e.g. a matching head) trains with the model
        groups.append({"params": loss_params, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    use_amp = lm.device.startswith("cuda") and lm.precision in ("amp", "amp_bf16")
    amp_dtype = torch.bfloat16 if lm.precision == "amp_bf16" or (use_amp and torch.cuda.is_bf16_supported()) \
        else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    start = 0
    run_path = os.path.join(cfg.out, "run.json")
    run_meta = {"skipped": [], "n_skipped": 0}
    if os.path.exists(ckpt_path):
        try:
            ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file
            raise ClipcompError(f"{ckpt_path}: unreadable checkpoint ({type(exc).__name__}); delete it or use "
                                "--force") from None
        model.load_state_dict(ck["state_dict"])
        if ck.get("loss_state"):
            loss_fn.load_state_dict(ck["loss_state"])
        opt.load_state_dict(ck["optimizer"])
        if ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        start = int(ck["step"])
        if os.path.exists(run_path):
            with open(run_path, encoding="utf-8") as f:
                old = json.load(f)
            run_meta["skipped"], run_meta["n_skipped"] = old.get("skipped", []), old.get("n_skipped", 0)
    ddp = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[local_rank] if device.startswith("cuda") else None)
    metrics_path = os.path.join(cfg.out, "metrics.jsonl")
    log = open(metrics_path, "a", encoding="utf-8") if rank == 0 else None  # noqa: SIM115 - closed in finally
    t_start = time.perf_counter()
    seen = 0
    last = {}
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    step = start
    run_meta.update({"data": cfg.data, "format": data.format, "n_items": data.n_items, "fields": data.fields,
                     "resume": data.resume, "loader_workers": workers, "world_size": world,
                     "loss": cfg.loss, "model": cfg.model, "pretrained": cfg.pretrained})

    def write_run(status: str) -> None:
        if rank == 0:
            el = time.perf_counter() - t_start
            atomic_write_json(run_path, {**run_meta, "status": status, "steps_done": step, "steps": cfg.steps,
                                         "resumed_from": start, "seconds": el,
                                         "images_per_s": seen / el if el > 0 else None})

    try:
        with progress_bar(end - start, "steps", enabled=progress and rank == 0, desc="train") as bar:
            loader = data.loader(start, end)
            for step, batch in zip(range(start, end), loader, strict=False):
                if "error" in batch:
                    raise ClipcompError(batch["error"])
                if batch["bad"]:
                    run_meta["n_skipped"] += len(batch["bad"])
                    run_meta["skipped"] = (run_meta["skipped"] + batch["bad"])[:100]
                for g in opt.param_groups:
                    g["lr"] = cosine_lr(step, cfg)
                images = batch["image"].to(lm.device, non_blocking=True)
                texts = [batch["text"]] + [batch[f] for f in loss_cls.text_fields]
                sizes = [len(t) for t in texts]
                extra = {f: batch[f].to(lm.device) for f in loss_cls.fields}
                loss_fn.log_step = rank == 0 and ((step + 1) % cfg.log_every == 0 or step + 1 == end)
                with torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
                    img_f, txt_all, scale = _forward(ddp, images, torch.cat(texts).to(lm.device, non_blocking=True))
                    parts = torch.split(txt_all, sizes)
                    for f, feats in zip(loss_cls.text_fields, parts[1:], strict=True):
                        extra[f"{f}_features"] = feats
                    loss = loss_fn(img_f, parts[0], scale, **extra)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                with torch.no_grad():
                    model.logit_scale.clamp_(0, math.log(100))
                seen += cfg.batch_size
                done = step + 1
                if rank == 0 and (done % cfg.log_every == 0 or done == end):
                    el = time.perf_counter() - t_start
                    last = {"step": done, "loss": float(loss.detach()), "lr": cosine_lr(step, cfg),
                            "logit_scale": float(model.logit_scale.detach().exp()), "images_per_s": seen / el,
                            "elapsed_s": el, **loss_fn.diagnostics()}
                    log.write(json.dumps(last) + "\n")
                    log.flush()
                    bar.set_postfix(loss=f"{last['loss']:.3f}")
                if rank == 0 and (done % cfg.checkpoint_every == 0 or done == end):
                    _save(ckpt_path, model, opt, scaler, done, cfg, loss_fn)
                step = done
                bar.update(1)
    except BaseException:
        write_run("interrupted")
        raise
    finally:
        if log:
            log.close()
    if step < end:
        raise ClipcompError(f"{cfg.data}: the data ran out after step {step}")
    if rank == 0 and end == cfg.steps:
        final = os.path.join(cfg.out, "final.pt")
        if start_state is not None:
            _save(os.path.join(cfg.out, "finetuned.pt"), model, None, None, cfg.steps, cfg)
            model.load_state_dict(_wise_ft(start_state, model.state_dict(), cfg.wise_ft))
        _save(final, model, None, None, cfg.steps, cfg)
    write_run("finished" if end == cfg.steps else "stopped")
    seconds = time.perf_counter() - t_start
    return {"out": cfg.out, "steps_done": end, "resumed_from": start, "seconds": seconds,
            "images_per_s": seen / seconds if seconds else None, "last": last, "n_skipped": run_meta["n_skipped"],
            "format": data.format}


def _save(path: str, model, opt, scaler, step: int, cfg: TrainConfig, loss_fn=None) -> None:
    import torch

    obj = {"step": step, "state_dict": model.state_dict(), "config": asdict(cfg), "model": cfg.model}
    if loss_fn is not None and any(True for _ in loss_fn.parameters()):
        obj["loss_state"] = loss_fn.state_dict()
    if opt is not None:
        obj["optimizer"] = opt.state_dict()
    if scaler is not None:
        obj["scaler"] = scaler.state_dict()
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)

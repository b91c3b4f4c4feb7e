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
from dataclasses import asdict, dataclass

import numpy as np

from clipcomp.errors import ClipcompError
from clipcomp.train.losses import LOSSES


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
    hard_negatives: bool = False
    precision: str = "auto"
    device: str = "auto"
    checkpoint_every: int = 500
    log_every: int = 10
    threads: int | None = None

    def validate(self, where: str = "train") -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ClipcompError(f"{where}.{name} must be ≥ 1")
        if self.warmup < 0 or self.warmup > self.steps:
            raise ClipcompError(f"{where}.warmup must be in [0, steps]")
        if not self.lr > 0:
            raise ClipcompError(f"{where}.lr must be > 0")
        if self.loss not in LOSSES:
            raise ClipcompError(f"{where}.loss: {self.loss!r} is not one of {', '.join(LOSSES)}")
        if self.hard_negatives and self.loss != "negclip":
            raise ClipcompError(f"{where}: hard_negatives needs loss: negclip")


def cosine_lr(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * progress))


def batch_indices(step: int, n: int, batch: int, seed: int) -> np.ndarray:
    """The rows of step `step`: consecutive slices of per-epoch seeded permutations."""
    start = step * batch
    out = []
    while len(out) < batch:
        epoch, offset = divmod(start + len(out), n)
        perm = np.random.default_rng([seed, 1_000_003, epoch]).permutation(n)
        out.extend(perm[offset:offset + batch - len(out)].tolist())
    return np.array(out, np.int64)


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


class ImageBatcher:
    """uint8 N×H×W×3 → normalized float tensors at the model's input size."""

    def __init__(self, model, device: str, dtype) -> None:
        import torch
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        visual = model.visual
        mean = getattr(visual, "image_mean", None) or OPENAI_DATASET_MEAN
        std = getattr(visual, "image_std", None) or OPENAI_DATASET_STD
        size = visual.image_size
        self.size = size[0] if isinstance(size, (tuple, list)) else size
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.device, self.dtype = device, dtype

    def __call__(self, images: np.ndarray):
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return ((x - self.mean) / self.std).to(self.dtype)


def _dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def train(cfg: TrainConfig, progress: bool = True, stop_after: int | None = None) -> dict:
    """Train (or resume) and return a summary; `stop_after` stops early after that step (tests, chunks)."""
    import torch

    from clipcomp.models import load_model
    from clipcomp.progress import progress_bar
    from clipcomp.synth.dataset import SynthDataset
    from clipcomp.train.losses import make_loss

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
    data = SynthDataset(cfg.data, "train")
    lm = load_model(cfg.model, cfg.pretrained, device=device, precision=cfg.precision, seed=cfg.seed)
    model = lm.model
    model.train()
    os.makedirs(cfg.out, exist_ok=True)
    ckpt_path = os.path.join(cfg.out, "checkpoint.pt")
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                            eps=cfg.eps)
    use_amp = lm.device.startswith("cuda") and lm.precision in ("amp", "amp_bf16")
    amp_dtype = torch.bfloat16 if lm.precision == "amp_bf16" or (use_amp and torch.cuda.is_bf16_supported()) \
        else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    start = 0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = {k: v for k, v in ck["config"].items() if k not in ("steps", "checkpoint_every", "log_every")}
        mine = {k: v for k, v in asdict(cfg).items() if k not in ("steps", "checkpoint_every", "log_every")}
        if saved != mine:
            diff = sorted(k for k in mine if saved.get(k) != mine[k])
            raise ClipcompError(f"{cfg.out}: holds a checkpoint of a different run (differs in: {', '.join(diff)}); "
                                "use another out")
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        if ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        start = int(ck["step"])
    ddp = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[local_rank] if device.startswith("cuda") else None)
    loss_fn = make_loss(cfg.loss, rank, world)
    batcher = ImageBatcher(model, lm.device, torch.float32)
    tok = lm.tokenizer
    metrics_path = os.path.join(cfg.out, "metrics.jsonl")
    log = open(metrics_path, "a", encoding="utf-8") if rank == 0 else None  # noqa: SIM115 - closed in finally
    local = cfg.batch_size // world
    t_start = time.perf_counter()
    seen = 0
    last = {}
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    try:
        with progress_bar(end - start, "steps", enabled=progress and rank == 0, desc="train") as bar:
            for step in range(start, end):
                rows = batch_indices(step, len(data), cfg.batch_size, cfg.seed)[rank * local:(rank + 1) * local]
                for g in opt.param_groups:
                    g["lr"] = cosine_lr(step, cfg)
                images = batcher(data.images(rows))
                texts = tok([data.captions[i] for i in rows]).to(lm.device)
                negs = tok([data.negatives[i] for i in rows]).to(lm.device) if cfg.hard_negatives else None
                with torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
                    if negs is not None:
                        all_text = torch.cat([texts, negs])
                        img_f, txt_f, scale = ddp(images, all_text)
                        txt_f, neg_f = txt_f[: len(rows)], txt_f[len(rows):]
                        loss = loss_fn(img_f, txt_f, scale, negative_features=neg_f)
                    else:
                        img_f, txt_f, scale = ddp(images, texts)
                        loss = loss_fn(img_f, txt_f, scale)
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
                            "elapsed_s": el}
                    log.write(json.dumps(last) + "\n")
                    log.flush()
                    bar.set_postfix(loss=f"{last['loss']:.3f}")
                if rank == 0 and (done % cfg.checkpoint_every == 0 or done == end):
                    _save(ckpt_path, model, opt, scaler, done, cfg)
                bar.update(1)
    finally:
        if log:
            log.close()
    if rank == 0 and end == cfg.steps:
        final = os.path.join(cfg.out, "final.pt")
        _save(final, model, None, None, cfg.steps, cfg)
    seconds = time.perf_counter() - t_start
    return {"out": cfg.out, "steps_done": end, "resumed_from": start, "seconds": seconds,
            "images_per_s": seen / seconds if seconds else None, "last": last}


def _save(path: str, model, opt, scaler, step: int, cfg: TrainConfig) -> None:
    import torch

    obj = {"step": step, "state_dict": model.state_dict(), "config": asdict(cfg), "model": cfg.model}
    if opt is not None:
        obj["optimizer"] = opt.state_dict()
    if scaler is not None:
        obj["scaler"] = scaler.state_dict()
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)

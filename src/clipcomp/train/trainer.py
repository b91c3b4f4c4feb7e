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
import sys
import time
from dataclasses import asdict, dataclass, field

from clipcomp.config import typed
from clipcomp.errors import ClipcompError

# Settings that do not change what is computed: they may differ when a run resumes.
DEFAULT_WARMUP = 100
RUNTIME_KEYS = ("steps", "checkpoint_every", "log_every", "workers", "threads", "out", "device", "skip_bad",
                "report_to")


@typed
class TrainConfig:
    data: str = "runs/synth"
    out: str = "runs/train"
    model: str = "clipcomp-tiny"
    pretrained: str | None = None
    steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int | None = None  # linear warm-up steps; None: min(DEFAULT_WARMUP, steps), settled on creation
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
    report_to: list[str] = field(default_factory=list)  # tensorboard | wandb, beside metrics.jsonl (reporting.py)

    def __post_init__(self) -> None:
        if self.warmup is None:  # a default that depends on another field lives here, not in a front end
            self.warmup = min(DEFAULT_WARMUP, self.steps)

    def validate(self, where: str = "train") -> None:
        from clipcomp.datasets.formats import TRAIN_FORMATS as FORMATS
        from clipcomp.train.loss_names import LOSS_MODULES

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
        from clipcomp.train.reporting import check_report_to

        check_report_to(list(self.report_to), f"{where}.report_to")
        if self.freeze not in ("none", "image", "text"):
            raise ClipcompError(f"{where}.freeze: {self.freeze!r} is not one of none, image, text")
        if self.wise_ft is not None and not 0.0 <= self.wise_ft <= 1.0:
            raise ClipcompError(f"{where}.wise_ft must be in [0, 1]")
        if self.loss not in LOSS_MODULES and "clipcomp.train.losses" not in sys.modules:
            import difflib

            close = difflib.get_close_matches(self.loss, list(LOSS_MODULES), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ClipcompError(f"{where}.loss: unknown loss {self.loss!r}{hint}; registered: "
                                f"{', '.join(sorted(LOSS_MODULES))}")
        if self.loss not in LOSS_MODULES or self.hard_negatives:  # a plug-in loss, or a check that needs the class
            from clipcomp.train.losses import get_loss_class

            try:
                cls = get_loss_class(self.loss)
            except ClipcompError as exc:
                raise ClipcompError(f"{where}.loss: {exc}") from None
            if self.hard_negatives and "hard_negatives" not in cls.text_fields:
                raise ClipcompError(f"{where}: hard_negatives needs a loss that uses them (e.g. negclip)")

    def resume_settings(self) -> dict:
        """What must match for a run in the same output directory to be resumed."""
        return {k: v for k, v in asdict(self).items() if k not in RUNTIME_KEYS}


def load_train_config(source: str | dict | None = None, overrides=(), require: tuple[str, ...] = (),
                      **fields) -> TrainConfig:
    """A TrainConfig from a config's `train` section (a YAML/TOML path or a mapping), then `overrides`
    (``"train.lr=1e-4"`` or just ``"lr=1e-4"``, as on the command line), then keyword `fields` (None = not given;
    `fields` and `loss_options` mappings merge). The one loader behind `clipcomp train CONFIG KEY=VALUE...`."""
    from clipcomp.config import build, load_config

    where = source if isinstance(source, str) else "command line"
    raw = load_config(source, None, section="train", overrides=overrides, cls_fields=_train_keys())
    train = dict(raw.get("train") or {})
    for key, value in fields.items():
        if value is None:
            continue
        if key in ("fields", "loss_options") and isinstance(value, dict):
            train[key] = {**(train.get(key) or {}), **value}
        else:
            train[key] = value
    for key in require:
        if key not in train:
            raise ClipcompError(f"clipcomp train needs --{key} (or train.{key} in the config, or {key}=... as an "
                                "override)")
    return build(TrainConfig, train, "train", where)


def _train_keys() -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(TrainConfig)}


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


def make_scheduler(opt, cfg: TrainConfig):
    """A torch LRScheduler over `opt` following `cosine_lr`; `.jump_to(step)` puts it at a resumed step."""
    import torch

    class _Scheduler(torch.optim.lr_scheduler.LRScheduler):
        def get_lr(self):
            return [cosine_lr(self.last_epoch, cfg) for _ in self.optimizer.param_groups]

        def jump_to(self, step: int) -> None:
            self.last_epoch = step
            for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
                group["lr"] = lr
            self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    return _Scheduler(opt)


@dataclass
class _Run:
    """What the phases of one training run share."""

    cfg: TrainConfig
    rank: int
    world: int
    local_rank: int
    device: str
    lm: object = None
    model: object = None
    ddp: object = None
    loss_cls: type | None = None
    num_fields: tuple = ()
    loss_fn: object = None
    data: object = None
    workers: int = 0
    opt: object = None
    sched: object = None
    scaler: object = None
    use_amp: bool = False
    amp_dtype: object = None
    start_state: dict | None = None
    start: int = 0
    meta: dict = field(default_factory=lambda: {"skipped": [], "n_skipped": 0})

    @property
    def ckpt_path(self) -> str:
        return os.path.join(self.cfg.out, "checkpoint.pt")

    @property
    def run_path(self) -> str:
        return os.path.join(self.cfg.out, "run.json")


def setup(cfg: TrainConfig, force: bool = False) -> _Run:
    """Phase 1: processes and devices (DistributedDataParallel under torchrun), threads, the output rule."""
    import torch

    from clipcomp.io import prepare_output

    cfg.validate()
    rank, world, local_rank = _dist_env()
    device = cfg.device
    if world > 1:
        import torch.distributed as dist

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend)
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.batch_size % world:
        raise ClipcompError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    if rank == 0:
        prepare_output(cfg.out, "train", cfg.resume_settings(), force=force, markers=("checkpoint.pt", "final.pt"))
    if world > 1:
        torch.distributed.barrier()
    return _Run(cfg, rank, world, local_rank, device)


def build_model_and_data(run: _Run) -> None:
    """Phase 2: the model (frozen tower, WiSE-FT start copy), the loss and the data loader."""
    from clipcomp.datasets.formats import train_format
    from clipcomp.models import load_model
    from clipcomp.train.data import DataSpec, open_train_data
    from clipcomp.train.losses import get_loss_class, make_loss

    cfg = run.cfg
    run.loss_cls = get_loss_class(cfg.loss)
    run.lm = load_model(cfg.model, cfg.pretrained, device=run.device, precision=cfg.precision, seed=cfg.seed)
    run.model = run.lm.model
    if cfg.wise_ft is not None:
        run.start_state = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
    _freeze(run.model, cfg.freeze)
    run.model.train()
    spec = DataSpec(cfg.data, cfg.data_format, cfg.images, cfg.image_column, cfg.caption_column, dict(cfg.fields),
                    cfg.augment, cfg.skip_bad, cfg.shuffle_buffer)
    fmt = train_format(cfg.data) if cfg.data_format == "auto" else cfg.data_format
    run.workers = cfg.workers if cfg.workers is not None else (0 if fmt in ("synthetic", "arrays") else 2)
    run.num_fields = tuple(run.loss_cls.fields) + tuple(f for f in run.loss_cls.optional_fields if f in cfg.fields)
    run.data = open_train_data(spec, run.lm, run.loss_cls.text_fields, run.num_fields, cfg.batch_size,
                               cfg.seed, run.rank, run.world, run.workers)
    run.loss_fn = make_loss(cfg.loss, run.rank, run.world, **cfg.loss_options).to(run.lm.device)


def make_optimizer(run: _Run) -> None:
    """Phase 3: AdamW over the model's (and the loss's own) parameters, the warm-up + cosine scheduler, the AMP
    scaler."""
    import torch

    cfg, lm = run.cfg, run.lm
    groups = _param_groups(run.model, cfg.weight_decay)
    loss_params = [p for p in run.loss_fn.parameters() if p.requires_grad]
    if loss_params:  # a loss with its own parameters (e.g. a matching head) trains with the model
        groups.append({"params": loss_params, "weight_decay": 0.0})
    run.opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    run.sched = make_scheduler(run.opt, cfg)
    run.use_amp = lm.device.startswith("cuda") and lm.precision in ("amp", "amp_bf16")
    run.amp_dtype = torch.bfloat16 if lm.precision == "amp_bf16" or (run.use_amp and torch.cuda.is_bf16_supported()) \
        else torch.float16
    run.scaler = torch.amp.GradScaler("cuda", enabled=run.use_amp and run.amp_dtype == torch.float16)


def resume(run: _Run) -> None:
    """Phase 4: continue from OUT/checkpoint.pt (weights, loss state, optimizer, scaler, step, skipped items)."""
    import torch

    if os.path.exists(run.ckpt_path):
        try:
            ck = torch.load(run.ckpt_path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file
            raise ClipcompError(f"{run.ckpt_path}: unreadable checkpoint ({type(exc).__name__}); delete it or use "
                                "--force") from None
        run.model.load_state_dict(ck["state_dict"])
        if ck.get("loss_state"):
            run.loss_fn.load_state_dict(ck["loss_state"])
        run.opt.load_state_dict(ck["optimizer"])
        if ck.get("scaler"):
            run.scaler.load_state_dict(ck["scaler"])
        run.start = int(ck["step"])
        if os.path.exists(run.run_path):
            with open(run.run_path, encoding="utf-8") as f:
                old = json.load(f)
            run.meta["skipped"], run.meta["n_skipped"] = old.get("skipped", []), old.get("n_skipped", 0)
    run.sched.jump_to(run.start)
    run.ddp = run.model
    if run.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        run.ddp = DistributedDataParallel(run.model, device_ids=[run.local_rank] if run.device.startswith("cuda")
                                          else None)


def train_step(run: _Run, batch: dict, step: int, log_step: bool):
    """Phase 5: one optimizer step on one batch; returns the loss tensor."""
    import torch

    lm = run.lm
    if "error" in batch:
        raise ClipcompError(batch["error"])
    if batch["bad"]:
        run.meta["n_skipped"] += len(batch["bad"])
        run.meta["skipped"] = (run.meta["skipped"] + batch["bad"])[:100]
    images = batch["image"].to(lm.device, non_blocking=True)
    texts = [batch["text"]] + [batch[f] for f in run.loss_cls.text_fields]
    sizes = [len(t) for t in texts]
    extra = {f: batch[f].to(lm.device) for f in run.num_fields}
    run.loss_fn.log_step = log_step
    with torch.autocast("cuda", dtype=run.amp_dtype, enabled=run.use_amp):
        img_f, txt_all, scale = _forward(run.ddp, images, torch.cat(texts).to(lm.device, non_blocking=True))
        parts = torch.split(txt_all, sizes)
        for f, feats in zip(run.loss_cls.text_fields, parts[1:], strict=True):
            extra[f"{f}_features"] = feats
        loss = run.loss_fn(img_f, parts[0], scale, **extra)
    if not torch.isfinite(loss.detach()).all():  # stop before the optimizer step writes NaN into the weights
        kept = run.ckpt_path if os.path.exists(run.ckpt_path) else None
        raise NonFiniteLoss(f"{run.cfg.out}: the loss became non-finite at step {step + 1} (lr "
                            f"{cosine_lr(step, run.cfg):.3g}); "
                            + (f"the last good checkpoint {kept} is kept" if kept else "no checkpoint was written")
                            + "; lower --lr or check the data")
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.opt)
    run.scaler.update()
    run.sched.step()
    with torch.no_grad():
        run.model.logit_scale.clamp_(0, math.log(100))
    return loss


class NonFiniteLoss(ClipcompError):
    """The loss became NaN/inf: training stops before the weights are corrupted."""


def finish(run: _Run) -> None:
    """Phase 7: the final weights (WiSE-FT interpolation with the starting model when asked)."""
    cfg = run.cfg
    final = os.path.join(cfg.out, "final.pt")
    if run.start_state is not None:
        _save(os.path.join(cfg.out, "finetuned.pt"), run.model, None, None, cfg.steps, cfg)
        run.model.load_state_dict(_wise_ft(run.start_state, run.model.state_dict(), cfg.wise_ft))
    _save(final, run.model, None, None, cfg.steps, cfg)


def train(cfg: TrainConfig, progress: bool = True, stop_after: int | None = None, force: bool = False,
          reporters=None) -> dict:
    """Train or fine-tune (resuming from OUT/checkpoint.pt when the settings match) and return a summary.

    The phases: `setup` → `build_model_and_data` → `make_optimizer` → `resume` → `train_step` per batch, with
    metrics lines and checkpoints (phase 6, below) → `finish`. `stop_after` stops early after that step (tests,
    chunked runs); `force` replaces a run with other settings. Metric lines also go to `cfg.report_to`
    (TensorBoard, W&B; `reporters` passes open ones, e.g. from finetune, which logs evaluations to them too).
    """
    from clipcomp.io import atomic_write_json
    from clipcomp.progress import progress_bar

    run = setup(cfg, force)
    build_model_and_data(run)
    make_optimizer(run)
    resume(run)
    rank, start = run.rank, run.start
    log = open(os.path.join(cfg.out, "metrics.jsonl"), "a", encoding="utf-8") if rank == 0 else None  # noqa: SIM115
    own_reporters = reporters is None and rank == 0 and bool(cfg.report_to)
    if own_reporters:
        from clipcomp.train.reporting import Reporters

        reporters = Reporters(list(cfg.report_to), cfg.out, asdict(cfg))
    if rank != 0:
        reporters = None
    t_start = time.perf_counter()
    seen = 0
    last = {}
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    step = start
    run.meta.update({"data": cfg.data, "format": run.data.format, "n_items": run.data.n_items,
                     "fields": run.data.fields, "resume": run.data.resume, "loader_workers": run.workers,
                     "world_size": run.world, "loss": cfg.loss, "model": cfg.model, "pretrained": cfg.pretrained})

    def write_run(status: str) -> None:
        if rank == 0:
            el = time.perf_counter() - t_start
            atomic_write_json(run.run_path, {**run.meta, "status": status, "steps_done": step, "steps": cfg.steps,
                                             "resumed_from": start, "seconds": el,
                                             "images_per_s": seen / el if el > 0 else None})

    try:
        with progress_bar(end - start, "steps", enabled=progress and rank == 0, desc="train") as bar:
            for step, batch in zip(range(start, end), run.data.loader(start, end), strict=False):
                done = step + 1
                log_now = rank == 0 and (done % cfg.log_every == 0 or done == end)
                loss = train_step(run, batch, step, log_now)
                seen += cfg.batch_size
                # phase 6: metrics line and checkpoint
                if log_now:
                    el = time.perf_counter() - t_start
                    last = {"step": done, "loss": float(loss.detach()), "lr": cosine_lr(step, cfg),
                            "logit_scale": float(run.model.logit_scale.detach().exp()), "images_per_s": seen / el,
                            "elapsed_s": el, **run.loss_fn.diagnostics()}
                    log.write(json.dumps(last) + "\n")
                    log.flush()
                    if reporters is not None:
                        reporters.scalars(done, {k: v for k, v in last.items() if k != "step"}, "train/")
                    bar.set_postfix(loss=f"{last['loss']:.3f}")
                if rank == 0 and (done % cfg.checkpoint_every == 0 or done == end):
                    _save(run.ckpt_path, run.model, run.opt, run.scaler, done, cfg, run.loss_fn)
                step = done
                bar.update(1)
    except NonFiniteLoss:
        write_run("diverged")
        raise
    except BaseException:
        write_run("interrupted")
        raise
    finally:
        if log:
            log.close()
        if own_reporters:
            reporters.close()
    if step < end:
        raise ClipcompError(f"{cfg.data}: the data ran out after step {step}")
    if rank == 0 and end == cfg.steps:
        finish(run)
    write_run("finished" if end == cfg.steps else "stopped")
    seconds = time.perf_counter() - t_start
    return {"out": cfg.out, "steps_done": end, "resumed_from": start, "seconds": seconds,
            "images_per_s": seen / seconds if seconds else None, "last": last, "n_skipped": run.meta["n_skipped"],
            "format": run.data.format}


def _save(path: str, model, opt, scaler, step: int, cfg: TrainConfig, loss_fn=None) -> None:
    import torch

    obj = {"step": step, "state_dict": model.state_dict(), "config": asdict(cfg), "model": cfg.model}
    if loss_fn is not None and any(True for _ in loss_fn.parameters()):
        obj["loss_state"] = loss_fn.state_dict()
    if opt is not None:
        obj["optimizer"] = opt.state_dict()
    if scaler is not None:
        obj["scaler"] = scaler.state_dict()
    from clipcomp.io import atomic_output

    # a file object, not a path: torch names the archive inside after a path, and the temporary one has the PID
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)

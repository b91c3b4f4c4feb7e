"""Base class and registry of training losses (open_clip's signature plus declared batch fields)."""

from __future__ import annotations

import difflib
from typing import ClassVar

from torch import nn

from clipcomp.errors import ClipcompError

LOSSES: dict[str, type[TrainingLoss]] = {}


class TrainingLoss(nn.Module):
    """forward(image_features, text_features, logit_scale, **fields) -> scalar loss.

    Class attributes say what the batch must carry:
      * `text_fields`: batch fields holding captions (one per item, or a fixed number per item); the trainer
        tokenizes and encodes them with the same forward pass and passes `<field>_features` (B×D or B·K×D);
      * `fields`: other per-item values (numbers: weights, scores, concreteness), passed as tensors of shape B
        (or B·K, item-major, when each item holds a list of K values);
      * `optional_fields`: like `fields`, passed only when the run maps a column to them.
    With several processes, `rank`/`world_size` let the loss gather what it needs (open_clip's way).
    """

    name: ClassVar[str] = ""
    text_fields: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[str, ...]] = ()
    optional_fields: ClassVar[tuple[str, ...]] = ()  # passed only when the run maps them (`--field F=COLUMN`)
    defaults: ClassVar[dict[str, float]] = {}  # numeric options (`--loss-option K=V`) and their defaults

    def __init__(self, rank: int = 0, world_size: int = 1, **options) -> None:
        super().__init__()
        unknown = set(options) - set(self.defaults)
        if unknown:
            known = f" (options: {', '.join(self.defaults)})" if self.defaults else " (it takes no options)"
            raise ClipcompError(f"loss {self.name!r} has no option {', '.join(sorted(unknown))}{known}")
        self.options = {**self.defaults, **{k: float(v) for k, v in options.items()}}
        self.rank, self.world_size = rank, world_size
        self.log_step = False  # set by the trainer on steps it logs: losses may then measure diagnostics
        self._diagnostics: dict[str, float] = {}

    def diagnostics(self) -> dict[str, float]:
        """Numbers measured during the last logged forward (written beside the loss in metrics.jsonl)."""
        return dict(self._diagnostics)

    def measure_gradient_shares(self, loss, sims, n_batch: int) -> None:
        """Where the gradient of `loss` on the image→text similarity matrix `sims` (rows: images; columns:
        the batch's captions, then hard negatives) goes: the shares of its absolute mass on easy in-batch
        negatives and on hard negatives (together 1), and the positive pairs' share of the total. This is
        the measurement behind the "gradient imbalance" argument: with InfoNCE most of the push lands on
        easy negatives."""
        if not self.log_step or not sims.requires_grad:
            return
        import torch

        (g,) = torch.autograd.grad(loss, sims, retain_graph=True)
        g = g.detach().abs().double()
        eye = torch.zeros_like(g, dtype=torch.bool)
        idx = torch.arange(min(n_batch, g.shape[0]), device=g.device)
        eye[idx, idx] = True
        easy = g[:, :n_batch].masked_fill(eye[:, :n_batch], 0).sum()
        hard = g[:, n_batch:].sum()
        pos = g[eye].sum()
        neg = easy + hard
        total = neg + pos
        self._diagnostics = {
            "grad_share_easy": float(easy / neg) if neg > 0 else float("nan"),
            "grad_share_hard": float(hard / neg) if neg > 0 else float("nan"),
            "grad_share_positive": float(pos / total) if total > 0 else float("nan"),
            "grad_hard_per_easy_item": float((hard / max(1, g[:, n_batch:].numel()))
                                             / (easy / max(1, g[:, :n_batch].numel() - idx.numel())))
            if easy > 0 else float("nan"),
        }

    @classmethod
    def batch_fields(cls) -> tuple[str, ...]:
        return tuple(cls.text_fields) + tuple(cls.fields)

    def gather(self, *tensors):
        """All-gather per-rank tensors with gradients (identity on one process)."""
        if self.world_size == 1:
            return tensors
        import torch
        import torch.distributed as dist
        import torch.distributed.nn

        out = []
        for t in tensors:
            parts = torch.distributed.nn.all_gather(t)
            out.append(torch.cat(parts, dim=0))
        del dist
        return tuple(out)


def register_loss(cls: type[TrainingLoss]) -> type[TrainingLoss]:
    """Class decorator: make a loss available by its `name` to configs, the CLI and the trainer."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty `name`")
    LOSSES[cls.name] = cls
    return cls


def get_loss_class(name: str) -> type[TrainingLoss]:
    if name not in LOSSES:
        close = difflib.get_close_matches(name, list(LOSSES), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ClipcompError(f"unknown loss {name!r}{hint}; registered: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]


def make_loss(name: str, rank: int = 0, world_size: int = 1, **options) -> TrainingLoss:
    return get_loss_class(name)(rank=rank, world_size=world_size, **options)

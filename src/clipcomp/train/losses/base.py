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
      * `fields`: other per-item values (numbers: weights, scores, concreteness), passed as tensors of shape B.
    With several processes, `rank`/`world_size` let the loss gather what it needs (open_clip's way).
    """

    name: ClassVar[str] = ""
    text_fields: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, rank: int = 0, world_size: int = 1, **options) -> None:
        super().__init__()
        if options:
            raise ClipcompError(f"loss {self.name!r} takes no options {', '.join(sorted(options))}")
        self.rank, self.world_size = rank, world_size

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

"""Contrastive training of open_clip models (CPU or GPUs, torchrun DDP) with pluggable losses and data sources."""

from clipcomp.train.finetune import finetune
from clipcomp.train.trainer import TrainConfig, train

__all__ = ["TrainConfig", "finetune", "train"]

"""Losses as nn.Modules with open_clip's signature: forward(image_features, text_features, logit_scale, ...).

`infonce` is open_clip's ClipLoss. `negclip` adds hard-negative captions to the image→text side (Yuksekgonul et
al., NegCLIP): each image must prefer its caption over every caption of the batch *and* every negative.
With several processes, features are gathered (with gradients) so the loss sees the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from clipcomp.errors import ClipcompError


class NegClipLoss(nn.Module):
    def __init__(self, rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        self.rank, self.world_size = rank, world_size

    def forward(self, image_features, text_features, logit_scale, negative_features=None, output_dict=False):
        if self.world_size > 1:
            from open_clip.loss import gather_features

            image_features, text_features = gather_features(image_features, text_features, gather_with_grad=True,
                                                            rank=self.rank, world_size=self.world_size)
            if negative_features is not None:
                negative_features, _ = gather_features(negative_features, negative_features, gather_with_grad=True,
                                                       rank=self.rank, world_size=self.world_size)
        n = image_features.shape[0]
        labels = torch.arange(n, device=image_features.device)
        texts = text_features if negative_features is None else torch.cat([text_features, negative_features])
        logits_i2t = logit_scale * image_features @ texts.T
        logits_t2i = logit_scale * text_features @ image_features.T
        loss = (F.cross_entropy(logits_i2t, labels) + F.cross_entropy(logits_t2i, labels)) / 2
        return {"contrastive_loss": loss} if output_dict else loss


def make_loss(name: str, rank: int = 0, world_size: int = 1) -> nn.Module:
    """Registry of losses; a new loss is a new class here, not a new trainer."""
    if name == "infonce":
        from open_clip.loss import ClipLoss

        return ClipLoss(local_loss=False, gather_with_grad=True, cache_labels=True, rank=rank, world_size=world_size)
    if name == "negclip":
        return NegClipLoss(rank, world_size)
    raise ClipcompError(f"unknown loss {name!r} (expected infonce or negclip)")


LOSSES = ("infonce", "negclip")
